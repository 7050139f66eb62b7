"""The built-in demo: a simulated study, two laws fitted and compared, a mixture chosen.

Everything runs on data bayesmix simulates itself, so the truth is known: the demo shows
whether the law comparison picks the law the runs came from, whether the predictive
intervals hold at larger held-out runs, and whether the posterior of the optimal mixture
covers the true optimum.

The study (:data:`STUDY`): three domains as in the paper's multimodal study, losses
drawn from the joint law (eq. 5) with parameters from its prior; four small model sizes,
each trained on a grid of mixtures with checkpoints at 4-32 tokens per parameter; a few
runs of the next size up held out. The additive and joint laws are fitted to every
domain's loss with NUTS (and each with its discrepancy beyond the training range), scored
by PSIS-LOO and at the held-out runs, and the law with the better held-out score (CRPS:
extrapolation is what a decision at scale needs) chooses the mixture at 8 times the
largest training size. Then the next runs worth launching, and the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError
from bayesmix._io import atomic_dir
from bayesmix._nuts_defaults import CHAINS, WARMUP
from bayesmix.compare import Comparison, compare
from bayesmix.decision import OptimumReport, decide
from bayesmix.design import Suggestion, suggest_runs
from bayesmix.fit import Fit
from bayesmix.jobs import JobFailure, check_workers, default_workers, fit_job, run_jobs
from bayesmix.laws import load_law
from bayesmix.model import TargetPosterior, scales_for
from bayesmix.report import write_report
from bayesmix.runs import RunTable, write_runs
from bayesmix.simulate import simulate_runs
from bayesmix.store import save_fit

__all__ = ["DemoResult", "NUTS", "STAGES", "STUDY", "Study", "run_demo"]


class Study(NamedTuple):
    """The demo's simulated study."""

    domains: tuple[str, ...]
    true_law: str
    laws: tuple[str, ...]
    sizes: tuple[float, ...]
    """Model sizes of the training runs."""
    heldout_size: float
    heldout_mixtures: int
    """Held-out runs at ``heldout_size`` (the uniform mixture and the next grid points)."""
    scale_up: float
    """The decision's ``N*`` over the largest training size (``D* = 20 N*``)."""


STUDY = Study(domains=("web", "code", "books"), true_law="joint", laws=("additive", "joint"),
              sizes=(1e8, 2e8, 4e8, 8e8), heldout_size=1.6e9, heldout_mixtures=4,
              scale_up=8.0)

NUTS = {"chains": CHAINS, "warmup": WARMUP, "draws": 700}
"""The demo's NUTS settings per target (the fit's defaults but for fewer draws)."""

STAGES = ("simulate the runs", f"fit {' and '.join(STUDY.laws)} with their discrepancies",
          "compare the laws", "the optimal mixture", "the next runs", "the report")
"""What :func:`run_demo` does, in order (its ``on_stage`` callback names them)."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo found.

    Attributes
    ----------
    table, heldout : RunTable
        The simulated training runs and the larger runs held out from every fit.
    fits : dict law -> Fit
        The Bayesian fit of every domain's loss, per law (with its discrepancy).
    comparison : Comparison
        PSIS-LOO on the training runs and scores at the held-out runs.
    chosen : str
        The law the decision uses (the lower pooled held-out CRPS).
    decision : OptimumReport
        ``h*`` per draw, ``h_bayes`` and the comparison with the uniform mixture.
    true_h_star : ndarray, shape ``(k,)``
        The optimum under the parameters the runs were simulated from.
    suggestion : Suggestion
        The next runs worth launching (:func:`bayesmix.suggest_runs`), or why none is.
    out : Path or None
        The directory written (runs, fits, ``report.html``), if any.
    seconds : tuple of (stage, float)
        Wall time of each of :data:`STAGES`.
    """

    table: RunTable
    heldout: RunTable
    fits: Mapping[str, Fit]
    comparison: Comparison
    chosen: str
    decision: OptimumReport
    true_h_star: np.ndarray
    suggestion: Suggestion
    out: Path | None = None
    seconds: tuple[tuple[str, float], ...] = ()
    """Wall seconds of each of :data:`STAGES`."""

    @property
    def report(self) -> Path | None:
        """The HTML report, if the demo wrote one."""
        return None if self.out is None else self.out / "report.html"

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.table.frame),
            "heldout_runs": len(self.heldout.frame),
            "true_law": STUDY.true_law,
            "diagnostics": {law: {t: f.diagnostics.to_dict() for t, f in fitted.targets.items()}
                            for law, fitted in self.fits.items()},
            "warnings": {law: list(fitted.warnings) for law, fitted in self.fits.items()},
            "comparison": self.comparison.to_dict(),
            "chosen_law": self.chosen,
            "true_h_star": dict(zip(self.table.domains, self.true_h_star.tolist(), strict=True)),
            **self.decision.to_dict(),
            "suggestion": self.suggestion.to_dict(),
            "report": None if self.report is None else str(self.report),
            "seconds": dict(self.seconds),
        }

    def __str__(self) -> str:
        return "\n".join(_summary_lines(self))


def _convergence_line(law: str, fitted: Fit) -> str:
    d = [f.diagnostics for f in fitted.targets.values()]
    failed = [t for t, f in fitted.targets.items() if not f.converged]
    status = ("every target converged" if not failed
              else f"NOT converged: {', '.join(failed)} (see the report)")
    return (f"  {law:<9} {status}: max R-hat {max(x.max_rhat for x in d):.3f}, "
            f"min bulk ESS {min(x.min_ess_bulk for x in d):.0f}, "
            f"{sum(x.divergences for x in d)} divergences")


def _summary_lines(result: DemoResult) -> list[str]:
    table, domains = result.table, result.table.domains
    sizes = sorted(table.frame["N"].unique())
    lines = [
        f"Simulated a study from the {STUDY.true_law} law: {len(table.frame)} checkpoints of "
        f"{table.frame['run'].nunique()} runs ({sizes[0]:.3g} to {sizes[-1]:.3g} params, "
        f"mixtures of {', '.join(domains)}) to fit, and {len(result.heldout.frame)} "
        f"checkpoints at {STUDY.heldout_size:.3g} params held out.",
        f"Fitted {' and '.join(result.fits)} to each domain's loss with NUTS:",
        *(_convergence_line(law, f) for law, f in result.fits.items()),
        f"At the held-out runs ({STUDY.heldout_size:.3g} params, beyond every training run):",
    ]
    for s in result.comparison.pooled():
        lines.append(f"  {s.label:<9} error of the median {100 * s.mre:.2f} %, 90 % intervals "
                     f"hold {100 * s.cover90:.0f} % of the losses, CRPS {s.crps:.5f}")
    preferred = result.comparison.preferred()
    lines.append(f"  The training runs prefer {preferred} (PSIS-LOO); the decision uses "
                 f"{result.chosen} (the better held-out CRPS).")
    d = result.decision.to_dict()
    lines += [f"Optimal mixture for the mean loss at N = {result.decision.n_params:.3g}, "
              f"D = {result.decision.n_tokens:.3g} ({STUDY.scale_up:g} x the largest "
              f"training size), beside the truth:",
              f"  {'domain':<8} {'median':>7} {'90% interval':>17} {'h_bayes':>8} {'truth':>7}"]
    for i, domain in enumerate(domains):
        s = d["h_star"][domain]
        lines.append(f"  {domain:<8} {s['median']:7.3f}   [{s['q05']:.3f}, {s['q95']:.3f}]   "
                     f"{d['h_bayes'][domain]:8.3f} {result.true_h_star[i]:7.3f}")
    bayes, uniform = d["objective"]["h_bayes"], d["objective"]["uniform"]
    lines.append(f"Predicted mean loss with h_bayes {bayes['median']:.4f} (90 % interval "
                 f"{bayes['q05']:.4f} to {bayes['q95']:.4f}); with the uniform mixture "
                 f"{uniform['median']:.4f}; P(h_bayes is better) = "
                 f"{uniform['p_h_bayes_better']:.2f}.")
    suggestion = result.suggestion.to_dict()
    lines.append(f"Next runs, within the FLOPs of one more run of the largest size: "
                 f"{suggestion['reason']}.")
    for run in suggestion["runs"]:
        mixture = ", ".join(f"{k}={w:.2f}" for k, w in run["mixture"].items())
        lines.append(f"  N = {run['N']:.3g}, D = {run['D']:.3g}, {mixture}: {run['reason']}")
    warned = sum(len(f.warnings) for f in result.fits.values())
    if warned:
        lines.append(f"{warned} convergence warning(s): the report's convergence section "
                     f"lists them (or run with --json); more --draws usually helps.")
    if result.report is not None:
        lines.append(f"Everything, with plots: {result.report} (one HTML file; open it in a "
                     f"browser). Runs and fits are beside it.")
    return lines


def _true_posteriors(law, table: RunTable, truth: dict) -> dict[str, TargetPosterior]:
    return {
        target: TargetPosterior.from_sites(law, target, table.domains,
                                           scales_for(table.target_data(target)), sites)
        for target, sites in truth.items()
    }


def simulate_study(key: jax.Array, n_mixtures: int = 12
                   ) -> tuple[RunTable, RunTable, dict[str, TargetPosterior]]:
    """The demo's runs: training and held-out tables, and the truth as one-draw posteriors.

    Every size is simulated together (one truth, one reference point); the held-out
    runs are the first ``STUDY.heldout_mixtures`` mixtures (the uniform one first) at
    ``STUDY.heldout_size``.
    """
    law = load_law(STUDY.true_law)
    table, truth = simulate_runs(key, law, len(STUDY.domains), domain_names=STUDY.domains,
                                 sizes=(*STUDY.sizes, STUDY.heldout_size),
                                 n_mixtures=n_mixtures, loss_scale=3.0)
    frame = table.frame
    large = frame["N"].to_numpy(float) == STUDY.heldout_size
    # the runs of a size come in the design's mixture order, the uniform mixture first
    order = np.full(len(frame), len(frame))
    order[large] = pd.factorize(frame.loc[large, "run"])[0]
    heldout = table.select(large & (order < STUDY.heldout_mixtures))
    return table.select(~large), heldout, _true_posteriors(law, table, truth)


def _fitted_laws(key_fit: jax.Array, key_discrepancy: jax.Array, table: RunTable,
                 workers: int | None, **settings: Any) -> dict[str, Fit]:
    """Every law of the study fitted to every domain, with its discrepancy (what
    ``bayesmix fit`` does by default); the laws in parallel processes when the machine
    has the cores (:mod:`bayesmix.jobs`: the same draws either way)."""
    laws = {name: load_law(name) for name in STUDY.laws}
    workers = default_workers(len(laws)) if workers is None else workers
    if workers > 1:
        settings["progress"] = False  # bars from several processes would interleave
    jobs = [fit_job(name, jax.random.fold_in(key_fit, i), laws[name], table, STUDY.domains,
                    discrepancy_key=jax.random.fold_in(key_discrepancy, i), **settings)
            for i, name in enumerate(STUDY.laws)]
    fits = {}
    for name, outcome in run_jobs(jobs, laws, workers=workers).items():
        if isinstance(outcome, JobFailure):
            raise BayesmixError(f"demo: {outcome}")
        fits[name] = outcome
    return fits


def run_demo(
    key: jax.Array, *, chains: int = NUTS["chains"], warmup: int = NUTS["warmup"],
    draws: int = NUTS["draws"],
    n_mixtures: int = 12, out: str | Path | None = None,
    on_stage: Callable[[str, int, int], None] | None = None, fit_progress: bool = False,
    workers: int | None = None,
) -> DemoResult:
    """Simulate a study, fit and compare two laws, choose a mixture, suggest runs, report.

    Parameters
    ----------
    key : jax.Array
        PRNG key (simulation, fitting and decisions all derive from it).
    chains, warmup, draws : int
        NUTS settings per target.
    n_mixtures : int
        Distinct training mixtures per size.
    out : str or Path, optional
        A directory to write: ``runs.csv``, ``heldout.csv``, one fit directory per law
        and ``report.html`` (written whole at the end; other files in it are kept).
    on_stage : callable, optional
        ``on_stage(what, index, count)`` before each of :data:`STAGES`.
    fit_progress : bool
        Show NUTS progress bars on stderr (when the laws are fitted in this process).
    workers : int, optional
        Processes that fit the laws: 1 fits them here one after the other; default one
        per law where the machine has the cores (the same draws either way).
    """
    if workers is not None:  # before the simulation, not after it
        check_workers(workers)
    keys = jax.random.split(key, 6)
    starts: list[float] = []  # when each of STAGES began, then the end

    def stage(what: str | None) -> None:
        starts.append(time.perf_counter())
        if on_stage is not None and what is not None:
            on_stage(what, STAGES.index(what), len(STAGES))

    stage("simulate the runs")
    table, heldout, truth = simulate_study(keys[0], n_mixtures)
    stage(STAGES[1])
    fits = _fitted_laws(keys[1], keys[2], table, workers,
                        chains=chains, warmup=warmup, draws=draws, progress=fit_progress)
    stage("compare the laws")
    comparison = compare(keys[3], fits, heldout)
    chosen = min(comparison.pooled(), key=lambda s: s.crps).label
    stage("the optimal mixture")
    n_params = STUDY.scale_up * max(STUDY.sizes)
    n_tokens = 20.0 * n_params
    uniform = np.full(len(STUDY.domains), 1.0 / len(STUDY.domains))
    true_h = decide(truth, n_params, n_tokens).h_bayes  # a one-draw posterior's h*
    decision = decide(fits[chosen].posteriors, n_params, n_tokens,
                      references={"uniform": uniform, "truth": true_h})
    stage("the next runs")
    suggestion = suggest_runs(
        keys[4], fits[chosen].posteriors, n_params, n_tokens,
        train_n=table.frame["N"], train_d=table.frame["D"], batch=2,
        budget=6.0 * max(STUDY.sizes) * float(table.frame["D"].max()),
        likelihood_weights={t: f.likelihood_weight for t, f in fits[chosen].targets.items()})
    stage("the report")
    ordered = {chosen: fits[chosen], **fits}  # the decision's law first
    if out is not None:
        with atomic_dir(out) as tmp:
            write_runs(table, tmp / "runs.csv")
            write_runs(heldout, tmp / "heldout.csv")
            for name, fitted in ordered.items():
                save_fit(fitted, tmp / name)
            write_report(tmp / "report.html", ordered, heldout=heldout, optimum=decision,
                         suggestion=suggestion, key=keys[5],
                         title=f"bayesmix demo: a study simulated from the "
                               f"{STUDY.true_law} law")
    stage(None)
    return DemoResult(table=table, heldout=heldout, fits=ordered, comparison=comparison,
                      chosen=chosen, decision=decision, true_h_star=true_h,
                      suggestion=suggestion, out=None if out is None else Path(out),
                      seconds=tuple(zip(STAGES, np.diff(starts).tolist(), strict=True)))
