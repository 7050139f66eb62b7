"""Fantasised outcomes of candidate runs and what they would do to the decision.

The estimator of :mod:`bayesmix.design` (its docstring says why): for each candidate
run, ``M`` fantasised outcomes of its checkpoints drawn from the posterior predictive,
each draw's likelihood of them, and the regret of the best candidate decision once
the draws are reweighted by those likelihoods. Pure array code over JAX, jitted here
at its edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._random import numpy_rng
from bayesmix.candidates import Candidates
from bayesmix.model import TargetPosterior
from bayesmix.predict import predict_draws

__all__ = ["Fantasies", "batch_value", "fantasy_logliks", "regrets_with_each"]


def _truncated_weights(log_weights: jax.Array) -> jax.Array:
    """Self-normalised importance weights truncated at ``sqrt(S)`` times their mean."""
    n = log_weights.shape[-1]
    w = jax.nn.softmax(log_weights, axis=-1)
    w = jnp.minimum(w, 1.0 / jnp.sqrt(n))
    return w / jnp.sum(w, axis=-1, keepdims=True)


def _regret_after(base: jax.Array, loglik: jax.Array, values: jax.Array,
                  optimum: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-fantasy regret and ESS once a run's log-likelihoods ``(M, S)`` are added."""
    w = _truncated_weights(base + loglik)
    expected = w @ values.T  # (M, J)
    regret = jnp.min(expected, axis=1) - w @ optimum
    return regret, 1.0 / jnp.sum(w**2, axis=1)


@jax.jit
def regrets_with_each(base: jax.Array, loglik: jax.Array, values: jax.Array,
                       optimum: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`_regret_after` for every candidate, ``loglik`` shape ``(C, M, S)``."""
    return jax.lax.map(lambda one: _regret_after(base, one, values, optimum), loglik,
                       batch_size=32)


def _run_loglik(log_mu: jax.Array, y: jax.Array, sigma: jax.Array, u_n: jax.Array,
                u_d: jax.Array, mask: jax.Array, weight: jax.Array) -> jax.Array:
    """Log-likelihood ``(M, S)`` of one run's fantasies under every draw (up to a constant).

    ``log_mu (T, S, R)``, ``y (M, T, R)``, ``sigma (T, S)``, ``u_n (T,)``, ``u_d (T, R)``,
    ``mask (R,)``, ``weight (T,)``: Gaussian rows with covariance ``sigma^2 I + U U'``,
    ``U = [u_n 1, u_d]`` (Woodbury's identity and the determinant lemma).
    """
    r = (y[:, :, None, :] - log_mu[None]) * mask
    un, ud = u_n[:, None] * mask, u_d * mask
    s2 = sigma**2
    a11 = s2 + jnp.sum(un * un, -1)[:, None]
    a12 = jnp.sum(un * ud, -1)[:, None] + 0.0 * s2
    a22 = s2 + jnp.sum(ud * ud, -1)[:, None]
    det = a11 * a22 - a12**2
    b1 = jnp.sum(r * un[None, :, None, :], -1)
    b2 = jnp.sum(r * ud[None, :, None, :], -1)
    explained = (a22 * b1**2 - 2 * a12 * b1 * b2 + a11 * b2**2) / det
    rows = jnp.sum(mask)
    ll = -0.5 * ((jnp.sum(r**2, -1) - explained) / s2 + (rows - 2) * jnp.log(s2)
                 + jnp.log(det))
    return jnp.einsum("t,mts->ms", weight, ll)


@jax.jit
def _all_logliks(log_mu, y, sigma, u_n, u_d, mask, weight):
    """:func:`_run_loglik` for every run: ``log_mu (C, T, S, R)`` ... -> ``(C, M, S)``."""
    return jax.lax.map(lambda a: _run_loglik(a[0], a[1], sigma, a[2], a[3], a[4], weight),
                       (log_mu, y, u_n, u_d, mask), batch_size=8)


class Fantasies(NamedTuple):
    """What the values are computed from.

    Attributes
    ----------
    loglik : ndarray, shape ``(C, M, S)``
        Each run's (weighted) log-likelihood of its fantasies under every draw.
    values : ndarray, shape ``(J, S)``
        The objective of the candidate decisions at ``(N*, D*)``, per draw.
    optimum : ndarray, shape ``(S,)``
        Each draw's own optimum value.
    """

    loglik: np.ndarray
    values: np.ndarray
    optimum: np.ndarray


def _thinned(posterior: TargetPosterior, index: np.ndarray) -> TargetPosterior:
    params = {n: np.asarray(v)[index] for n, v in posterior.params.items()}
    noise = {n: np.asarray(v)[index] for n, v in posterior.noise.items()}
    return replace(posterior, params=params, noise=noise)


def fantasy_logliks(key: jax.Array, posteriors: Mapping[str, TargetPosterior],
               candidates: Candidates, index: np.ndarray, weights: Mapping[str, float],
               n_fantasies: int) -> np.ndarray:
    """Log-likelihoods ``(C, M, S)`` of every run's fantasised checkpoints."""
    c, r = candidates.checkpoints.shape
    mask = candidates.mask
    tokens = np.where(mask, candidates.checkpoints, candidates.n_tokens[:, None]).ravel()
    sizes = np.repeat(candidates.n_params, r)
    mixtures = np.repeat(candidates.weights, r, axis=0)
    log_mu, sigma, u_n, u_d = [], [], [], []
    for posterior in posteriors.values():
        thin = _thinned(posterior, index)
        mu = predict_draws(thin, sizes, tokens, mixtures)
        floor = 1e-9 * posterior.scales.loss_scale  # an impossible loss: weight ~ 0
        log_mu.append(np.log(np.maximum(mu, floor)).reshape(len(index), c, r))
        sigma.append(np.asarray(thin.noise["sigma"], float))
        if posterior.discrepancy is not None and posterior.likelihood == "log":
            sd_n, sd_d = posterior.discrepancy.components(sizes, tokens)
            u_n.append(sd_n.reshape(c, r)[:, 0])
            u_d.append(sd_d.reshape(c, r))
        else:
            u_n.append(np.zeros(c))
            u_d.append(np.zeros((c, r)))
    log_mu = np.stack(log_mu, axis=1)  # (S, T, C, R)
    sigma = np.stack(sigma)  # (T, S)
    u_n, u_d = np.stack(u_n, axis=1), np.stack(u_d, axis=1)  # (C, T), (C, T, R)
    t = len(posteriors)
    rng = numpy_rng(key)
    source = rng.choice(len(index), size=n_fantasies, replace=n_fantasies > len(index))
    # the draw and the discrepancy's normals are shared by every run of a fantasy (the
    # term is one function of (N, D) per draw); each run's row noise is its own
    eps = rng.standard_normal((n_fantasies, t, c, r))
    z = rng.standard_normal((n_fantasies, t, 2))
    y = (log_mu[source] + sigma.T[source][:, :, None, None] * eps
         + u_n.T[None, :, :, None] * z[:, :, 0, None, None]
         + u_d.transpose(1, 0, 2)[None] * z[:, :, 1, None, None])  # (M, T, C, R)
    w = np.array([weights.get(name, 1.0) for name in posteriors], float)
    return np.asarray(_all_logliks(
        jnp.asarray(log_mu.transpose(2, 1, 0, 3)), jnp.asarray(y.transpose(2, 0, 1, 3)),
        jnp.asarray(sigma), jnp.asarray(u_n), jnp.asarray(u_d),
        jnp.asarray(mask, float), jnp.asarray(w)))


def batch_value(fantasies: Fantasies, regret_now: float, chosen: list[int]
                ) -> tuple[float, float]:
    """The value of runs ``chosen`` observed together, and its standard error."""
    loglik = jnp.asarray(fantasies.loglik)
    base = jnp.sum(loglik[jnp.asarray(chosen[:-1], int)], axis=0) if len(chosen) > 1 else \
        jnp.zeros(loglik.shape[1:])
    regret, _ = _regret_after(base, loglik[chosen[-1]], jnp.asarray(fantasies.values),
                              jnp.asarray(fantasies.optimum))
    regret = np.asarray(regret)
    return float(regret_now - regret.mean()), float(np.std(regret, ddof=1)
                                                   / np.sqrt(regret.size))
