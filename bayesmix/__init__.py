"""bayesmix: Bayesian scaling laws for optimal pretraining data mixtures.

The public API. Stages of the data's path, one module each (imports only go down):
``ingest`` (wide and long tables, Olmix's ratios and metrics pair) → ``runs`` (load,
validate) and ``simulate`` → ``laws`` / ``lawkit`` (the law files in
``models/``) → ``model`` (priors + likelihood) → ``prior`` (prior draws) → ``start``
(the chains' start point) → ``sampling`` (NUTS warmup and draws) → ``diagnostics`` →
``idata`` → ``fit`` (the Bayesian fit) / ``huber`` → ``search`` → ``baseline`` (the
paper's point fit) → ``store`` (every save and load) → ``predict`` → ``simplex``
(mirror descent) → ``objective`` → ``decision`` (h*, h_bayes, regret) →
``sensitivity`` (elasticities of the losses to the weights) → ``candidates`` (runs one
could launch) → ``fantasy`` → ``design`` (which run next) → ``scoring`` (held-out
scores) → ``compare`` → ``plots`` and ``decision_plots`` → ``report_inputs`` →
``report`` (one HTML page) → ``demo`` → ``cli`` and ``commands``.
"""

from bayesmix import paper
from bayesmix._errors import BayesmixError
from bayesmix._jaxutil import use_compilation_cache
from bayesmix._version import __version__
from bayesmix.baseline import BaselineResult, baseline_fit, fit_target_baseline
from bayesmix.bounds import mixture_bounds
from bayesmix.candidates import Candidates, candidate_runs, read_candidates
from bayesmix.confirm import Confirmation, confirm_batch
from bayesmix.decision import OptimumReport, decide
from bayesmix.decision_plots import (
    plot_elasticities,
    plot_objective,
    plot_optimum,
    plot_optimum_path,
    plot_ternary,
)
from bayesmix.demo import DemoResult, run_demo
from bayesmix.design import DesignSettings, Suggestion, suggest_runs
from bayesmix.diagnostics import Diagnostics
from bayesmix.fit import Fit, TargetFit, fit, fit_target
from bayesmix.jobs import FitJob, JobFailure, fit_job, run_jobs
from bayesmix.laws import Law, builtin_law_names, load_law
from bayesmix.model import Scales, TargetPosterior, loss_model, scales_for
from bayesmix.objective import MixtureObjective, mixture_objective
from bayesmix.plots import (
    plot_coverage,
    plot_forest,
    plot_loo_pit,
    plot_mixtures,
    plot_observed_vs_predicted,
    plot_rank,
    plot_runs,
)
from bayesmix.predict import predict_draws, predict_table
from bayesmix.prior import prior_predictive
from bayesmix.report import Report, write_report
from bayesmix.report_inputs import training_table
from bayesmix.runs import RunTable, TargetData, load_runs, runs_summary, write_runs
from bayesmix.sensitivity import Elasticities, elasticities
from bayesmix.simplex import MDResult, minimize_on_simplex
from bayesmix.simulate import SimulatedRuns, simulate_runs
from bayesmix.store import load_baseline, load_fit, load_posteriors, save_baseline, save_fit

__all__ = [
    "BaselineResult",
    "BayesmixError",
    "Candidates",
    "Confirmation",
    "DesignSettings",
    "DemoResult",
    "Diagnostics",
    "Elasticities",
    "Fit",
    "FitJob",
    "JobFailure",
    "Law",
    "MDResult",
    "MixtureObjective",
    "OptimumReport",
    "Report",
    "RunTable",
    "Scales",
    "SimulatedRuns",
    "Suggestion",
    "TargetData",
    "TargetFit",
    "TargetPosterior",
    "__version__",
    "baseline_fit",
    "builtin_law_names",
    "candidate_runs",
    "confirm_batch",
    "decide",
    "elasticities",
    "fit",
    "fit_job",
    "fit_target",
    "fit_target_baseline",
    "load_baseline",
    "load_fit",
    "load_law",
    "load_posteriors",
    "load_runs",
    "loss_model",
    "minimize_on_simplex",
    "paper",
    "mixture_bounds",
    "mixture_objective",
    "plot_coverage",
    "plot_elasticities",
    "plot_forest",
    "plot_loo_pit",
    "plot_mixtures",
    "plot_objective",
    "plot_observed_vs_predicted",
    "plot_optimum",
    "plot_optimum_path",
    "plot_rank",
    "plot_runs",
    "plot_ternary",
    "predict_draws",
    "predict_table",
    "prior_predictive",
    "read_candidates",
    "run_demo",
    "run_jobs",
    "runs_summary",
    "save_baseline",
    "save_fit",
    "scales_for",
    "simulate_runs",
    "suggest_runs",
    "training_table",
    "use_compilation_cache",
    "write_report",
    "write_runs",
]
