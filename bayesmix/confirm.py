"""Confirm a suggested batch by refitting on fantasised outcomes of its runs.

:func:`bayesmix.design.suggest_runs` values a batch without refitting: a regression
over the posterior draws says what the expected regret of the decision would be once
the batch's checkpoints are seen. Before GPU-days are spent on the batch, that figure
can be checked the slow way, which is what this module does:

1. ``M`` posterior draws are chosen at random (paired across targets, as the
   objective pairs them); each gives one fantasised outcome of the whole batch, its
   checkpoints' losses drawn from that draw's predictive by the function the
   regression's fantasies use (:func:`bayesmix.fantasy.fantasised_log_losses`: the
   law, the fit's noise, the discrepancy of that draw), with one difference: the
   regression reads each row's noise at the fit's likelihood weight ``1 /
   design_effect`` because it refits nothing, while a refit weighs its rows itself.
   So here the rows are what a real run's checkpoints would be: the noise scale
   ``sigma`` with the fit's intra-run correlation (:func:`intra_run_correlation`), so
   that the refit reads them, and estimates its design effect, as it would a real run.
2. Each outcome's rows join the rows each fit was trained on, and every fit is made
   again with its own law and sampler settings (NUTS, the full fit): one job per
   outcome and fit (:func:`bayesmix.jobs.run_jobs`, so the refits may run in worker
   processes or on a Dask cluster, with the same draws).
3. Each refit's decision at ``(N*, D*)`` (same target weights and bounds) gives the
   expected regret after that outcome; their mean, with its standard error over the
   outcomes, is the confirmed expected regret after the batch, beside the estimate.

The refits keep each fit's learnt discrepancy as it is, as the regression does: its
fantasies' discrepancy normals are independent of the term at ``(N*, D*)``, so
neither counts what the batch would teach about the term itself, and the two figures
compare like for like. (``bayesmix fit`` on the grown runs would learn the term again,
one mode refit per size fold and target, from a larger training range; after a batch
one size up less of it would be left at ``N*``.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import jax
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.crossval import refit_options, training_rows
from bayesmix.decision import decide
from bayesmix.design import Suggestion
from bayesmix.fantasy import fantasised_log_losses
from bayesmix.fit import Fit, TargetFit
from bayesmix.jobs import JobFailure, fit_job, run_jobs
from bayesmix.runs import RunTable, run_index

__all__ = ["Confirmation", "batch_rows", "check_refit_inputs", "confirm_batch",
           "intra_run_correlation"]


@dataclass(frozen=True)
class Confirmation:
    """What refits on fantasised outcomes of a batch found.

    Attributes
    ----------
    regret_before : float
        The expected regret of the decision now (the suggestion's).
    estimated_after : float
        The suggestion's estimate of the expected regret after the batch.
    regret_after : ndarray, shape ``(M,)``
        The refits' expected regret after each outcome (NaN where a refit failed).
    draws : ndarray of int, shape ``(M,)``
        The posterior draw each outcome was fantasised from.
    converged : ndarray of bool, shape ``(M,)``
        Whether every target's refit for that outcome passed its convergence checks.
    failures : tuple of str
        Refits that did not finish, each with why.
    """

    regret_before: float
    estimated_after: float
    regret_after: np.ndarray
    draws: np.ndarray
    converged: np.ndarray
    failures: tuple[str, ...] = ()

    @property
    def mean_after(self) -> float:
        """The confirmed expected regret after the batch (mean over the outcomes)."""
        done = self.regret_after[np.isfinite(self.regret_after)]
        return float(done.mean()) if done.size else float("nan")

    @property
    def se_after(self) -> float:
        """Monte Carlo standard error of :attr:`mean_after` (NaN with fewer than two
        finished outcomes)."""
        done = self.regret_after[np.isfinite(self.regret_after)]
        return float(done.std(ddof=1) / np.sqrt(done.size)) if done.size > 1 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (a value that is not finite is None)."""
        return {"outcomes": int(self.regret_after.size),
                "regret_before": self.regret_before,
                "estimated_regret_after": self.estimated_after,
                "confirmed_regret_after": _finite(self.mean_after),
                "confirmed_se": _finite(self.se_after),
                "per_outcome": [{"draw": int(d), "regret_after": _finite(r),
                                 "converged": bool(c)} for d, r, c in
                                zip(self.draws, self.regret_after, self.converged, strict=True)],
                "failures": list(self.failures)}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def batch_rows(suggestion: Suggestion) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The suggested batch's checkpoints as rows: ``N``, ``D``, ``h`` ``(R, k)`` and
    each row's run (its index in the batch)."""
    c = suggestion.candidates
    chosen = np.asarray(suggestion.chosen)
    counts = c.mask[chosen].sum(axis=1)
    return (np.repeat(c.n_params[chosen], counts), c.checkpoints[chosen][c.mask[chosen]],
            np.repeat(c.weights[chosen], counts, axis=0), np.repeat(np.arange(chosen.size), counts))


def intra_run_correlation(target_fit: TargetFit, table: RunTable) -> float:
    """The intra-run correlation ``rho`` of a fit's residuals, from its design effect
    ``1 + (m - 1) rho`` (:func:`bayesmix.model.design_effect`; ``m`` the mean number
    of the fit's rows per run in ``table``). 0 when every run is one row."""
    frame = table.frame
    runs = run_index(frame["N"].to_numpy(float), table.weights,
                     frame["run"] if "run" in frame else None)
    ids = runs[np.isin(frame.index.to_numpy(int), target_fit.rows)]
    per_run = ids.size / max(np.unique(ids).size, 1)
    if per_run <= 1:
        return 0.0
    return float(np.clip((target_fit.diagnostics.design_effect - 1) / (per_run - 1), 0, 1))


def _with_outcome(table: RunTable, rows: np.ndarray, batch: tuple[np.ndarray, ...],
                  losses: Mapping[str, np.ndarray], outcome: int) -> RunTable:
    """``table``'s ``rows`` and the batch's rows with ``losses`` (the targets' own).

    Each batch run is a run of its own, never merged with a run already made of the
    same size and mixture: a table without a ``run`` column gets one, its runs named
    by (N, h) as :func:`bayesmix.runs.run_index` groups them.
    """
    n, d, h, run = batch
    old = table.frame[rows].copy()
    if "run" not in old:
        codes = run_index(table.frame["N"].to_numpy(float), table.weights)[rows]
        old["run"] = [f"run-{c}" for c in codes]
    new = pd.DataFrame({"N": n, "D": d,
                        **{f"h_{dom}": h[:, i] for i, dom in enumerate(table.domains)},
                        **{f"loss_{t}": losses.get(t, np.full(n.size, np.nan))
                           for t in table.targets}},
                       index=int(table.frame.index.max()) + 1 + np.arange(n.size))
    new["run"] = (table.frame["run"].max() + 1 + run
                  if "run" in table.frame and pd.api.types.is_numeric_dtype(old["run"])
                  else np.array([f"suggested-{outcome}-{j}" for j in run], dtype=object))
    frame = pd.concat([old, new.reindex(columns=old.columns)])  # unmeasured columns: NaN
    return RunTable(frame, table.domains, table.targets,
                    f"{table.source} with fantasised outcome {outcome} of the batch",
                    table.unmeasured)


def check_refit_inputs(fits: Sequence[Fit], table: RunTable,
                       domains: Sequence[str]) -> list[np.ndarray]:
    """Each fit's training rows of ``table``, once ``table`` is seen to be the fits'.

    Raises
    ------
    BayesmixError
        ``table`` has other domains than ``domains`` (or another order), lacks a loss
        column of a fit's target or a row a fit was trained on.
    """
    if tuple(table.domains) != tuple(domains):
        raise BayesmixError(f"{table.source} has domains {', '.join(table.domains)} but the "
                            f"fits have {', '.join(domains)}")
    for fit_result in fits:
        missing = sorted(set(fit_result.targets) - set(table.targets))
        if missing:
            raise BayesmixError(f"{table.source} has no loss column for target(s) "
                                f"{', '.join(missing)} of the fits")
    return [training_rows(f, table) for f in fits]


def confirm_batch(
    key: jax.Array,
    fits: Sequence[Fit],
    table: RunTable,
    suggestion: Suggestion,
    *,
    outcomes: int = 4,
    workers: int = 1,
    scheduler: str | None = None,
    on_refit: Callable[[str, int, int], None] | None = None,
) -> Confirmation:
    """Refit the fits on ``outcomes`` fantasised outcomes of the suggested batch.

    Parameters
    ----------
    key : jax.Array
        PRNG key (which draws, their noise, the refits, the decisions).
    fits : sequence of Fit
        The Bayesian fits the suggestion was made from (their targets together are
        the suggestion's).
    table : RunTable
        The run table the fits were made from (their rows are found by row number).
    suggestion : Suggestion
        From :func:`bayesmix.design.suggest_runs` on ``fits``' posteriors.
    outcomes : int
        Fantasised outcomes ``M``, one refit of every fit each.
    workers, scheduler
        Where the refits run (:func:`bayesmix.jobs.run_jobs`); the same draws anywhere.
    on_refit : callable, optional
        ``on_refit(name, index, count)`` as each refit finishes.

    Returns
    -------
    Confirmation

    Raises
    ------
    BayesmixError
        No batch to confirm (the suggestion stopped or chose nothing), fewer than one
        outcome, fits without some of the suggestion's targets, a table that is not
        the fits' (:func:`check_refit_inputs`), or every refit failed.
    """
    if not suggestion.chosen:
        raise BayesmixError("the suggestion holds no run, so there is no batch to confirm")
    if outcomes < 1:
        raise BayesmixError(f"outcomes must be at least 1, not {outcomes}")
    decision = suggestion.decision
    targets = {t for f in fits for t in f.targets}
    if not set(decision.target_weights) <= targets:
        raise BayesmixError(f"the fits' targets {sorted(targets)} lack some of the "
                            f"suggestion's {sorted(decision.target_weights)}")
    rows = check_refit_inputs(fits, table, suggestion.candidates.domains)
    key_draw, key_noise, key_fit, key_decide = jax.random.split(key, 4)
    posteriors = {t: p for f in fits for t, p in f.posteriors.items()}
    correlation = {t: intra_run_correlation(tf, table) for f in fits
                   for t, tf in f.targets.items()}
    n_draws = min(int(np.asarray(p.noise["sigma"]).shape[0]) for p in posteriors.values())
    draws = numpy_rng(key_draw).choice(n_draws, size=outcomes, replace=n_draws < outcomes)
    batch = batch_rows(suggestion)
    rng = numpy_rng(key_noise)
    # rows as a real run's checkpoints: the refit weighs them by its own design effect
    fantasy = {t: np.exp(fantasised_log_losses(rng, p.at_draws(draws), *batch[:3],
                                               runs=batch[3], correlation=correlation[t]))
               for t, p in posteriors.items()}
    jobs, laws = [], {}
    for f_index, fit_result in enumerate(fits):
        options = refit_options(next(iter(fit_result.targets.values())))
        for m in range(outcomes):
            name = f"outcome {m} fit {f_index}"
            data = _with_outcome(table, rows[f_index], batch, {t: fantasy[t][m] for t in
                                                      fit_result.targets}, m)
            jobs.append(fit_job(name, jax.random.fold_in(jax.random.fold_in(key_fit, f_index), m),
                                fit_result.law, data, list(fit_result.targets), **options))
            laws[name] = fit_result.law
    finished: list[str] = []

    def done(name: str, _: Any) -> None:
        finished.append(name)
        if on_refit is not None:
            on_refit(name, len(finished) - 1, len(jobs))

    out = run_jobs(jobs, laws, workers=workers, scheduler=scheduler, on_done=done)
    failures = tuple(str(r) for r in out.values() if isinstance(r, JobFailure))
    regret = np.full(outcomes, np.nan)
    converged = np.zeros(outcomes, bool)
    for m in range(outcomes):
        refits = [out[f"outcome {m} fit {i}"] for i in range(len(fits))]
        if any(isinstance(r, JobFailure) for r in refits):
            continue
        refitted = {t: replace(p, discrepancy=posteriors[t].discrepancy)
                    for refit in refits for t, p in refit.posteriors.items()}
        report = decide(refitted, decision.n_params, decision.n_tokens,
                        target_weights=decision.target_weights, lower=decision.lower,
                        upper=decision.upper, key=jax.random.fold_in(key_decide, m),
                        couple_targets=False)  # regret only: not coupled
        regret[m] = report.expected_regret()
        converged[m] = all(tf.converged for r in refits for tf in r.targets.values())
    if not np.any(np.isfinite(regret)):
        raise BayesmixError("every confirming refit failed: " + "; ".join(failures))
    return Confirmation(regret_before=suggestion.expected_regret,
                        estimated_after=suggestion.regret_after,
                        regret_after=regret, draws=np.asarray(draws), converged=converged,
                        failures=failures)
