"""bayesmix: Bayesian scaling laws for optimal pretraining data mixtures.

Stages, one module each: ``runs`` (load, validate) and ``simulate`` → ``laws``
(the law files in ``models/``) → ``model`` (priors + likelihood) → ``fit`` (NUTS) /
``baseline`` (Huber + basin-hopping) → ``predict`` → ``mixture`` (mirror descent).
"""

from bayesmix._errors import BayesmixError
from bayesmix.baseline import BaselineResult, baseline_fit, fit_target_baseline
from bayesmix.fit import Fit, TargetFit, fit, fit_target
from bayesmix.laws import Law, builtin_law_names, load_law
from bayesmix.mixture import OptimumReport, decide, minimize_on_simplex, mixture_objective
from bayesmix.model import Scales, TargetPosterior, loss_model, scales_for
from bayesmix.predict import predict_draws, predict_table
from bayesmix.prior import prior_predictive
from bayesmix.runs import RunTable, TargetData, load_runs, runs_summary, write_runs
from bayesmix.simulate import simulate_runs
from bayesmix.store import load_baseline, load_fit, load_posteriors, save_baseline, save_fit

__version__ = "0.1.0"

__all__ = [
    "BaselineResult",
    "BayesmixError",
    "Fit",
    "Law",
    "OptimumReport",
    "RunTable",
    "Scales",
    "TargetData",
    "TargetFit",
    "TargetPosterior",
    "__version__",
    "baseline_fit",
    "builtin_law_names",
    "decide",
    "fit",
    "fit_target",
    "fit_target_baseline",
    "load_baseline",
    "load_fit",
    "load_law",
    "load_posteriors",
    "load_runs",
    "loss_model",
    "minimize_on_simplex",
    "mixture_objective",
    "predict_draws",
    "predict_table",
    "prior_predictive",
    "runs_summary",
    "save_baseline",
    "save_fit",
    "scales_for",
    "simulate_runs",
    "write_runs",
]
