"""The mass matrices of the NUTS warmup: the first from the start, the next from draws.

:mod:`bayesmix.sampling` starts the chains with :func:`first_metric` of the Laplace
covariance at the start point, and at the end of each of the warmup's windows gives
every chain :func:`window_metric` of the draws in it (:func:`with_metric` sets it in the
chains' states, as NumPyro's own adaptation would). ``docs/design.md`` ("Warmup") and
``docs/speed.md`` (fifth study) say why.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from bayesmix._errors import BayesmixError

__all__ = ["FIRST_VARIANCE_MAX", "first_metric", "window_metric", "with_metric"]

FIRST_VARIANCE_MAX = 1.0
"""Largest variance of the first metric in any direction (:func:`first_metric`)."""


def first_metric(covariance: np.ndarray) -> np.ndarray:
    """The warmup's first inverse mass matrix from the Laplace covariance at the start.

    Its variance in every eigen-direction is capped at :data:`FIRST_VARIANCE_MAX`. A
    direction in which the potential at the start is flat or curved down (the Laplace
    covariance clips it to variance 100: two such directions at the joint law's start
    on the paper's runs) would otherwise set the first step size: 0.003, at the
    maximum tree depth for the first 100 iterations (380 000 gradients, three
    quarters of that fit's). The laws' priors give every unconstrained parameter an sd
    of at most about 1.6, and the first window replaces the metric. A diagonal
    ``covariance`` (shape ``(d,)``) is capped entry by entry.
    """
    covariance = np.asarray(covariance, np.float64)
    if covariance.ndim == 1:
        return np.minimum(covariance, FIRST_VARIANCE_MAX)
    values, vectors = np.linalg.eigh(0.5 * (covariance + covariance.T))
    return (vectors * np.minimum(values, FIRST_VARIANCE_MAX)) @ vectors.T


def window_metric(z: Any, previous: np.ndarray) -> np.ndarray:
    """The inverse mass matrix from one window's draws of every chain.

    The mean over chains of each chain's covariance of its draws (``z``: arrays shaped
    ``(chains, n, ...)``, flattened in :func:`jax.flatten_util.ravel_pytree`'s order),
    shrunk with Stan's weight ``5 / (n + 5)`` towards the ``previous`` metric's
    correlations at the draws' own variances. Stan shrinks towards ``1e-3 I``, which
    adds 20-170 times the posterior variance of a parameter whose variance is 1e-6
    (the target's loss at the reference point), and as much to a thin direction of two
    correlated parameters; the previous metric's correlations keep such a direction
    thin (the Laplace covariance at the start has it), and shrinking to the draws' own
    variances keeps every scale. A diagonal ``previous`` (shape ``(d,)``) gives the
    draws' variances.
    """
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(z)]
    c, n = leaves[0].shape[:2]
    flat = np.concatenate([x.reshape(c, n, -1) for x in leaves], axis=-1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    if previous.ndim == 1:
        variance = np.mean(centred ** 2, axis=(0, 1)) * n / (n - 1)
        ok = np.all(np.isfinite(variance)) and np.all(variance > 0)
        return variance.astype(previous.dtype) if ok else previous
    covariance = np.einsum("cni,cnj->ij", centred, centred) / (c * (n - 1))
    if not (np.all(np.isfinite(covariance)) and np.all(np.diag(covariance) > 0)):
        return previous  # a coordinate no chain moved in this window: keep the metric
    rescale = np.sqrt(np.diag(covariance) / np.diag(previous))
    weight = n / (n + 5.0)
    shrunk = weight * covariance + (1 - weight) * previous * np.outer(rescale, rescale)
    try:  # a window whose chains moved along too few directions gives no metric
        np.linalg.cholesky(shrunk)
    except np.linalg.LinAlgError:
        return previous
    return shrunk.astype(previous.dtype)


def with_metric(state: Any, metric: np.ndarray) -> Any:
    """Every chain's state with the inverse mass matrix ``metric`` (and its square roots,
    as NumPyro computes them)."""
    if isinstance(state.adapt_state.inverse_mass_matrix, dict) and len(
            state.adapt_state.inverse_mass_matrix) != 1:
        raise BayesmixError("the warmup adapts one metric block for all sites, got "
                            f"{len(state.adapt_state.inverse_mass_matrix)}")
    metric = np.asarray(metric, np.float64)  # the roots in float64, cast per leaf below
    if metric.ndim == 2:
        root_inv = np.linalg.cholesky(metric[::-1, ::-1])[::-1, ::-1].T
        root = scipy.linalg.solve_triangular(root_inv, np.eye(len(metric)), lower=True)
    else:
        root_inv = np.sqrt(metric)
        root = 1 / root_inv
    adapt = state.adapt_state
    chains = adapt.step_size.shape[0]

    def per_chain(x: np.ndarray, like: Any) -> Any:
        # NumPyro keeps a dense metric as {site names: matrix}, one block here
        # (the sites in sorted order, as ravel_pytree flattens them); placed as the
        # leaf it replaces, so that the chains' compiled block takes it as it is (a new
        # placement made the block program lower again at every window)
        return jax.tree.map(lambda m: jax.device_put(
            jnp.asarray(np.broadcast_to(x, (chains, *x.shape)), m.dtype), m.sharding), like)

    return state._replace(adapt_state=adapt._replace(
        inverse_mass_matrix=per_chain(metric, adapt.inverse_mass_matrix),
        mass_matrix_sqrt=per_chain(root, adapt.mass_matrix_sqrt),
        mass_matrix_sqrt_inv=per_chain(root_inv, adapt.mass_matrix_sqrt_inv)))
