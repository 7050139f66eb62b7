"""Fantasised outcomes of candidate runs and what they would do to the decision.

The estimator of :mod:`bayesmix.design` (its docstring says why this one): for every
posterior draw ``s`` and candidate run, a fantasised outcome of the run's checkpoints
drawn from that draw's predictive, reduced per target to two summaries (the mean
log-loss over the checkpoints and its slope in ``log D``); the decision values
``F[j, s]`` and each draw's own optimum ``f*_s`` regressed on the summaries (least
squares over the draws) give ``E[F_j | y]`` and ``E[f* | y]`` at each draw's fantasy,
and so the expected regret after it, ``min_j E[F_j | y] - E[f* | y]``, clipped at 0
(its bound). A batch's summaries are added one run at a time
by orthogonal projection, so choosing runs greedily costs one projection per candidate
and step. Pure array code over JAX, jitted at its edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._random import numpy_rng
from bayesmix.candidates import Candidates
from bayesmix.discrepancy import draws_with
from bayesmix.model import TargetPosterior
from bayesmix.predict import predict_draws

__all__ = ["Fantasies", "Projection", "batch_value", "fantasised_log_losses",
           "fantasy_summaries", "now_regret", "null_summaries", "project",
           "regrets_with_each", "start_projection"]

_RANK_TOL = 1e-10
"""Eigenvalues of a residual Gram matrix below this fraction of the largest are dropped."""


class Fantasies(NamedTuple):
    """What the values are computed from.

    Attributes
    ----------
    summaries : ndarray, shape ``(C, S, Q)``
        Each run's fantasised summaries at each draw (``Q = 2 T``), centred over draws.
    null : ndarray, shape ``(K, S, Q)``
        Summaries of ``K`` uninformative runs (independent standard normals, centred):
        what they gain is the regression's gain by chance, subtracted from every run's.
    values : ndarray, shape ``(J, S)``
        The objective of the candidate decisions at ``(N*, D*)``, per draw.
    optimum : ndarray, shape ``(S,)``
        Each draw's own optimum value.
    """

    summaries: np.ndarray
    null: np.ndarray
    values: np.ndarray
    optimum: np.ndarray


class Projection(NamedTuple):
    """The regression on the runs chosen so far.

    Attributes
    ----------
    basis : Array, shape ``(S, capacity)``
        Orthonormal columns spanning the chosen runs' summaries (zero columns unused).
    fitted : Array, shape ``(S, J + 1)``
        ``E[F_j | y] - mean_s F[j, s]`` at each draw's fantasy, and the same for each
        draw's own optimum ``f*`` (the last column).
    used : int
        Columns of ``basis`` in use.
    """

    basis: jax.Array
    fitted: jax.Array
    used: int


def start_projection(fantasies: Fantasies, batch: int) -> Projection:
    """No run chosen yet, with room for ``batch`` runs' summaries."""
    _, s, q = fantasies.summaries.shape
    return Projection(jnp.zeros((s, q * batch)),
                      jnp.zeros((s, fantasies.values.shape[0] + 1)), 0)


def _responses(values: jax.Array, optimum: jax.Array) -> jax.Array:
    """What is regressed: every decision's values and each draw's own optimum, ``(J+1, S)``."""
    return jnp.concatenate([values, optimum[None]], axis=0)


def _regret(fitted: jax.Array) -> jax.Array:
    """``max(0, min_j E[F_j | y] - E[f* | y])`` per draw from fitted ``(S, J+1)``.

    The posterior expected regret after any outcome is at least 0 (``min_j E[F_j] >=
    E[min_j F_j]``); a linear fit can cross that bound, and is clipped to it.
    """
    return jnp.maximum(0.0, jnp.min(fitted[:, :-1], axis=1) - fitted[:, -1])


def _residual_fit(basis: jax.Array, summaries: jax.Array, centred: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    """What a run adds: the fit of ``centred`` (``(S, J + 1)``) on its summaries beyond
    ``basis``.

    Returns the added fitted values ``(S, J + 1)`` and orthonormal columns ``(S, Q)``
    for the new directions (zero where the run's summaries add none).
    """
    r = summaries - basis @ (basis.T @ summaries)
    lam, vec = jnp.linalg.eigh(r.T @ r)
    keep = lam > _RANK_TOL * jnp.maximum(jnp.max(lam), 1e-300)
    inv_sqrt = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, lam, 1.0)), 0.0)
    columns = r @ (vec * inv_sqrt)
    return columns @ (columns.T @ centred), columns


@jax.jit
def regrets_with_each(projection: Projection, summaries: jax.Array, values: jax.Array,
                      optimum: jax.Array) -> jax.Array:
    """The expected regret at each draw's fantasy once each run is added, ``(C, S)``."""
    responses = _responses(values, optimum)
    mean = jnp.mean(responses, axis=1)
    centred = (responses - mean[:, None]).T

    def one(run_summaries):
        added, _ = _residual_fit(projection.basis, run_summaries, centred)
        return _regret(mean + projection.fitted + added)

    return jax.lax.map(one, summaries, batch_size=16)


def project(projection: Projection, fantasies: Fantasies, run: int) -> Projection:
    """The regression once run ``run`` is chosen."""
    summaries = jnp.asarray(fantasies.summaries[run])
    responses = _responses(jnp.asarray(fantasies.values), jnp.asarray(fantasies.optimum))
    centred = (responses - jnp.mean(responses, axis=1, keepdims=True)).T
    added, columns = _residual_fit(projection.basis, summaries, centred)
    q = columns.shape[1]
    basis = jax.lax.dynamic_update_slice(projection.basis, columns, (0, projection.used))
    return Projection(basis, projection.fitted + added, projection.used + q)


def batch_value(fantasies: Fantasies, runs: list[int]) -> tuple[float, float]:
    """The value of ``runs`` observed together, before the chance correction, and its
    Monte Carlo standard error.

    Least squares of every decision's values on all the runs' summaries at once (not
    the greedy's one-run-at-a-time projections), so it checks them.
    """
    values = np.asarray(fantasies.values)
    responses = np.concatenate([values, np.asarray(fantasies.optimum)[None]])
    design = np.concatenate([np.ones((values.shape[1], 1))]
                            + [fantasies.summaries[r] for r in runs], axis=1)
    coef, *_ = np.linalg.lstsq(design, responses.T, rcond=_RANK_TOL ** 0.5)
    regret = np.asarray(_regret(jnp.asarray(design @ coef)))
    gain = now_regret(fantasies) - regret
    return float(gain.mean()), float(gain.std(ddof=1) / np.sqrt(gain.size))


def now_regret(fantasies: Fantasies) -> float:
    """The expected regret with no run added: ``min_j mean_s F[j, s] - mean_s f*_s``."""
    return float(np.min(np.asarray(fantasies.values).mean(axis=1))
                 - np.asarray(fantasies.optimum).mean())


def _summary_weights(candidates: Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows' weights of the two summaries, ``(C, R)`` each, and which runs have a slope."""
    mask = candidates.mask
    rows = mask.sum(axis=1, keepdims=True)
    level = mask / rows
    log_d = np.log(np.where(mask, candidates.checkpoints, 1.0))
    centred = np.where(mask, log_d - (log_d * mask).sum(axis=1, keepdims=True) / rows, 0.0)
    norm = np.sqrt((centred**2).sum(axis=1, keepdims=True))
    has_slope = norm[:, 0] > 1e-9
    return level, centred / np.where(has_slope[:, None], norm, 1.0), has_slope


def fantasised_log_losses(rng: np.random.Generator, posterior: TargetPosterior,
                          n_params: np.ndarray, n_tokens: np.ndarray, weights: np.ndarray,
                          likelihood_weight: float = 1.0, runs: np.ndarray | None = None,
                          correlation: float = 0.0) -> np.ndarray:
    """Each draw's fantasy of the log-losses of rows ``(N, D, h)``, ``(S, R)``.

    ``log mu_s + sigma_s / sqrt(w) eps + delta_s``: the law at draw ``s``,
    the fit's noise scale read at its likelihood weight ``w`` (a refit reads the rows
    at that weight; ``eps`` independent per row, Normal: the Student-t's tails are
    left out, one wild fantasy would otherwise sway a regression over the draws), and
    the discrepancy ``delta_s`` (:func:`bayesmix.discrepancy.draws_with`: hyper draw
    ``s`` of the term, its bias and two normals a draw shares with every row; zero
    inside the training range: the term is one function of ``(N, D)`` per draw). A fit
    of raw losses has its noise in loss units, ``log(mu_s + sigma_s / sqrt(w) eps) +
    delta_s`` (as :func:`bayesmix.predict.predict_table` applies the term to it).
    ``rng`` is advanced: the rows' normals, then the discrepancy's.

    With ``runs`` (each row's run, ids ``0..R-1``) the rows look like a real run's
    checkpoints, as a refit reads them (``bayesmix suggest --confirm``: the refit weighs
    its rows itself): ``eps = sqrt(rho) u_run + sqrt(1 - rho) e_row``, the intra-run
    correlation ``rho = correlation`` shared by a run's rows; give
    ``likelihood_weight=1`` then. The run normals are drawn after the rows'.
    """
    mu = predict_draws(posterior, n_params, n_tokens, weights)
    floor = 1e-9 * posterior.scales.loss_scale  # an impossible loss stays finite
    sd = np.asarray(posterior.noise["sigma"], float)[:, None] / np.sqrt(likelihood_weight)
    eps = rng.standard_normal(mu.shape)
    if runs is not None:
        rho = float(np.clip(correlation, 0.0, 1.0))
        shared = rng.standard_normal((mu.shape[0], int(np.max(runs)) + 1))[:, runs]
        eps = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * eps
    if posterior.likelihood != "log":
        y = np.log(np.maximum(mu + sd * eps, floor))
    else:
        y = np.log(np.maximum(mu, floor)) + sd * eps
    if posterior.discrepancy is not None:  # as predict applies it, on either likelihood
        y = y + draws_with(rng, posterior.discrepancy, n_params, n_tokens, mu.shape[0])
    return y


def fantasy_summaries(key: jax.Array, posteriors: Mapping[str, TargetPosterior],
                      candidates: Candidates, index: np.ndarray,
                      weights: Mapping[str, float]) -> np.ndarray:
    """Every run's fantasised summaries at every draw, ``(C, S, 2T)``, centred.

    Draw ``s``'s fantasy of run ``c``'s checkpoints for each target is
    :func:`fantasised_log_losses` at the fit's likelihood weight; each run's noise is
    its own, and the discrepancy's normals are shared by every run. A run with one
    checkpoint has no slope: its slope summary is uninformative noise.
    """
    c, r = candidates.checkpoints.shape
    mask = candidates.mask
    tokens = np.where(mask, candidates.checkpoints, candidates.n_tokens[:, None]).ravel()
    sizes = np.repeat(candidates.n_params, r)
    mixtures = np.repeat(candidates.weights, r, axis=0)
    level, slope, has_slope = _summary_weights(candidates)
    rng = numpy_rng(key)
    out = []
    for posterior in posteriors.values():
        y = fantasised_log_losses(rng, posterior.at_draws(index), sizes, tokens, mixtures,
                                  weights.get(posterior.target, 1.0)).reshape(len(index), c, r)
        first = np.einsum("scr,cr->cs", y, level)
        second = np.where(has_slope[:, None], np.einsum("scr,cr->cs", y, slope),
                          rng.standard_normal((c, len(index))))
        out += [first, second]
    summaries = np.stack(out, axis=-1)  # (C, S, 2T)
    return summaries - summaries.mean(axis=1, keepdims=True)


def null_summaries(key: jax.Array, count: int, n_draws: int, width: int) -> np.ndarray:
    """``count`` uninformative runs' summaries, ``(count, n_draws, width)``, centred.

    Least squares gains a little on any regressor, even pure noise; the mean gain of
    these runs at each step of a batch is that chance gain (see
    :class:`Fantasies`).
    """
    noise = numpy_rng(key).standard_normal((count, n_draws, width))
    return noise - noise.mean(axis=1, keepdims=True)
