"""Cross-validation of a fit: refit without some runs, score the predictions there.

Two kinds of fold, for the two ways a law is used:

* ``scale``: the largest model size of the training runs is held out and predicted
  from the smaller ones, the extrapolation a user makes to the next size up (one fold);
* ``mixture``: the distinct training mixtures are split into K folds; each is held out
  in turn and predicted at the training sizes, the interpolation that mixture
  optimisation relies on.

Each fold refits the fit's own law to the fit's own targets with the fit's own sampler
settings (see :func:`refit_options`), on the rows the fit used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.compare import Comparison
from bayesmix.fit import Fit, TargetFit, fit
from bayesmix.idata import training_rows as idata_training_rows
from bayesmix.jobs import JobFailure, fit_job, run_jobs
from bayesmix.runs import MIXTURE_DECIMALS, Fold, RunTable, model_sizes
from bayesmix.scoring import HeldoutScore, heldout_scores, pool_scores

__all__ = ["CV_KINDS", "Fold", "cross_validate", "mixture_folds", "refit_options",
           "scale_folds", "training_rows", "with_cross_validation"]

CV_KINDS = ("scale", "mixture")


def training_rows(fit_result: Fit, table: RunTable) -> np.ndarray:
    """Mask of ``table``'s rows that any target of ``fit_result`` was trained on.

    Raises
    ------
    BayesmixError
        Rows the fit used are not in ``table`` (another file, or another selection), or
        hold other values than the fit was trained on (its netCDF's data).
    """
    rows = np.unique(np.concatenate([tf.rows for tf in fit_result.targets.values()]))
    index = table.frame.index.to_numpy(int)
    missing = np.setdiff1d(rows, index)
    if missing.size:
        raise BayesmixError(
            f"{table.source} lacks {missing.size} row(s) the fit was trained on (first: row "
            f"{missing[0]}); give the run table the fit was made from ({fit_result.source})")
    for target, tf in fit_result.targets.items():
        if f"loss_{target}" not in table.frame or set(tf.domains) != set(table.domains):
            raise BayesmixError(
                f"{table.source} has no loss column for target '{target}' or other domains "
                f"({', '.join(table.domains)}) than the fit ({', '.join(tf.domains)}); give "
                f"the run table the fit was made from ({fit_result.source})")
        changed = _changed(tf, table, target)
        if changed:
            raise BayesmixError(
                f"{table.source} row {changed[1]}: its {changed[0]} is not the one the fit "
                f"was trained on; give the run table the fit was made from "
                f"({fit_result.source})")
    return np.isin(index, rows)


def _changed(tf: TargetFit, table: RunTable, target: str) -> tuple[str, int] | None:
    """The first column and row of ``table`` at ``tf``'s rows unlike the fit's own data.

    Weights are compared in the fit's domain order and as shares of their row's sum (a
    table renormalised or not is the same runs)."""
    frame = table.frame.loc[tf.rows]
    rows = idata_training_rows(tf.idata, 1.0)
    if rows is None:
        return None  # nothing stored to compare with
    weights = frame[[f"h_{d}" for d in tf.domains]].to_numpy(float)
    stored = {"N": rows.n_params, "D": rows.n_tokens,
              "weights": rows.weights / rows.weights.sum(axis=-1, keepdims=True),
              f"loss_{target}": (np.exp(rows.observed) if tf.likelihood == "log"
                                 else rows.observed)}
    given = {"N": frame["N"].to_numpy(float), "D": frame["D"].to_numpy(float),
             "weights": weights / weights.sum(axis=-1, keepdims=True),
             f"loss_{target}": frame[f"loss_{target}"].to_numpy(float)}
    for name, value in stored.items():
        if given[name].shape != value.shape:
            return name, int(frame.index[0])
        bad = ~np.isclose(given[name], value, rtol=1e-6, atol=0.0)
        if bad.ndim > 1:
            bad = bad.any(axis=tuple(range(1, bad.ndim)))
        if bad.any():
            return name, int(frame.index[np.argmax(bad)])
    return None


def scale_folds(table: RunTable, rows: np.ndarray) -> list[Fold]:
    """One fold: train on every size of ``rows`` but the largest, test on the largest.

    Raises
    ------
    BayesmixError
        Fewer than three model sizes among ``rows`` (a scaling law needs two to fit).
    """
    n = table.frame["N"].to_numpy(float)
    sizes = model_sizes(n[rows])  # sizes within 1 % are one
    if sizes.size < 3:
        raise BayesmixError(f"--cv scale needs at least 3 model sizes in the training "
                            f"rows, {table.source} has {sizes.size}")
    largest = rows & (n > sizes[-2])
    return [Fold(f"N={sizes[-1]:.4g}", rows & ~largest, largest)]


def mixture_folds(key: jax.Array, table: RunTable, rows: np.ndarray,
                  k: int = 5) -> list[Fold]:
    """``k`` folds of the distinct mixtures among ``rows`` (a random partition).

    Raises
    ------
    BayesmixError
        ``k`` < 2, or fewer distinct mixtures than ``k``.
    """
    if k < 2:
        raise BayesmixError(f"--folds must be at least 2, got {k}")
    weights = np.round(table.weights, MIXTURE_DECIMALS)  # as `bayesmix runs` counts them
    mixtures, which = np.unique(weights[rows], axis=0, return_inverse=True)
    if mixtures.shape[0] < k:
        raise BayesmixError(f"{mixtures.shape[0]} distinct mixtures in the training rows "
                            f"of {table.source}: too few for {k} folds")
    fold_of = numpy_rng(key).permutation(mixtures.shape[0]) % k
    member = np.full(len(rows), -1)
    member[rows] = fold_of[which.ravel()]
    return [Fold(f"mixtures {i + 1}/{k}", rows & (member != i), member == i)
            for i in range(k)]


def refit_options(target_fit: TargetFit) -> dict[str, Any]:
    """The options of :func:`bayesmix.fit.fit_target` that made ``target_fit``."""
    options: dict[str, Any] = {"likelihood": target_fit.likelihood}
    settings = target_fit.settings
    if settings is not None:
        options.update({name: getattr(settings, name) for name in (
            "chains", "warmup", "draws", "max_draws", "dense_mass", "target_accept",
            "max_tree_depth", "n_starts", "cluster_runs", "precision")})
    return options


def cross_validate(key: jax.Array, label: str, fit_result: Fit, table: RunTable,
                   kind: str, *, folds: int = 5,
                   on_fold: Callable[[str, int, int], None] | None = None,
                   workers: int = 1, scheduler: str | None = None,
                   ) -> list[HeldoutScore]:
    """Refit ``fit_result``'s law on each fold's training rows and score its test rows.

    Parameters
    ----------
    key : jax.Array
        PRNG key (mixture partition, refits, predictive noise).
    label : str
        How the scores name the fit.
    fit_result : Fit
    table : RunTable
        The run table the fit was made from (its rows are found by row number).
    kind : {"scale", "mixture"}
    folds : int
        Folds of ``kind="mixture"``.
    on_fold : callable, optional
        ``on_fold(name, index, count)`` before each refit (as each finishes, when the
        refits run as jobs), for progress displays.
    workers, scheduler
        Run the folds' refits as jobs (:func:`bayesmix.jobs.run_jobs`): in worker
        processes or on a Dask cluster, with the same draws as here.

    Returns
    -------
    list of HeldoutScore
        Per target, pooled over the folds (row-weighted).

    Raises
    ------
    BayesmixError
        Unknown ``kind``; see :func:`training_rows`, :func:`scale_folds`,
        :func:`mixture_folds`.
    """
    if kind not in CV_KINDS:
        raise BayesmixError(f"unknown cross-validation '{kind}' (use one of "
                            f"{', '.join(CV_KINDS)})")
    rows = training_rows(fit_result, table)
    key_folds, key_fit, key_score = jax.random.split(key, 3)
    chosen = (scale_folds(table, rows) if kind == "scale"
              else mixture_folds(key_folds, table, rows, folds))
    targets = list(fit_result.targets)
    options = refit_options(next(iter(fit_result.targets.values())))
    if workers != 1 or scheduler is not None:
        refits = _refits_in_jobs(key_fit, fit_result, table, chosen, options, workers,
                                 scheduler, on_fold)
    else:
        refits = []
        for i, fold in enumerate(chosen):
            if on_fold:
                on_fold(fold.name, i, len(chosen))
            refits.append(fit(jax.random.fold_in(key_fit, i), fit_result.law,
                              table.select(fold.train), targets, **options))
    scores: list[HeldoutScore] = []
    for i, (fold, refit) in enumerate(zip(chosen, refits, strict=True)):
        scores += heldout_scores(jax.random.fold_in(key_score, i),
                                 {label: refit.posteriors}, table.select(fold.test))
    return [pool_scores([s for s in scores if s.target == target], label, target)
            for target in targets if any(s.target == target for s in scores)]


def _refits_in_jobs(key_fit: jax.Array, fit_result: Fit, table: RunTable,
                    chosen: list[Fold], options: dict[str, Any], workers: int,
                    scheduler: str | None,
                    on_fold: Callable[[str, int, int], None] | None) -> list[Fit]:
    """Each fold's refit as a job, keyed as the refits here are."""
    law, targets = fit_result.law, list(fit_result.targets)
    jobs = [fit_job(fold.name, jax.random.fold_in(key_fit, i), law, table.select(fold.train),
                    targets, **options) for i, fold in enumerate(chosen)]
    finished: list[str] = []

    def done(name: str, _: Any) -> None:
        finished.append(name)
        if on_fold:
            on_fold(name, len(finished) - 1, len(chosen))

    out = run_jobs(jobs, {fold.name: law for fold in chosen}, workers=workers,
                   scheduler=scheduler, on_done=done)
    failed = [str(r) for r in out.values() if isinstance(r, JobFailure)]
    if failed:
        raise BayesmixError("cross-validation refit failed: " + "; ".join(failed))
    return [out[fold.name] for fold in chosen]


def with_cross_validation(key: jax.Array, comparison: Comparison, fits: Mapping[str, Fit],
                          table: RunTable, kind: str, *, folds: int = 5,
                          on_fold: Callable[[str, int, int], None] | None = None,
                          workers: int = 1, scheduler: str | None = None,
                          ) -> Comparison:
    """``comparison`` with the cross-validation scores of every fit added.

    Every fit uses the same folds (the partition is drawn from ``key`` alone), so laws
    fitted to the same rows are scored on the same held-out rows (fits of other rows get
    their own folds, and their scores are not side by side). See :func:`cross_validate`.
    """
    scores: list[HeldoutScore] = []
    for label, fit_result in fits.items():
        scores += cross_validate(key, label, fit_result, table, kind, folds=folds,
                                 on_fold=on_fold, workers=workers, scheduler=scheduler)
    return dataclasses.replace(comparison, cv=tuple(scores), cv_kind=kind)
