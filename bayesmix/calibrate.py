"""Learn the discrepancy beyond the training range by nested leave-one-size-out.

With training sizes ``N_1 < ... < N_K`` the fold ``j`` (``2 <= j < K``) refits the
law on the ``j`` smallest sizes and predicts every larger training size: the
extrapolation a user makes, at distances the runs themselves provide. Each refit is
the posterior mode (the best of :data:`FOLD_STARTS` L-BFGS runs, or of the fit's own
number when smaller: the NUTS fit's own start search, :func:`bayesmix.start.find_start`),
which costs seconds where NUTS costs minutes. A fold's log residuals (observed minus
predicted), their covariance under the refit and their distances beyond the fold's
training range are a :class:`bayesmix.foldposterior.FoldResidual`;
:mod:`bayesmix.foldposterior` turns them into the posterior of the term's
hyperparameters (the folds of a target correlated along their cuts, the targets'
scales partially pooled), and :func:`discrepancies` into each target's
:class:`bayesmix.discrepancy.Discrepancy`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import constrain_fn

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.discrepancy import Discrepancy, reach_distance
from bayesmix.fit import Fit, start_design_effect
from bayesmix.foldposterior import (
    HYPER_DRAWS,
    FoldResidual,
    HyperDraws,
    joint_draws,
    term_draws,
)
from bayesmix.laws import Law
from bayesmix.model import bound_model, centred_inputs, law_params, target_inputs
from bayesmix.runs import SAME_SIZE, Fold, RunTable, model_sizes
from bayesmix.start import find_start

__all__ = ["FOLD_STARTS", "discrepancies", "failed_folds", "fold_plan", "fold_residual",
           "fold_residuals", "learn_discrepancy", "size_folds", "token_reach",
           "try_learn_discrepancy"]

FOLD_STARTS = 10
"""L-BFGS starts of a fold's refit (at most the fit's own)."""


def _size_label(n: float) -> str:
    return f"{n / 1e9:.4g}B" if n >= 1e9 else f"{n / 1e6:.4g}M"


def size_folds(table: RunTable, rows: np.ndarray) -> list[Fold]:
    """The nested folds of the sizes among ``rows`` (empty when fewer than three; sizes
    as :func:`bayesmix.runs.model_sizes` groups them)."""
    n = table.frame["N"].to_numpy(float)
    sizes = model_sizes(n[rows])
    folds = []
    for m in range(2, sizes.size):
        train = rows & (n <= sizes[m - 1])
        test = rows & (n > sizes[m - 1])
        held = [_size_label(s) for s in sizes[m:]]
        if len(held) > 3:  # a study with many sizes: the name stays one short line
            held = [held[0], "...", f"{held[-1]} ({len(held)} sizes)"]
        folds.append(Fold(f"N<={_size_label(sizes[m - 1])} -> " + ",".join(held),
                          train, test))
    return folds


def fold_residual(key: jax.Array, law: Law, table: RunTable, fold: Fold, target: str, *,
                  likelihood: str = "log", n_starts: int = FOLD_STARTS) -> FoldResidual:
    """Refit ``target`` on ``fold.train`` at its posterior mode and take the log residuals
    at ``fold.test``, with their covariance under the refit.

    The mode is the best of ``n_starts`` L-BFGS runs (:func:`bayesmix.start.find_start`,
    the NUTS fit's own start search), centred on the training rows as a fit of them
    would be. The refit sees every usable row of ``table`` with weight 0 on those
    outside ``fold.train``: the same row count as the fit of ``table``, so the folds
    use the fit's compiled programs instead of compiling their own. The covariance is
    ``sigma^2 I + J C J'``: the mode's noise plus the refit's parameter uncertainty
    carried to the held-out predictions to first order (``J`` the Jacobian of the log
    predictions in the unconstrained space, ``C`` the Laplace covariance times the
    design effect), so that what the refit's own posterior explains is not taken for
    discrepancy.

    Parameters
    ----------
    key : jax.Array
    law : Law
    table : RunTable
        The runs; ``fold``'s masks are over its rows.
    fold : Fold
    target : str
    likelihood : {"log", "raw"}
    n_starts : int

    Raises
    ------
    BayesmixError
        Too few training rows, or the refit predicts a non-positive loss at a held-out
        run.
    """
    index = table.frame.index.to_numpy(int)
    inputs = target_inputs(law, table.select(fold.train), target)  # checks; the scales
    data = table.target_data(target)
    train = np.isin(data.rows, index[fold.train])
    test = np.isin(data.rows, index[fold.test])
    log_n, log_d, h = centred_inputs(law, inputs.scales, data.n_params, data.n_tokens,
                                     data.weights, inputs.target_index)
    loss = jnp.asarray(data.loss)
    start = find_start(key, law, inputs.k, inputs.scales, log_n, log_d, h, loss, likelihood,
                       n_starts=n_starts, weight=train.astype(float))
    deff = start_design_effect(data, start, likelihood, train)
    args = (log_n, log_d, h, loss, jnp.asarray(inputs.scales.loss_scale, float),
            jnp.asarray(train, float))
    with numpyro.validation_enabled(False):
        centre, jac = _log_mean_program(law, inputs.k, likelihood)(
            start.unconstrained, args)
    centre, jac = np.asarray(centre, float)[test], np.asarray(jac, float)[test]
    if not np.all(np.isfinite(centre)) or not np.all(np.isfinite(jac)):
        raise BayesmixError(f"fold {fold.name}: the refit of '{target}' predicts a "
                            f"non-positive loss at a held-out size")
    sigma = float(start.constrained["sigma"])
    if likelihood != "log":  # raw-scale noise, as a log-scale variance
        sigma = sigma / float(np.median(data.loss[train]))
    cov = 0.5 * (start.covariance + start.covariance.T) * deff
    values, vectors = np.linalg.eigh(np.asarray(cov, float))
    if not (np.isfinite(sigma) and sigma > 0 and np.all(np.isfinite(values))):
        raise BayesmixError(f"fold {fold.name}: the refit of '{target}' has a noise scale "
                            f"or covariance that is not finite and positive")
    log_n, log_d = np.log(data.n_params), np.log(data.n_tokens)
    return FoldResidual(
        fold.name, target, np.log(data.loss[test]) - centre, sigma ** 2,
        jac @ (vectors * np.sqrt(np.maximum(values, 0.0))),
        np.maximum(0.0, log_n[test] - log_n[train].max()),
        reach_distance(*token_reach(data.n_params[train], data.n_tokens[train]),
                       log_n[test], log_d[test]),
        float(log_n[train].max()))


def token_reach(n_params: np.ndarray, n_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The staircase of training rows ``(N, D)`` that
    :func:`bayesmix.discrepancy.reach_distance` measures ``d_D`` from: per model size
    (sizes within :data:`~bayesmix.runs.SAME_SIZE` of the next are one), ascending,
    the upper edge of its step in log ``N`` (a run up to ``SAME_SIZE`` above a size is
    that size) and the log of the most tokens any row of that size or larger has."""
    log_n, log_d = np.log(np.asarray(n_params, float)), np.log(np.asarray(n_tokens, float))
    log_sizes = np.log(model_sizes(np.asarray(n_params, float)))
    below = np.concatenate([[-np.inf], log_sizes[:-1]])  # the size before each step's
    reach = np.array([log_d[log_n > edge].max() for edge in below])
    return log_sizes + SAME_SIZE, reach


@functools.lru_cache(maxsize=32)
def _log_mean_program(law: Law, k: int, likelihood: str) -> Callable[..., Any]:
    """The law's log mean at every row and its Jacobian in the flat unconstrained
    parameters (NumPyro's sorted site order, the Laplace covariance's), jitted once per
    law: ``program(unconstrained_sites, model_args) -> (log_mean, jacobian)``."""
    model = bound_model(law, k, likelihood)

    def program(sites: dict[str, jax.Array], args: tuple) -> tuple[jax.Array, jax.Array]:
        flat, unravel = ravel_pytree(sites)

        def log_mean(x: jax.Array) -> jax.Array:
            constrained = constrain_fn(model, args, {}, unravel(x))
            params = law_params(law, k, args[4], constrained)
            return jnp.log(law.mean(params, *args[:3]))

        return log_mean(flat), jax.jacfwd(log_mean)(flat)

    return jax.jit(program)


def fold_residuals(key: jax.Array, fit_result: Fit, table: RunTable, *,
                   on_fold: Callable[[str, int, int], None] | None = None,
                   ) -> list[FoldResidual]:
    """Every (nested size fold, target) of ``fit_result`` refitted and scored.

    Empty when the law does not read ``N`` or the runs have fewer than three model
    sizes; a fold whose refit of a target fails (too few rows, or a non-positive
    predicted loss) is left out for that target, and so is one without evidence for
    it (:func:`fold_plan`: no row of the target to refit on or to predict, or the
    same rows as a fold before it). See :func:`learn_discrepancy`.
    """
    law = fit_result.law
    first = next(iter(fit_result.targets.values()))
    settings = first.settings
    options = {"likelihood": first.likelihood,
               "n_starts": min(FOLD_STARTS, settings.n_starts if settings else FOLD_STARTS)}
    plan = fold_plan(fit_result, table)
    residuals: list[FoldResidual] = []
    for i, (fold, targets) in enumerate(plan):
        if on_fold:
            on_fold(fold.name, i, len(plan))
        for j, target in enumerate(fit_result.targets):
            if target not in targets:
                continue
            sub = jax.random.fold_in(jax.random.fold_in(key, i), j)
            try:
                residuals.append(fold_residual(sub, law, table, fold, target, **options))
            except BayesmixError:
                continue  # too few rows in the fold, or a refit that cannot extrapolate
    return residuals


def fold_plan(fit_result: Fit, table: RunTable) -> list[tuple[Fold, tuple[str, ...]]]:
    """The size folds of ``fit_result``'s rows, each with the targets it holds evidence
    for: rows of the target both to refit on and to predict, and other rows than a
    fold before it (a target without rows at a fold's size has the fold before's rows:
    the same evidence, counted once). Empty when the law does not read ``N`` or the
    runs have fewer than three model sizes."""
    if "N" not in fit_result.law.uses:
        return []
    index = table.frame.index.to_numpy(int)
    rows = np.isin(index, np.concatenate([tf.rows for tf in fit_result.targets.values()]))
    usable = {t: np.isin(index, table.target_data(t).rows) for t in fit_result.targets}
    seen: dict[str, set[tuple[int, int]]] = {t: set() for t in fit_result.targets}
    plan = []
    for fold in size_folds(table, rows):
        targets = []
        for target, mine in usable.items():
            rows_of = (int(np.sum(mine & fold.train)), int(np.sum(mine & fold.test)))
            if 0 not in rows_of and rows_of not in seen[target]:
                seen[target].add(rows_of)  # nested folds: the counts name the rows
                targets.append(target)
        plan.append((fold, tuple(targets)))
    return plan


def failed_folds(fit_result: Fit, table: RunTable) -> dict[str, list[str]]:
    """Per target of ``fit_result`` (with its discrepancy learnt), the folds that held
    evidence for it (:func:`fold_plan`) but whose refit failed (too few rows to refit,
    or a non-positive predicted loss), so its term was learnt without them."""
    out: dict[str, list[str]] = {}
    for fold, targets in fold_plan(fit_result, table):
        for target in targets:
            term = fit_result.targets[target].discrepancy
            if term is not None and fold.name not in term.folds:
                out.setdefault(target, []).append(fold.name)
    return out


def discrepancies(key: jax.Array, fit_result: Fit, table: RunTable,
                  residuals: Sequence[FoldResidual]) -> dict[str, Discrepancy]:
    """The discrepancy of every target with a scored fold: :data:`HYPER_DRAWS` joint
    draws of the grid posterior (:func:`bayesmix.foldposterior.hyper_posterior`,
    :func:`bayesmix.foldposterior.term_draws`); ``key`` picks them.

    Draw ``s`` of every target is one draw of the joint posterior: the bias ``m``, the
    growth ``p`` and the folds' correlation length are shared, so pairing targets'
    draws by index (as decisions over several targets do) keeps their common direction.
    """
    if not residuals:
        return {}
    draws = joint_draws(numpy_rng(key), residuals, HYPER_DRAWS)
    return {target: _term(table, tf.rows, residuals, draws, target)
            for target, tf in fit_result.targets.items()
            if target in draws.scales}  # else no fold of this target could be scored


def _term(table: RunTable, rows: np.ndarray, residuals: Sequence[FoldResidual],
          draws: HyperDraws, target: str) -> Discrepancy:
    """One target's term from the joint draws (on the target's training ``rows``;
    :func:`bayesmix.foldposterior.term_draws`)."""
    mine = [r for r in residuals if r.target == target]
    trained = np.isin(table.frame.index.to_numpy(int), rows)
    t = term_draws(draws, target)
    # when no fold reached beyond the training D (by more than a rounding, SAME_SIZE)
    # nothing was learnt of the error in D:
    # tau_D's draws are then its prior's (the likelihood is flat in it), with no bias
    d_learnt = any(np.any(r.d_d > SAME_SIZE) for r in mine)
    n_params = table.frame["N"].to_numpy(float)[trained]
    n_tokens = table.frame["D"].to_numpy(float)[trained]
    edges, reach = token_reach(n_params, n_tokens)
    return Discrepancy(
        log_n_max=float(np.log(n_params.max())), log_d_max=float(np.log(n_tokens.max())),
        reach_log_n=edges, reach_log_d=reach,
        tau_n=t.tau_n, tau_d=t.tau_d, growth=t.growth,
        folds=tuple(dict.fromkeys(r.fold for r in mine)), bias_n=t.bias_units * t.tau_n,
        bias_d=t.bias_units * t.tau_d if d_learnt else np.zeros(t.tau_d.size),
        d_learnt=d_learnt)


def learn_discrepancy(key: jax.Array, fit_result: Fit, table: RunTable, *,
                      on_fold: Callable[[str, int, int], None] | None = None,
                      ) -> dict[str, Discrepancy]:
    """The discrepancy of every target of ``fit_result``, learnt from its own runs.

    :func:`fold_residuals` then :func:`discrepancies`.

    Parameters
    ----------
    key : jax.Array
    fit_result : Fit
    table : RunTable
        The rows the fit was trained on (row numbers of its source).
    on_fold : callable, optional
        ``on_fold(name, index, count)`` before each fold.

    Returns
    -------
    dict target -> Discrepancy
        Empty when the law does not read ``N`` or the runs have fewer than three model
        sizes (nothing to extrapolate from). A fold whose refit of a target fails (too
        few rows, or a non-positive predicted loss) is left out for that target; a
        target with no fold left gets no entry, so a finished NUTS fit is never lost
        to its discrepancy.
    """
    key_fit, key_draw = jax.random.split(key)
    residuals = fold_residuals(key_fit, fit_result, table, on_fold=on_fold)
    return discrepancies(key_draw, fit_result, table, residuals)


def try_learn_discrepancy(key: jax.Array, fit_result: Fit, table: RunTable, *,
                          on_fold: Callable[[str, int, int], None] | None = None,
                          ) -> tuple[Fit, str | None]:
    """``fit_result`` with its discrepancy (:func:`learn_discrepancy`), and why there is
    none when folds existed but nothing was learnt.

    A finished NUTS fit is never lost to its discrepancy: when learning it raises (any
    error, memory included), the fit comes back unchanged with the error's first line.

    Returns
    -------
    (Fit, str or None)
        The reason is None when a term was learnt, or when none could be (a law that
        does not read ``N``, fewer than three sizes).
    """
    try:
        learnt = learn_discrepancy(key, fit_result, table, on_fold=on_fold)
    except Exception as exc:  # noqa: BLE001 (the NUTS fit is kept; the reason is said)
        return fit_result, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    folds = size_folds(table, np.ones(len(table.frame), bool))
    failed = (None if learnt or "N" not in fit_result.law.uses or not folds
              else f"none of {len(folds)} fold(s) could be refitted to extrapolate")
    return fit_result.with_discrepancy(learnt), failed
