"""Learn the discrepancy beyond the training range by nested leave-one-size-out.

With training sizes ``N_1 < ... < N_K`` the fold ``m`` (``2 <= m < K``) refits the
law on the ``m`` smallest sizes and predicts every larger training size: the
extrapolation a user makes, at distances the runs themselves provide. Each refit is
the Laplace approximation at the posterior mode (the same L-BFGS search and the
same design effect as the NUTS fit's start, :func:`bayesmix.start.find_start`), which
costs seconds where NUTS costs minutes. A fold's log residuals ``r`` (observed minus
the median prediction) are modelled as

    r ~ Normal(0, Sigma + tau_N^2 phi_N phi_N' + tau_D^2 phi_D phi_D'),
    phi_N = d_N^p, phi_D = d_D^p

where ``Sigma`` is the refit's predictive covariance (parameter draws plus noise) and
``d`` the distances of :class:`bayesmix.discrepancy.Discrepancy` from the fold's own
training range. Every (fold, target) of a fit shares one ``(tau_N, tau_D, p)``
(partial pooling in its strongest form: the targets share runs, architecture and
recipe); their posterior is computed exactly on a grid under half-Cauchy priors on
the scales and a uniform prior on ``p`` in [1, 2] (linear to quadratic growth), and
kept as draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.discrepancy import Discrepancy
from bayesmix.fit import Fit
from bayesmix.model import TargetPosterior, target_inputs
from bayesmix.predict import predict_draws
from bayesmix.runs import RunTable
from bayesmix.start import find_start

__all__ = ["FoldResidual", "GROWTH_GRID", "TAU_GRID", "TAU_PRIOR_SCALE",
           "hyper_posterior", "learn_discrepancy", "mode_posterior", "size_folds"]

GROWTH_GRID = np.linspace(1.0, 2.0, 5)
"""Values of the growth exponent ``p`` (uniform prior)."""
TAU_GRID = np.geomspace(1e-4, 1.0, 61)
"""Values of ``tau_N`` and ``tau_D`` (log-loss per unit distance^p)."""
TAU_PRIOR_SCALE = 0.05
"""Half-Cauchy scale of ``tau_N`` and ``tau_D``: 5 % of the loss per unit of log N is
an error no one would call small, and the heavy tail lets the runs say more."""
HYPER_DRAWS = 2000
FOLD_STARTS = 10
"""L-BFGS starts of a fold's refit (at most the fit's own)."""


class SizeFold(NamedTuple):
    """Train on the sizes up to ``train_max``; predict the larger training sizes."""

    name: str
    train: np.ndarray
    test: np.ndarray


class FoldResidual(NamedTuple):
    """One (fold, target): log residuals, their covariance and the distances."""

    fold: str
    target: str
    residual: np.ndarray
    covariance: np.ndarray
    d_n: np.ndarray
    d_d: np.ndarray


def _size_label(n: float) -> str:
    return f"{n / 1e9:.4g}B" if n >= 1e9 else f"{n / 1e6:.4g}M"


def size_folds(table: RunTable, rows: np.ndarray) -> list[SizeFold]:
    """The nested folds of the sizes among ``rows`` (empty when fewer than three)."""
    n = table.frame["N"].to_numpy(float)
    sizes = np.unique(n[rows])
    folds = []
    for m in range(2, sizes.size):
        train = rows & (n <= sizes[m - 1])
        test = rows & (n > sizes[m - 1])
        folds.append(SizeFold(
            f"N<={_size_label(sizes[m - 1])} -> "
            + ",".join(_size_label(s) for s in sizes[m:]), train, test))
    return folds


def mode_posterior(key: jax.Array, law, table: RunTable, target: str, *,
                   likelihood: str = "log", n_starts: int = FOLD_STARTS) -> TargetPosterior:
    """The posterior mode of ``target`` on ``table`` as a point posterior with its noise.

    The best of ``n_starts`` L-BFGS runs (:func:`bayesmix.start.find_start`, the NUTS
    fit's own start search); ``noise`` holds the mode's ``sigma`` and ``nu``.
    """
    inputs = target_inputs(law, table, target)
    start = find_start(key, law, inputs.k, inputs.scales, inputs.log_n, inputs.log_d,
                       inputs.h, jnp.asarray(inputs.data.loss), likelihood, n_starts=n_starts)
    sites = {name: value for name, value in start.constrained.items()
             if name in start.unconstrained}
    point = TargetPosterior.from_sites(law, target, tuple(table.domains), inputs.scales,
                                       sites, likelihood)
    noise = {name: np.atleast_1d(np.asarray(start.constrained[name], float))
             for name in ("sigma", "nu")}
    return replace(point, noise=noise)


def _fold_residual(posterior: TargetPosterior, fold: str, train: RunTable,
                   test: RunTable, target: str) -> FoldResidual:
    data = test.target_data(target)
    trained = train.target_data(target)
    mean = predict_draws(posterior, data.n_params, data.n_tokens, data.weights)[0]
    if not np.all(mean > 0):
        raise BayesmixError(f"fold {fold}: the refit of '{target}' predicts a non-positive "
                            f"loss at a held-out size")
    centre = np.log(mean)
    sigma = float(posterior.noise["sigma"][0])
    if posterior.likelihood != "log":  # raw-scale noise, as a log-scale variance
        sigma = sigma / float(np.median(trained.loss))
    covariance = sigma ** 2 * np.eye(centre.size)
    return FoldResidual(
        fold, target, np.log(data.loss) - centre, np.atleast_2d(covariance),
        np.maximum(0.0, np.log(data.n_params) - np.log(trained.n_params.max())),
        np.maximum(0.0, np.log(data.n_tokens) - np.log(trained.n_tokens.max())))


def _log_marginal(residual: FoldResidual) -> np.ndarray:
    """Log density of one fold's residuals on the grid, shape ``(p, tau_N, tau_D)``.

    Woodbury on the rank-2 update of ``Sigma``: with ``A = Phi' Sigma^-1 Phi``,
    ``b = Phi' Sigma^-1 r`` and ``T = diag(tau^2)``, the log density is
    ``-1/2 [logdet Sigma + logdet(I + T A) + r' Sigma^-1 r - b' (T^-1 + A)^-1 b]``
    up to a constant; ``T^(1/2) (I + T^(1/2) A T^(1/2))^-1 T^(1/2)`` stands for
    ``(T^-1 + A)^-1`` so that a scale of zero is allowed.
    """
    chol = np.linalg.cholesky(residual.covariance)
    logdet = 2.0 * np.sum(np.log(np.diag(chol)))
    white_r = np.linalg.solve(chol, residual.residual)
    t = TAU_GRID
    tn, td = t[:, None], t[None, :]
    out = []
    for p in GROWTH_GRID:
        phi = np.stack([residual.d_n ** p, residual.d_d ** p], axis=1)
        white_phi = np.linalg.solve(chol, phi)
        a = white_phi.T @ white_phi
        b = white_phi.T @ white_r
        m11, m22, m12 = 1 + tn ** 2 * a[0, 0], 1 + td ** 2 * a[1, 1], tn * td * a[0, 1]
        det = m11 * m22 - m12 ** 2
        u1, u2 = tn * b[0], td * b[1]  # T^(1/2) b
        quad = (m22 * u1 ** 2 - 2 * m12 * u1 * u2 + m11 * u2 ** 2) / det
        out.append(-0.5 * (logdet + np.log(det) + white_r @ white_r - quad))
    return np.stack(out)


def hyper_posterior(residuals: Sequence[FoldResidual]) -> np.ndarray:
    """Normalised posterior weights of ``(p, tau_N, tau_D)`` on the grid.

    Priors: ``p`` uniform on :data:`GROWTH_GRID`; each scale half-Cauchy with scale
    :data:`TAU_PRIOR_SCALE`, integrated over the log-spaced grid (density times
    ``tau``).
    """
    log_post = sum(_log_marginal(r) for r in residuals)
    s = TAU_PRIOR_SCALE
    log_prior = np.log(TAU_GRID) - np.log1p((TAU_GRID / s) ** 2)
    log_post = log_post + log_prior[None, :, None] + log_prior[None, None, :]
    weights = np.exp(log_post - np.max(log_post))
    return weights / weights.sum()


def learn_discrepancy(key: jax.Array, fit_result: Fit, table: RunTable, *,
                      on_fold: Callable[[str, int, int], None] | None = None,
                      ) -> dict[str, Discrepancy]:
    """The discrepancy of every target of ``fit_result``, learnt from its own runs.

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
        sizes (nothing to extrapolate from).
    """
    law = fit_result.law
    if "N" not in law.uses:
        return {}
    index = table.frame.index.to_numpy(int)
    targets = list(fit_result.targets)
    first = fit_result.targets[targets[0]]
    settings = first.settings
    options = {"likelihood": first.likelihood,
               "n_starts": min(FOLD_STARTS, settings.n_starts if settings else FOLD_STARTS)}
    rows = np.isin(index, np.concatenate([tf.rows for tf in fit_result.targets.values()]))
    folds = size_folds(table, rows)
    if not folds:
        return {}
    residuals: list[FoldResidual] = []
    key_fit, key_draw = jax.random.split(key)
    for i, fold in enumerate(folds):
        if on_fold:
            on_fold(fold.name, i, len(folds))
        train, test = table.select(fold.train), table.select(fold.test)
        for j, target in enumerate(targets):
            sub = jax.random.fold_in(jax.random.fold_in(key_fit, i), j)
            posterior = mode_posterior(sub, law, train, target, **options)
            residuals.append(_fold_residual(posterior, fold.name, train, test, target))
    weights = hyper_posterior(residuals).ravel()
    pick = numpy_rng(key_draw).choice(weights.size, HYPER_DRAWS, p=weights)
    ip, itn, itd = np.unravel_index(pick, (GROWTH_GRID.size, TAU_GRID.size, TAU_GRID.size))
    names = tuple(f.name for f in folds)
    out = {}
    for target, tf in fit_result.targets.items():
        mine = np.isin(index, tf.rows)
        out[target] = Discrepancy(
            log_n_max=float(np.log(table.frame["N"].to_numpy(float)[mine].max())),
            log_d_max=float(np.log(table.frame["D"].to_numpy(float)[mine].max())),
            tau_n=TAU_GRID[itn], tau_d=TAU_GRID[itd], growth=GROWTH_GRID[ip], folds=names)
    return out
