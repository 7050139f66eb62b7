"""Where the chains start: the best of several L-BFGS runs on the potential energy.

Scaling laws are multimodal (a term can trade size with another, an exponent with an
amplitude), and a naive start leaves chains in different modes. So every chain starts
at the best of ~20 L-BFGS runs on the potential energy from prior draws, the best
three polished to the mode by trust-region Newton (:func:`find_start`), and the
sampler's first metric is the Laplace covariance there.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.optimize
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import constrain_fn, potential_energy

from bayesmix._errors import BayesmixError
from bayesmix._jaxutil import NOT_FINITE, one_blas_thread, scipy_objective
from bayesmix.laws import Law, free_sites
from bayesmix.model import Scales, bound_model
from bayesmix.sticks import log_shares, stick_coordinates, strongest_first

__all__ = ["StartPoint", "find_start", "in_share_order", "laplace_covariance"]

# L-BFGS: iterations of the scouting runs, and how many of the best are polished.
_SCOUT_ITER = 100
_POLISH = 3
# The polish (trust-region Newton on the exact Hessian) stops when the gradient's norm
# is below this many times the square root of the arithmetic's epsilon (1.5e-6 in
# float64, 0.03 in float32, where the potential, of order 1e3-1e4, rounds at ~1e-3).
_POLISH_GTOL = 100.0
# Prior draws of the starts, in batches of this many (the fit's default n_starts).
_DRAW_BATCH = 20


@dataclass(frozen=True)
class StartPoint:
    """Where every chain starts: the best of several L-BFGS runs on the potential, polished.

    Attributes
    ----------
    unconstrained : dict of name -> ndarray
        Site values in the sampler's unconstrained space.
    constrained : dict of name -> ndarray
        The same point in the model's space.
    potential : float
        Potential energy (minus log joint density, unconstrained) at the start.
    potentials : ndarray, shape ``(n_starts,)``
        Final potential of every run, after its polish for the best three (``inf``
        for a failed run).
    seconds : float
        Wall time of the search.
    covariance : ndarray, shape ``(d, d)``
        Laplace approximation of the posterior covariance at the start, unconstrained
        and flattened in sorted site order (NumPyro's order).
    """

    unconstrained: dict[str, np.ndarray]
    constrained: dict[str, np.ndarray]
    potential: float
    potentials: np.ndarray
    seconds: float
    covariance: np.ndarray | None = None

    def __repr__(self) -> str:
        finite = np.isfinite(self.potentials)
        spread = np.sort(self.potentials[finite])
        near = int(np.sum(spread - self.potential < 1.0))
        return (f"StartPoint(potential={self.potential:.4g}, runs={len(self.potentials)}, "
                f"failed={int((~finite).sum())}, within_1_of_best={near}, "
                f"seconds={self.seconds:.2f})")


def find_start(
    key: jax.Array,
    law: Law,
    k: int,
    scales: Scales,
    log_n: jax.Array,
    log_d: jax.Array,
    h: jax.Array,
    loss: jax.Array,
    likelihood: str = "log",
    n_starts: int = 20,
    max_iter: int = 200,
    weight: Any = None,
) -> StartPoint:
    """Best of ``n_starts`` L-BFGS runs on the model's potential energy, polished by Newton.

    Starts are prior draws mapped to the unconstrained space (a draw whose potential
    is not finite counts as a failed run); each is run for a hundred iterations by
    ``scipy.optimize.minimize(method="L-BFGS-B")`` on a jitted value-and-gradient of
    the potential, and the best three are run on to convergence by a trust-region
    Newton method on the potential's exact Hessian (``method="trust-exact"``). The
    best end point is returned (the posterior mode in unconstrained space, a MAP
    estimate).

    Why Newton for the polish: the potential is badly conditioned along the valley of
    ``E`` and the exponents, where L-BFGS-B crawls and stops short. On the paper's
    runs its polish took 1000-2000 iterations a run and ended 0.04 to 37 nats above the
    mode (joint law, book: three runs at -6635, -6692 and -6651 where the mode is
    -6729); trust-region Newton reached the mode from all three in 31-107 iterations,
    in a seventh to two thirds of the time (``docs/speed.md``, sixth study).

    Parameters
    ----------
    key : jax.Array
        PRNG key.
    law : Law
    k : int
        Number of weights the law sees.
    scales : Scales
    log_n, log_d : Array, shape ``(n,)``
        Centred log parameters and tokens.
    h : Array, shape ``(n, k)``
    loss : Array, shape ``(n,)``
        Observed losses.
    likelihood : {"log", "raw"}
    n_starts : int
    max_iter : int
        Most Newton iterations of a polish (of its L-BFGS-B fallback: ten times as
        many).
    weight : array_like, shape ``(n,)``, optional
        Each row's likelihood weight (default 1); a row of weight 0 is left out, as
        a fold's held-out rows are. The programs are compiled once per row count, so
        a fold's refit on the fit's rows with some weights 0 uses the fit's programs.

    Returns
    -------
    StartPoint
    """
    start = time.perf_counter()
    draw_starts, _ = _prior_program(law, k, likelihood)
    # every number is an argument of the jitted functions below, not a constant in them
    weight = jnp.ones(loss.shape) if weight is None else jnp.asarray(weight, float)
    args = (log_n, log_d, h, loss, jnp.asarray(scales.loss_scale, float), weight)
    # Prior draws can put E below zero; NumPyro's eager argument checks would raise on
    # them while the model is traced here (never inside jit), so they are off. Drawn
    # in batches of _DRAW_BATCH, so that every n_starts uses one compiled program.
    keys = jax.random.split(key, -(-n_starts // _DRAW_BATCH) * _DRAW_BATCH)
    with numpyro.validation_enabled(False):
        batches = [draw_starts(keys[i:i + _DRAW_BATCH], args)
                   for i in range(0, keys.shape[0], _DRAW_BATCH)]
    z0 = jax.tree.map(lambda *x: jnp.concatenate(x)[:n_starts], *batches)
    leaves, tree = jax.tree.flatten(jax.tree.map(lambda x: x[0], z0))
    programs = _potential_programs(law, k, likelihood, tree,
                                   tuple((x.shape, str(x.dtype)) for x in leaves))
    unravel = programs.unravel
    objective = scipy_objective(programs.value_and_grad, args)
    flats = [np.asarray(ravel_pytree(jax.tree.map(lambda x, i=i: x[i], z0))[0])
             for i in range(n_starts)]

    def scout(x0: np.ndarray) -> scipy.optimize.OptimizeResult:
        return scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                       options={"maxiter": _SCOUT_ITER})

    # Stage 1: every start for a hundred iterations; stage 2: the best few to
    # convergence.
    with one_blas_thread():
        first = [scout(x) for x in flats]
        values = np.array([float(r.fun) if np.isfinite(r.fun) and r.fun < NOT_FINITE
                           else np.inf for r in first])
        order = [int(i) for i in np.argsort(values)[:_POLISH] if np.isfinite(values[i])]
        polished = {i: _polish(objective, programs.hessian, args, first[i].x, max_iter)
                    for i in order}
    potentials = values.copy()
    for i, result in polished.items():
        if np.isfinite(result.fun) and result.fun < potentials[i]:
            potentials[i] = float(result.fun)
            first[i] = result
    if not np.isfinite(potentials).any():
        raise BayesmixError(
            f"law '{law.name}': no L-BFGS start reached a finite posterior density "
            f"({n_starts} prior draws)"
        )
    best = int(np.argmin(potentials))
    best_x, best_value = first[best].x, float(potentials[best])
    hessian = np.asarray(programs.hessian(jnp.asarray(best_x), args))
    unconstrained = jax.tree.map(np.asarray, unravel(jnp.asarray(best_x)))
    with numpyro.validation_enabled(False):  # one program, not the model's ops eagerly
        constrained = jax.tree.map(np.asarray, programs.constrained(jnp.asarray(best_x), args))
    return StartPoint(unconstrained, constrained, best_value, potentials,
                      time.perf_counter() - start, laplace_covariance(hessian))


class _NotFinite(Exception):
    """A Hessian with a non-finite entry: the polish falls back to L-BFGS-B."""


def _polish(objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
            hessian: Callable[..., jax.Array], args: tuple, x0: np.ndarray,
            max_iter: int) -> scipy.optimize.OptimizeResult:
    """Trust-region Newton from ``x0`` on the exact Hessian.

    SciPy evaluates the Hessian at every proposed point, also at one it then rejects:
    where the objective is its sentinel (the potential is not finite there) a finite
    stand-in is returned and the step is rejected as usual. Where the objective is
    finite but the Hessian is not, Newton stops and L-BFGS-B (at most ``10 *
    max_iter`` iterations) carries on from the last point Newton accepted.
    """
    accepted = [np.asarray(x0, dtype=float)]
    dtype = jnp.asarray(0.0).dtype  # the arithmetic of the potential

    def exact(x: np.ndarray) -> np.ndarray:
        value = np.asarray(hessian(jnp.asarray(x), args), dtype=float)
        if np.all(np.isfinite(value)):
            return 0.5 * (value + value.T)
        if objective(x)[0] >= NOT_FINITE:
            return np.eye(x.size)
        raise _NotFinite

    try:
        return scipy.optimize.minimize(
            objective, x0, jac=True, hess=exact, method="trust-exact",
            callback=lambda x: accepted.append(np.copy(x)),
            options={"maxiter": max_iter,
                     "gtol": _POLISH_GTOL * float(np.sqrt(np.finfo(dtype).eps))})
    except (_NotFinite, np.linalg.LinAlgError):
        return scipy.optimize.minimize(objective, accepted[-1], jac=True,
                                       method="L-BFGS-B",
                                       options={"maxiter": 10 * max_iter})


class _Programs(NamedTuple):
    """The compiled potential of one (law, k, likelihood) and its flat parametrisation."""

    unravel: Callable[[jax.Array], dict[str, jax.Array]]
    value_and_grad: Callable[..., tuple[jax.Array, jax.Array]]
    hessian: Callable[..., jax.Array]
    constrained: Callable[..., dict[str, jax.Array]]


# Kept across calls: a fit, each fold of a discrepancy and each refit of a cross-
# validation search starts of the same law, and new closures would be traced and
# compiled again each time (8-12 s a search on the demo's runs, whatever n_starts).
@functools.lru_cache(maxsize=32)
def _prior_program(law: Law, k: int, likelihood: str) -> tuple[Callable[..., Any], Any]:
    """Prior draws of the model's sampled sites, unconstrained: one jitted, vmapped trace
    (1.7 s on the paper's runs, where NumPyro's ``initialize_model`` took 6 s), and the
    model."""
    model = bound_model(law, k, likelihood)

    def one(key: jax.Array, model_args: tuple) -> dict[str, jax.Array]:
        return {name: biject_to(site["fn"].support).inv(site["value"])
                for name, site in free_sites(model, key, *model_args).items()}

    return jax.jit(jax.vmap(one, in_axes=(0, None))), model


@functools.lru_cache(maxsize=32)
def _potential_programs(law: Law, k: int, likelihood: str, tree: Any,
                        leaves: tuple[tuple[tuple[int, ...], str], ...]) -> _Programs:
    """The potential energy on the flat vector of the sites ``tree`` with ``leaves``'
    shapes and dtypes, jitted once: its value and gradient, and its Hessian."""
    _, model = _prior_program(law, k, likelihood)
    template = jax.tree.unflatten(tree, [jnp.zeros(shape, dtype) for shape, dtype in leaves])
    _, unravel = ravel_pytree(template)

    def potential(x: jax.Array, model_args: tuple) -> jax.Array:
        return potential_energy(model, model_args, {}, unravel(x))

    def constrained(x: jax.Array, model_args: tuple) -> dict[str, jax.Array]:
        return constrain_fn(model, model_args, {}, unravel(x), return_deterministic=True)

    return _Programs(unravel, jax.jit(jax.value_and_grad(potential)),
                     jax.jit(jax.hessian(potential)), jax.jit(constrained))


def laplace_covariance(hessian: np.ndarray, min_curvature: float = 1e-2) -> np.ndarray:
    """Inverse of the potential's Hessian at the mode, curvatures clipped to be positive.

    The Laplace approximation of the posterior in unconstrained space; used as the
    sampler's initial inverse mass matrix so that the first warmup window does not
    start from the identity (which on these laws saturates the tree depth).
    """
    hessian = 0.5 * (hessian + hessian.T)
    if not np.all(np.isfinite(hessian)):
        return np.eye(hessian.shape[0])
    eigenvalues, vectors = np.linalg.eigh(hessian)
    eigenvalues = np.maximum(eigenvalues, min_curvature)
    return (vectors / eigenvalues) @ vectors.T


@jax.jit
def _reordered_sticks(sticks: jax.Array, order: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The sticks in ``order`` of the shares that ``sticks`` (in the domains' order)
    give, and the map's Jacobian: one compiled program, not a hundred eager ops."""
    def moved(s: jax.Array) -> jax.Array:
        return stick_coordinates(log_shares(s, jnp.arange(s.shape[-1] + 1)), order)

    return moved(sticks), jax.jacfwd(moved)(sticks)


def in_share_order(start: StartPoint) -> tuple[StartPoint, np.ndarray | None]:
    """The start in the sticks the sampler uses: the shares' strongest domains first.

    :func:`find_start` searches with the shares' sticks in the domains' order; the
    sampler's are ordered by the elasticities at the start
    (:func:`bayesmix.sticks.strongest_first`). The point is the same; its sticks and
    the Laplace covariance are mapped to the new coordinates (the covariance through
    the map's Jacobian).

    Returns
    -------
    StartPoint
        ``start`` in the new coordinates (itself when the law has no sticks).
    order : ndarray of int or None
        The sampler's ``share_order`` (None when the law has no sticks).
    """
    if "sticks" not in start.unconstrained:
        return start, None
    order = strongest_first(start.constrained["log_e"])
    with jax.enable_x64(True):
        new, jac = (np.asarray(a) for a in _reordered_sticks(
            jnp.asarray(start.unconstrained["sticks"], float), jnp.asarray(order)))
    covariance = start.covariance
    if covariance is not None:
        # the flat vector's sticks (leaves in the order ravel_pytree flattens the sites)
        leaves = jax.tree.leaves({name: np.full(np.size(v), name == "sticks")
                                  for name, v in start.unconstrained.items()})
        at = np.flatnonzero(np.concatenate(leaves))
        full = np.eye(covariance.shape[0])
        full[np.ix_(at, at)] = jac
        covariance = full @ covariance @ full.T
    return replace(start, unconstrained={**start.unconstrained, "sticks": new},
                   covariance=covariance), order
