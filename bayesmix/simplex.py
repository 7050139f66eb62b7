"""Mirror descent on the capped simplex ``{l <= h <= u, sum h = 1}``.

The paper (Shukor et al. 2025, §5) finds the mixture that minimises a fitted law by
mirror descent: ``h <- h * exp(-eta * grad L(h))``, renormalised. This module writes
that optimiser as pure functions over JAX arrays, in the Optax/BlackJAX shape:
:func:`md_init` / :func:`md_update` over an explicit :class:`MDState`, the Bregman
(KL) projection :func:`kl_projection` onto the capped simplex, the Frank-Wolfe gap
:func:`frank_wolfe_gap` (the convergence certificate), and
:func:`minimize_on_simplex`, a ``lax.while_loop`` that is ``jit``- and
``vmap``-able. Nothing here is jitted, and nothing here knows of laws, posteriors or
targets: the objective is any differentiable ``h -> scalar``
(:mod:`bayesmix.objective` builds the mixture objective, :mod:`bayesmix.decision`
solves it per posterior draw).

Step-size rule
--------------
Adaptive step with rejection (backtracking in the Bregman-proximal-gradient sense):
a step of size ``eta`` from ``h`` to ``h+`` is accepted when the objective decreases
at least as the mirror model promises,

    f(h+) <= f(h) + <g, h+ - h> + KL(h+ || h) / eta,

which holds for every ``eta <= 1 / L`` when ``f`` is ``L``-smooth relative to the
entropy (Bauschke, Bolte & Teboulle 2017). An accepted step grows ``eta`` by 1.5, a
rejected one halves it and keeps ``h``. Each iteration costs one value-and-gradient;
the objective never increases; no step size needs tuning (the first is
``1 / (max g - min g)`` at the start point: at most a factor ``e`` in any ratio).

Convergence test
----------------
The Frank-Wolfe (duality) gap ``G(h) = <g, h> - min_{v in C} <g, v>`` over the
feasible set ``C``. On the plain simplex it is ``sum_i h_i g_i - min_i g_i``; on
the capped simplex the minimising vertex fills the lower bounds and then the
cheapest domains up to their caps. ``G >= 0``, ``G = 0`` exactly at a KKT point, and
for a convex objective ``f(h) - f* <= G(h)``: a certificate, not a heuristic. The
loop stops when ``G <= tol * max(1, |f|)`` (default ``tol = 1e-9``), after
``max_iter`` iterations, or when forty rejections in a row have shrunk the step by
``1e-12`` (progress has reached rounding level). Why not a smaller ``tol``: near an
interior optimum ``G`` is linear in the distance to it while ``f - f*`` is
quadratic, so ``G ~ 1e-9`` already means ``f - f*`` far below float64 resolution of
``f``; asking for less makes the sufficient-decrease test compare rounding errors.
``MDResult.converged`` reports whether the gap test was met.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from bayesmix._errors import BayesmixError

__all__ = [
    "MDResult",
    "MDState",
    "check_solver_options",
    "frank_wolfe_gap",
    "kl_projection",
    "md_init",
    "md_update",
    "minimize_on_simplex",
]

_GROW = 1.5
_SHRINK = 0.5


class MDState(NamedTuple):
    """State of mirror descent on the (capped) simplex.

    Attributes
    ----------
    h : Array, shape ``(k,)``
        Current mixture: non-negative, sums to one, within the bounds.
    count : Array, int scalar
        Number of updates applied.
    """

    h: jax.Array
    count: jax.Array


class MDResult(NamedTuple):
    """Result of :func:`minimize_on_simplex` (leading draw dimension when vmapped).

    Attributes
    ----------
    h : Array, shape ``(k,)``
        The minimiser found.
    value : Array, scalar
        Objective at ``h``.
    gap : Array, scalar
        Frank-Wolfe gap at ``h`` (an upper bound on ``value - min`` for convex objectives).
    n_iter : Array, int scalar
        Iterations used (accepted and rejected steps).
    converged : Array, bool scalar
        ``gap <= tol * max(1, |value|)``.
    step_size : Array, scalar
        The final step size.
    """

    h: jax.Array
    value: jax.Array
    gap: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    step_size: jax.Array


def _bounds(k: int, lower: Any, upper: Any, dtype) -> tuple[jax.Array, jax.Array]:
    lo = jnp.zeros((k,), dtype) if lower is None else jnp.broadcast_to(
        jnp.asarray(lower, dtype), (k,))
    hi = jnp.ones((k,), dtype) if upper is None else jnp.minimum(
        jnp.broadcast_to(jnp.asarray(upper, dtype), (k,)), 1.0)
    return lo, hi


def _safe_log(x: jax.Array) -> jax.Array:
    positive = x > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, x, 1.0)), -jnp.inf)


def kl_projection(log_y: jax.Array, lower: Any = None, upper: Any = None) -> jax.Array:
    """KL (Bregman) projection of ``y = exp(log_y)`` onto ``{l <= h <= u, sum h = 1}``.

    The projection ``argmin_h KL(h || y)`` over the capped simplex is
    ``h_i = clip(lam * y_i, l_i, u_i)`` for the one ``lam > 0`` that makes the sum one
    (the KKT conditions of a separable entropy problem). ``S(lam) = sum_i clip(lam
    y_i, l_i, u_i)`` is piecewise linear and non-decreasing in ``lam`` with breakpoints
    ``l_i / y_i`` and ``u_i / y_i``, so the solution is exact and sort-free: evaluate
    ``S`` at all ``2k`` breakpoints (``O(k^2)``, multiplications only), take the largest
    with ``S <= 1`` and the smallest with ``S >= 1`` (no breakpoint lies between them),
    read off which coordinates are free there, and solve the linear equation for
    ``lam``. ``log_y`` is shifted by its maximum before exponentiating, so nothing
    overflows; a coordinate whose ``y`` underflows (``log_y - max < -745``) sits at its
    lower bound. Without bounds this is the plain renormalisation ``softmax(log_y)``.

    Parameters
    ----------
    log_y : Array, shape ``(k,)``
        Log of the unnormalised point; ``-inf`` entries are zero.
    lower, upper : Array, shape ``(k,)`` or scalar, optional
        Bounds with ``0 <= l <= u`` and ``sum l <= 1 <= sum u`` (checked by
        :func:`bayesmix.bounds.mixture_bounds`, not here). Default ``0`` and ``1``.

    Returns
    -------
    Array, shape ``(k,)``
    """
    log_y = jnp.asarray(log_y)
    if lower is None and upper is None:
        return jax.nn.softmax(log_y)
    k = log_y.shape[-1]
    lo, hi = _bounds(k, lower, upper, log_y.dtype)
    y = jnp.exp(log_y - jnp.max(log_y))  # in [0, 1], max entry 1
    present = y > 0
    safe_y = jnp.where(present, y, 1.0)
    inf = jnp.array(jnp.inf, log_y.dtype)
    breaks = jnp.concatenate([
        jnp.zeros((1,), log_y.dtype), jnp.full((1,), inf),
        jnp.where(present, lo / safe_y, inf), jnp.where(present, hi / safe_y, inf),
    ])

    def total(lam):
        scaled = jnp.where(present & jnp.isfinite(lam), lam * y, jnp.where(present, inf, 0.0))
        return jnp.sum(jnp.clip(scaled, lo, hi))

    sums = jax.vmap(total)(breaks)
    lam_lo = jnp.max(jnp.where(sums <= 1.0, breaks, 0.0))
    lam_hi = jnp.min(jnp.where(sums >= 1.0, breaks, inf))
    lam_mid = jnp.where(jnp.isfinite(lam_hi), 0.5 * (lam_lo + lam_hi), 2.0 * lam_lo + 1.0)
    at_mid = jnp.where(present, lam_mid * y, 0.0)
    free = present & (at_mid > lo) & (at_mid < hi)
    bound_value = jnp.where(present & (at_mid >= hi), hi, lo)
    bound_mass = jnp.sum(jnp.where(free, 0.0, bound_value))
    free_mass = jnp.sum(jnp.where(free, y, 0.0))
    lam = jnp.maximum(1.0 - bound_mass, 0.0) / jnp.where(free_mass > 0, free_mass, 1.0)
    return jnp.where(free, jnp.clip(lam * y, lo, hi), bound_value)


def frank_wolfe_gap(grad: jax.Array, h: jax.Array, lower: Any = None,
                    upper: Any = None) -> jax.Array:
    """Frank-Wolfe gap ``<g, h> - min_{v in C} <g, v>`` on the (capped) simplex.

    The minimising vertex ``v`` of the linear function over ``{l <= v <= u, sum v =
    1}`` puts every domain at its lower bound and pours the remaining mass into the
    domains in increasing order of ``g`` up to their caps (sort-free: the mass
    poured before domain ``i`` is the room of the domains cheaper than ``i``, an
    ``O(k^2)`` comparison). On the plain simplex the gap is ``sum_i h_i g_i - min_i
    g_i``. Zero exactly at a KKT point; an upper bound on the suboptimality for a
    convex objective.
    """
    k = h.shape[-1]
    if lower is None and upper is None:
        return jnp.dot(grad, h) - jnp.min(grad)
    lo, hi = _bounds(k, lower, upper, h.dtype)
    room = hi - lo
    index = jnp.arange(k)
    cheaper = (grad[None, :] < grad[:, None]) | (
        (grad[None, :] == grad[:, None]) & (index[None, :] < index[:, None]))
    before = jnp.sum(jnp.where(cheaper, room[None, :], 0.0), axis=1)
    vertex = lo + jnp.clip(1.0 - jnp.sum(lo) - before, 0.0, room)
    return jnp.dot(grad, h - vertex)


def md_init(h0: Any, lower: Any = None, upper: Any = None) -> MDState:
    """Start mirror descent at ``h0`` (projected onto the feasible set).

    Parameters
    ----------
    h0 : Array, shape ``(k,)``
        Positive starting mixture (zeros stay zero under multiplicative updates, so
        a domain that starts at 0 is never used unless its lower bound is positive).
    lower, upper : Array, shape ``(k,)`` or scalar, optional
    """
    h0 = jnp.asarray(h0)
    return MDState(h=kl_projection(_safe_log(h0), lower, upper),
                   count=jnp.zeros((), jnp.int32))


def md_update(grad: jax.Array, state: MDState, step_size: Any, lower: Any = None,
              upper: Any = None) -> MDState:
    """One mirror-descent step: ``h <- Proj_KL(h * exp(-eta * g))``.

    The step is taken in log space and shifted by the maximum before exponentiating
    (jaxopt's ``kl_stable``), so large gradients or step sizes cannot overflow; the
    KL projection (:func:`kl_projection`) renormalises and applies the bounds.

    Parameters
    ----------
    grad : Array, shape ``(k,)``
        Gradient of the objective at ``state.h``.
    state : MDState
    step_size : float or Array scalar
        ``eta > 0``.
    lower, upper : optional bounds, as for :func:`kl_projection`.
    """
    log_y = _safe_log(state.h) - step_size * grad
    return MDState(h=kl_projection(log_y, lower, upper), count=state.count + 1)


def _kl(p: jax.Array, q: jax.Array) -> jax.Array:
    """Generalised KL ``sum_i p_i log(p_i / q_i) - p_i + q_i``, accurate when ``p ~ q``.

    Written as ``p log1p(d / q) - d`` with ``d = p - q`` so that the nearly equal
    points of late iterations do not lose the (tiny) divergence to rounding.
    """
    diff = p - q
    safe_q = jnp.where(q > 0, q, 1.0)
    term = jnp.where(p > 0, p * jnp.log1p(diff / safe_q), 0.0) - diff
    return jnp.sum(jnp.where(q > 0, term, 0.0))


def check_solver_options(tol: float, max_iter: int) -> None:
    """Refuse a tolerance that is not a positive number or fewer than one iteration."""
    if not 0 < tol < float("inf"):  # NaN fails both
        raise BayesmixError(f"tol must be a positive number, got {tol}")
    if int(max_iter) < 1:
        raise BayesmixError(f"max_iter must be at least 1, got {max_iter}")


def minimize_on_simplex(
    objective: Callable[[jax.Array], jax.Array],
    h0: Any,
    *,
    lower: Any = None,
    upper: Any = None,
    step_size: Any = None,
    tol: float = 1e-9,
    max_iter: int = 3000,
) -> MDResult:
    """Minimise ``objective(h)`` over ``{l <= h <= u, sum h = 1}`` by mirror descent.

    Pure and traceable: ``jax.jit`` it, or ``jax.vmap`` it over posterior draws by
    closing ``objective`` over each draw's parameters (see
    :func:`bayesmix.decision.optimal_mixture_draws`). See the module docstring for
    the step-size rule (adaptive, accepted on the mirror sufficient-decrease
    condition) and the convergence test (Frank-Wolfe gap ``<= tol * max(1, |f|)``).

    Parameters
    ----------
    objective : callable
        ``h (k,) -> scalar``, differentiable with ``jax.grad``.
    h0 : Array, shape ``(k,)``
        Start (positive entries; projected onto the feasible set).
    lower, upper : Array, shape ``(k,)`` or scalar, optional
        Box constraints (default none).
    step_size : float, optional
        First step size; default ``1 / (max g - min g)`` at the start.
    tol : float
        Relative tolerance on the Frank-Wolfe gap (raised to ``100 * eps`` of the
        dtype, i.e. about ``1e-5`` in float32).
    max_iter : int
        Iteration cap (accepted plus rejected steps).

    Returns
    -------
    MDResult

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> target = jnp.array([0.2, 0.3, 0.5])
    >>> res = minimize_on_simplex(lambda h: jnp.sum((h - target) ** 2), jnp.ones(3) / 3)
    >>> bool(jnp.allclose(res.h, target, atol=1e-5))
    True
    """
    value_and_grad = jax.value_and_grad(objective)
    state = md_init(h0, lower, upper)
    value, grad = value_and_grad(state.h)
    dtype = state.h.dtype
    eps = jnp.finfo(dtype).eps
    if step_size is None:
        spread = jnp.max(grad) - jnp.min(grad)
        eta = 1.0 / jnp.maximum(spread, jnp.sqrt(eps))
    else:
        eta = jnp.asarray(step_size, dtype)
    gap = frank_wolfe_gap(grad, state.h, lower, upper)

    rtol = max(float(tol), 100.0 * float(eps))  # float32 cannot certify below ~1e-5

    def done(gap, value):
        return gap <= rtol * jnp.maximum(1.0, jnp.abs(value))

    min_eta = 1e-12 * eta  # forty rejections in a row: stalled at rounding level

    def cond(carry):
        state, value, grad, eta, gap, n_iter = carry
        return (n_iter < max_iter) & ~done(gap, value) & (eta > min_eta)

    def body(carry):
        state, value, grad, eta, gap, n_iter = carry
        proposal = md_update(grad, state, eta, lower, upper)
        new_value, new_grad = value_and_grad(proposal.h)
        model = (value + jnp.dot(grad, proposal.h - state.h) + _kl(proposal.h, state.h) / eta
                 + 8.0 * eps * jnp.abs(value))
        accept = jnp.isfinite(new_value) & jnp.all(jnp.isfinite(new_grad)) & (
            new_value <= model)
        new_gap = frank_wolfe_gap(new_grad, proposal.h, lower, upper)
        pick = partial(jnp.where, accept)
        state = MDState(h=pick(proposal.h, state.h), count=pick(proposal.count, state.count))
        return (state, pick(new_value, value), pick(new_grad, grad),
                pick(eta * _GROW, eta * _SHRINK), pick(new_gap, gap), n_iter + 1)

    carry = (state, value, grad, eta, gap, jnp.zeros((), jnp.int32))
    state, value, grad, eta, gap, n_iter = jax.lax.while_loop(cond, body, carry)
    return MDResult(h=state.h, value=value, gap=gap, n_iter=n_iter,
                    converged=done(gap, value), step_size=eta)
