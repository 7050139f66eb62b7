"""Optimal data mixtures under posterior uncertainty, by mirror descent on the simplex.

The paper (Shukor et al. 2025, §5) finds the mixture that minimises a fitted law by
mirror descent: ``h <- h * exp(-eta * grad L(h))``, renormalised. This module writes
that optimiser as pure functions over JAX arrays and runs it once per posterior draw,
so the optimum ``h*`` becomes a distribution, and adds what a user needs to decide
which mixture to train on.

Layers
------
1. The optimiser, in the Optax/BlackJAX shape: :func:`md_init` / :func:`md_update`
   over an explicit :class:`MDState`, the Bregman (KL) projection
   :func:`kl_projection` onto the capped simplex ``{l <= h <= u, sum h = 1}``, the
   Frank-Wolfe gap :func:`frank_wolfe_gap` (the convergence certificate), and
   :func:`minimize_on_simplex`, a ``lax.while_loop`` that is ``jit``- and
   ``vmap``-able. Nothing here is jitted.
2. The objective ``sum_t w_t L_t(N, D, h)`` over targets fitted separately
   (:func:`mixture_objective`, the paper's eq. 8 and 13), evaluated through each
   law's ``mean`` via :func:`bayesmix.model.centred_inputs`: no formula lives here.
3. Decisions (the public edges, jitted here): the per-draw optimum
   :func:`optimal_mixture_draws`, the Bayes decision :func:`bayes_mixture`, the
   objective of any mixture per draw :func:`objective_draws`, :func:`prob_better`,
   :func:`expected_regret`, the path :func:`optimum_path` over a compute grid
   (:func:`compute_grid`), the
   constraints :func:`mixture_bounds`, and :func:`decide`, which does it all.

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

Speed: for 4000 draws x 8 targets x 7 domains (additive law, prior draws) the
``jit(vmap)`` solve takes about 1.6 s on 2 CPU cores in float64 (see
``bench/mirror_descent.py``); every lane of a vmapped ``while_loop`` runs until the
slowest draw converges (a few hundred iterations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.model import TargetPosterior, centred_inputs

__all__ = [
    "MDResult",
    "MDState",
    "MixtureObjective",
    "OptimumReport",
    "bayes_mixture",
    "compute_grid",
    "decide",
    "expected_regret",
    "frank_wolfe_gap",
    "kl_projection",
    "md_init",
    "md_update",
    "minimize_on_simplex",
    "mixture_bounds",
    "mixture_objective",
    "objective_draws",
    "optimal_mixture_draws",
    "optimum_path",
    "paired_draws",
    "prob_better",
    "summarize",
]

_GROW = 1.5
_SHRINK = 0.5


# --------------------------------------------------------------------------------------
# 1. The optimiser
# --------------------------------------------------------------------------------------


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
        :func:`mixture_bounds`, not here). Default ``0`` and ``1``.

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
    :func:`optimal_mixture_draws`). See the module docstring for the step-size rule
    (adaptive, accepted on the mirror sufficient-decrease condition) and the
    convergence test (Frank-Wolfe gap ``<= tol * max(1, |f|)``).

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


# --------------------------------------------------------------------------------------
# 2. The objective over separately fitted targets
# --------------------------------------------------------------------------------------


def paired_draws(posteriors: Mapping[str, TargetPosterior]) -> dict[str, dict[str, np.ndarray]]:
    """Pair draw ``s`` of every target: ``{target: {param: (S, ...)}}``.

    Why pairing is a valid draw of the joint posterior: each target is fitted with
    its own likelihood (its own loss column) and its own priors, with no parameter
    shared between targets, so the joint posterior of all targets' parameters
    factorises, ``p(theta_1, ..., theta_T | y) = prod_t p(theta_t | y_t)``. Draws
    from different targets' chains are independent, and a tuple of independent draws
    from each factor is a draw from the product. Any pairing works (draw ``s`` with
    draw ``s``, or a shuffle); what must not happen is re-using one target's draw
    with several of another's as if that added information. When the targets have
    different numbers of draws the first ``min_t S_t`` of each are kept (every draw
    of every chain is a draw of that target's posterior, so truncation keeps a valid,
    if smaller, sample; it may drop whole chains); a point fit (``S = 1``) is
    broadcast to the others' draws, which makes it a plug-in, not a posterior.
    """
    if not posteriors:
        raise BayesmixError("no fitted targets given to optimise over")
    counts = {t: p.n_draws for t, p in posteriors.items()}
    many = [c for c in counts.values() if c > 1]
    n = min(many) if many else 1
    out: dict[str, dict[str, np.ndarray]] = {}
    for target, posterior in posteriors.items():
        params = {}
        for name, value in posterior.params.items():
            value = np.asarray(value)
            if value.shape[0] == 1 and n > 1:
                value = np.broadcast_to(value, (n, *value.shape[1:]))
            params[name] = value[:n]
        out[target] = params
    return out


@dataclass(eq=False)
class MixtureObjective:
    """``f(h; theta, N, D) = sum_t w_t L_t(N, D, h; theta_t)`` (paper eq. 8 and 13).

    Each target's law is evaluated through its own ``mean`` at its own reference
    scales (:func:`bayesmix.model.centred_inputs`). Hashable by identity, so jitted
    solvers compiled for one objective are reused.

    Attributes
    ----------
    posteriors : dict of target -> TargetPosterior
    target_weights : dict of target -> float
        ``w_t`` (targets with zero weight are dropped).
    domains : tuple of str
        The order of ``h``.
    params : dict target -> {param: ndarray (S, ...)}
        Paired draws (see :func:`paired_draws`).
    """

    posteriors: dict[str, TargetPosterior]
    target_weights: dict[str, float]
    domains: tuple[str, ...]
    params: dict[str, dict[str, np.ndarray]] = field(repr=False)

    @property
    def n_draws(self) -> int:
        return int(next(iter(next(iter(self.params.values())).values())).shape[0])

    @property
    def k(self) -> int:
        return len(self.domains)

    def __call__(self, h: jax.Array, params: Mapping[str, Mapping[str, jax.Array]],
                 n_params: Any, n_tokens: Any) -> jax.Array:
        """The objective for one draw: ``h`` shape ``(k,)``, ``params`` without draw dim."""
        total = jnp.zeros((), h.dtype)
        for target, weight in self.target_weights.items():
            posterior = self.posteriors[target]
            log_n, log_d, inputs = centred_inputs(
                posterior.law, posterior.scales, jnp.reshape(n_params, (1,)),
                jnp.reshape(n_tokens, (1,)), h[None, :], posterior.target_index)
            loss = posterior.law.mean(params[target], log_n, log_d, inputs)
            total = total + weight * jnp.reshape(loss, ())
        return total

    def draw(self, s: int) -> dict[str, dict[str, jax.Array]]:
        """The parameters of draw ``s`` (no draw dimension)."""
        return {t: {n: jnp.asarray(v[s]) for n, v in p.items()} for t, p in self.params.items()}

    def jax_params(self) -> dict[str, dict[str, jax.Array]]:
        """All paired draws as JAX arrays, ``{target: {param: (S, ...)}}``."""
        return {t: {n: jnp.asarray(v) for n, v in p.items()} for t, p in self.params.items()}


def mixture_objective(posteriors: Mapping[str, TargetPosterior],
                      target_weights: Mapping[str, float] | None = None) -> MixtureObjective:
    """Build the weighted objective over separately fitted targets.

    Parameters
    ----------
    posteriors : dict of target -> TargetPosterior
        Fits sharing the same training domains (same order); params have a leading
        draw dimension ``S`` (``S = 1`` for a point fit).
    target_weights : dict of target -> float, optional
        ``w_t >= 0``; default ``1 / T`` for every target. Targets absent from the dict
        get weight 0. Weights are used as given (not renormalised).

    Returns
    -------
    MixtureObjective
    """
    posteriors = dict(posteriors)
    if not posteriors:
        raise BayesmixError("no fitted targets given to optimise over")
    if target_weights is None:
        target_weights = {t: 1.0 / len(posteriors) for t in posteriors}
    unknown = sorted(set(target_weights) - set(posteriors))
    if unknown:
        raise BayesmixError(
            f"--weights names target(s) {', '.join(unknown)} that no fit provides "
            f"(fitted: {', '.join(posteriors)})")
    bad = {t: w for t, w in target_weights.items() if not (math.isfinite(w) and w >= 0)}
    if bad:
        raise BayesmixError(f"target weights must be finite and >= 0, got {bad}")
    used = {t: float(w) for t, w in target_weights.items() if w > 0}
    if not used:
        raise BayesmixError("all target weights are zero: nothing to optimise")
    first = posteriors[next(iter(used))]
    for target in used:
        if posteriors[target].domains != first.domains:
            raise BayesmixError(
                f"fit of '{target}' has domains {posteriors[target].domains} but fit of "
                f"'{first.target}' has {first.domains}: refit on the same run table")
    chosen = {t: posteriors[t] for t in used}
    return MixtureObjective(posteriors=chosen, target_weights=used, domains=first.domains,
                            params=paired_draws(chosen))


# --------------------------------------------------------------------------------------
# 3. Constraints and decisions
# --------------------------------------------------------------------------------------


def _per_domain(value: float | Mapping[str, float] | None, domains: Sequence[str],
                default: float, option: str) -> np.ndarray:
    if value is None:
        return np.full(len(domains), default)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(domains))
        if unknown:
            raise BayesmixError(f"{option} names unknown domain(s) {', '.join(unknown)} "
                                f"(domains: {', '.join(domains)})")
        return np.array([float(value.get(d, default)) for d in domains])
    return np.full(len(domains), float(value))


def mixture_bounds(
    domains: Sequence[str],
    *,
    min_weight: float | Mapping[str, float] | None = None,
    max_weight: float | Mapping[str, float] | None = None,
    tokens: Mapping[str, float] | None = None,
    max_epochs: float | Mapping[str, float] | None = None,
    n_tokens: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-domain bounds ``(l, u)`` from user constraints, checked for feasibility.

    ``l_i = min_weight_i`` and ``u_i = min(max_weight_i, e_i * T_i / D)``: training on
    ``D`` tokens with weight ``h_i`` reads ``h_i * D`` tokens of domain ``i``, which
    may not exceed ``e_i`` passes over its ``T_i`` available tokens. Domains without
    a token count are not limited by data.

    Parameters
    ----------
    domains : sequence of str
    min_weight, max_weight : float or dict domain -> float, optional
        One value for every domain, or per domain (others default to 0 and 1).
    tokens : dict domain -> float, optional
        Available tokens ``T_i``.
    max_epochs : float or dict domain -> float, optional
        ``e_i`` (default 1: no repetition) when ``tokens`` is given.
    n_tokens : float, optional
        Training tokens ``D`` of the planned run; required with ``tokens``.

    Returns
    -------
    lower, upper : ndarray, shape ``(k,)``

    Raises
    ------
    BayesmixError
        Negative bounds, ``l > u`` or ``sum l > 1`` or ``sum u < 1``.
    """
    lower = _per_domain(min_weight, domains, 0.0, "--min-weight")
    upper = _per_domain(max_weight, domains, 1.0, "--max-weight")
    if tokens:
        if n_tokens is None or not n_tokens > 0:
            raise BayesmixError("--tokens needs the planned training tokens --D > 0")
        available = _per_domain(tokens, domains, np.inf, "--tokens")
        epochs = _per_domain(max_epochs, domains, 1.0, "--max-epochs")
        if np.any(available < 0) or np.any(epochs <= 0):
            raise BayesmixError("--tokens must be >= 0 and --max-epochs > 0")
        upper = np.minimum(upper, epochs * available / float(n_tokens))
    elif max_epochs is not None:
        raise BayesmixError("--max-epochs needs --tokens (available tokens per domain)")
    if not (np.all(np.isfinite(lower)) and np.all(lower >= 0) and np.all(upper >= 0)):
        raise BayesmixError(f"weight bounds must be >= 0, got min {lower.tolist()}")
    bad = [d for d, lo, hi in zip(domains, lower, upper, strict=True) if lo > hi]
    if bad:
        raise BayesmixError(f"minimum weight exceeds maximum (after token limits) for "
                            f"domain(s) {', '.join(bad)}")
    if lower.sum() > 1.0 + 1e-12:
        raise BayesmixError(f"minimum weights sum to {lower.sum():.4g} > 1: infeasible")
    if upper.sum() < 1.0 - 1e-12:
        raise BayesmixError(
            f"maximum weights (after token limits at D={n_tokens:g}) sum to "
            f"{upper.sum():.4g} < 1: not enough data for this run"
            if tokens else f"maximum weights sum to {upper.sum():.4g} < 1: infeasible")
    return lower, np.minimum(upper, 1.0)


def _start(k: int, lower: Any, upper: Any) -> jax.Array:
    return kl_projection(jnp.zeros((k,)), lower, upper)


@partial(jax.jit, static_argnames=("objective", "tol", "max_iter"))
def _solve_draws(objective, params, n_params, n_tokens, lower, upper, *, tol, max_iter):
    h0 = _start(objective.k, lower, upper)

    def one(p):
        return minimize_on_simplex(lambda h: objective(h, p, n_params, n_tokens), h0,
                                   lower=lower, upper=upper, tol=tol, max_iter=max_iter)

    return jax.vmap(one)(params)


@partial(jax.jit, static_argnames=("objective", "tol", "max_iter"))
def _solve_mean(objective, params, n_params, n_tokens, lower, upper, *, tol, max_iter):
    h0 = _start(objective.k, lower, upper)

    def expected(h):
        return jnp.mean(jax.vmap(lambda p: objective(h, p, n_params, n_tokens))(params))

    return minimize_on_simplex(expected, h0, lower=lower, upper=upper, tol=tol,
                               max_iter=max_iter)


@partial(jax.jit, static_argnames=("objective",))
def _values(objective, params, n_params, n_tokens, mixtures):
    per_draw = jax.vmap(lambda h, p: objective(h, p, n_params, n_tokens), (None, 0))
    return jax.vmap(lambda h: per_draw(h, params))(mixtures)


def _bounds_or_default(objective, lower, upper):
    """Bounds as arrays, or ``(None, None)`` when they do not constrain (faster path)."""
    lo = np.zeros(objective.k) if lower is None else np.broadcast_to(
        np.asarray(lower, float), (objective.k,))
    hi = np.ones(objective.k) if upper is None else np.broadcast_to(
        np.asarray(upper, float), (objective.k,))
    if np.all(lo <= 0) and np.all(hi >= 1):
        return None, None
    return jnp.asarray(lo), jnp.asarray(hi)


def optimal_mixture_draws(objective: MixtureObjective, n_params: float, n_tokens: float, *,
                          lower: Any = None, upper: Any = None, tol: float = 1e-9,
                          max_iter: int = 3000) -> MDResult:
    """``h*`` for every posterior draw at ``(N, D)`` (``jit(vmap)`` over draws).

    Returns
    -------
    MDResult
        Fields with a leading draw dimension: ``h`` shape ``(S, k)``, ``value`` ``(S,)``.
    """
    lo, hi = _bounds_or_default(objective, lower, upper)
    return _solve_draws(objective, objective.jax_params(), jnp.asarray(float(n_params)),
                        jnp.asarray(float(n_tokens)), lo, hi, tol=tol, max_iter=max_iter)


def bayes_mixture(objective: MixtureObjective, n_params: float, n_tokens: float, *,
                  lower: Any = None, upper: Any = None, tol: float = 1e-9,
                  max_iter: int = 3000) -> MDResult:
    """The Bayes decision ``h_bayes = argmin_h E_post[f(h; theta, N, D)]``.

    The one mixture to launch: of all mixtures it has the least expected objective
    (and so the least expected regret). It is generally not the mean or median of
    the per-draw ``h*``, which need not even be good mixtures when ``h*`` is spread.
    """
    lo, hi = _bounds_or_default(objective, lower, upper)
    return _solve_mean(objective, objective.jax_params(), jnp.asarray(float(n_params)),
                       jnp.asarray(float(n_tokens)), lo, hi, tol=tol, max_iter=max_iter)


def objective_draws(objective: MixtureObjective, n_params: float, n_tokens: float,
                    mixtures: Any) -> np.ndarray:
    """The objective of given mixtures for every draw.

    Parameters
    ----------
    mixtures : array_like, shape ``(k,)`` or ``(m, k)``

    Returns
    -------
    ndarray, shape ``(S,)`` or ``(m, S)``
    """
    mixtures = np.asarray(mixtures, float)
    single = mixtures.ndim == 1
    values = _values(objective, objective.jax_params(), jnp.asarray(float(n_params)),
                     jnp.asarray(float(n_tokens)), jnp.asarray(np.atleast_2d(mixtures)))
    values = np.asarray(values)
    return values[0] if single else values


def summarize(values: Any) -> dict[str, float]:
    """``{mean, median, q05, q95}`` of draws along the first axis (floats or lists)."""
    values = np.asarray(values, float)

    def out(x):
        return x.tolist() if isinstance(x, np.ndarray) else float(x)

    return {
        "mean": out(values.mean(axis=0)),
        "median": out(np.median(values, axis=0)),
        "q05": out(np.quantile(values, 0.05, axis=0)),
        "q95": out(np.quantile(values, 0.95, axis=0)),
    }


def prob_better(values_a: Any, values_b: Any) -> float:
    """``P(f(a) < f(b))`` over paired draws, ties counting one half.

    With ties at one half, comparing a mixture with itself gives exactly 0.5.
    """
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    return float(np.mean(a < b) + 0.5 * np.mean(a == b))


def expected_regret(objective: MixtureObjective, n_params: float, n_tokens: float,
                    mixture: Any, optimum_values: Any) -> float:
    """``E_post[f(h) - f(h*_s)]``: the expected loss of committing to ``mixture``.

    ``optimum_values`` are the per-draw minima (``optimal_mixture_draws(...).value``)
    under the same constraints.
    """
    values = objective_draws(objective, n_params, n_tokens, mixture)
    return float(np.mean(values - np.asarray(optimum_values)))


def compute_grid(flops: Sequence[float], tokens_per_param: float = 20.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` along a compute budget with ``C = 6 N D`` and ``D = r N``.

    Parameters
    ----------
    flops : sequence of float
        Training compute budgets ``C`` (FLOPs).
    tokens_per_param : float
        ``r = D / N`` (20 is the Chinchilla-optimal ratio).

    Returns
    -------
    n_params, n_tokens : ndarray, shape ``(len(flops),)``
    """
    flops = np.asarray(flops, float)
    if np.any(flops <= 0) or not tokens_per_param > 0:
        raise BayesmixError("compute budgets and tokens per parameter must be positive")
    n_params = np.sqrt(flops / (6.0 * tokens_per_param))
    return n_params, tokens_per_param * n_params


def optimum_path(objective: MixtureObjective, n_params: Sequence[float],
                 n_tokens: Sequence[float], *, lower: Any = None, upper: Any = None,
                 tol: float = 1e-9, max_iter: int = 3000) -> list[dict[str, Any]]:
    """``h*(N, D)`` along a compute grid (the paper's Fig. 6).

    Only scale-dependent laws (the joint and full laws, where ``N`` and ``D`` terms
    depend on ``h``) give a path that moves; for the additive law it is flat, which
    this also shows. Fixed bounds are used at every point (token limits depend on
    ``D``: call :func:`mixture_bounds` per point for those).

    Returns
    -------
    list of dict
        One per grid point: ``N``, ``D``, ``h_star`` (per-domain summaries) and
        ``h_bayes`` (per-domain weight).
    """
    if len(n_params) != len(n_tokens):
        raise BayesmixError("the compute grid needs as many N values as D values")
    path = []
    for n, d in zip(n_params, n_tokens, strict=True):
        draws = optimal_mixture_draws(objective, n, d, lower=lower, upper=upper, tol=tol,
                                      max_iter=max_iter)
        bayes = bayes_mixture(objective, n, d, lower=lower, upper=upper, tol=tol,
                              max_iter=max_iter)
        path.append({
            "N": float(n), "D": float(d),
            "h_star": _per_domain_summary(objective.domains, np.asarray(draws.h)),
            "h_bayes": dict(zip(objective.domains, np.asarray(bayes.h).tolist(), strict=True)),
        })
    return path


def _per_domain_summary(domains: Sequence[str], h_draws: np.ndarray) -> dict[str, dict]:
    stats = summarize(h_draws)
    return {d: {name: stats[name][i] for name in stats} for i, d in enumerate(domains)}


@dataclass(frozen=True)
class OptimumReport:
    """Everything :func:`decide` found; ``to_dict()`` is the CLI's JSON.

    Attributes
    ----------
    domains : tuple of str
    n_params, n_tokens : float
    target_weights : dict
    lower, upper : ndarray, shape ``(k,)``
    h_star_draws : ndarray, shape ``(S, k)``
    h_star_values : ndarray, shape ``(S,)``
    h_bayes : ndarray, shape ``(k,)``
    objective : dict name -> ndarray ``(S,)``
        Objective draws for ``h_bayes`` and every reference mixture.
    mixtures : dict name -> ndarray ``(k,)``
        The mixtures compared (``h_bayes`` first).
    converged : float
        Fraction of draws whose optimisation converged.
    max_gap : float
        Largest Frank-Wolfe gap over draws.
    bayes_converged : bool
        Whether the solve for ``h_bayes`` met the gap test.
    """

    domains: tuple[str, ...]
    n_params: float
    n_tokens: float
    target_weights: dict[str, float]
    lower: np.ndarray
    upper: np.ndarray
    h_star_draws: np.ndarray
    h_star_values: np.ndarray
    h_bayes: np.ndarray
    objective: dict[str, np.ndarray]
    mixtures: dict[str, np.ndarray]
    converged: float
    max_gap: float
    bayes_converged: bool

    def to_dict(self) -> dict[str, Any]:
        comparisons = {}
        bayes_values = self.objective["h_bayes"]
        for name, values in self.objective.items():
            mixture = self.mixtures[name]
            comparisons[name] = {
                "mixture": dict(zip(self.domains, mixture.tolist(), strict=True)),
                "feasible": bool(np.all(mixture >= self.lower - 1e-9)
                                 and np.all(mixture <= self.upper + 1e-9)),
                **summarize(values),
                "p_h_bayes_better": prob_better(bayes_values, values),
                "expected_regret": float(np.mean(values - self.h_star_values)),
            }
        return {
            "N": self.n_params,
            "D": self.n_tokens,
            "target_weights": self.target_weights,
            "n_draws": int(self.h_star_values.shape[0]),
            "bounds": {d: {"min": float(lo), "max": float(hi)} for d, lo, hi in
                       zip(self.domains, self.lower, self.upper, strict=True)},
            "h_star": _per_domain_summary(self.domains, self.h_star_draws),
            "h_bayes": dict(zip(self.domains, self.h_bayes.tolist(), strict=True)),
            "objective": comparisons,
            "optimizer": {"method": "mirror descent (KL-projected, adaptive step)",
                          "fraction_converged": self.converged,
                          "max_frank_wolfe_gap": self.max_gap,
                          "h_bayes_converged": self.bayes_converged},
        }


def decide(
    posteriors: Mapping[str, TargetPosterior],
    n_params: float,
    n_tokens: float,
    *,
    target_weights: Mapping[str, float] | None = None,
    lower: Any = None,
    upper: Any = None,
    references: Mapping[str, Any] | None = None,
    baseline: Mapping[str, TargetPosterior] | None = None,
    tol: float = 1e-9,
    max_iter: int = 3000,
) -> OptimumReport:
    """The full decision at ``(N, D)``: ``h*`` per draw, ``h_bayes``, and comparisons.

    Parameters
    ----------
    posteriors : dict target -> TargetPosterior
    n_params, n_tokens : float
        Parameters ``N`` and training tokens ``D`` of the planned run.
    target_weights : dict target -> float, optional
    lower, upper : ndarray, shape ``(k,)``, optional
        From :func:`mixture_bounds`.
    references : dict name -> array ``(k,)``, optional
        Mixtures to compare with (e.g. ``uniform``, natural token proportions);
        renormalised when their sum is within 0.02 of one (rounded published weights).
    baseline : dict target -> TargetPosterior with ``S = 1``, optional
        A point fit; its optimum (under the same weights and bounds) is compared as
        ``baseline_h_star``, judged by the Bayesian posterior.

    Returns
    -------
    OptimumReport
    """
    objective = mixture_objective(posteriors, target_weights)
    k = objective.k
    lo, hi = (np.zeros(k) if lower is None else np.asarray(lower, float),
              np.ones(k) if upper is None else np.asarray(upper, float))
    draws = optimal_mixture_draws(objective, n_params, n_tokens, lower=lo, upper=hi, tol=tol,
                                  max_iter=max_iter)
    bayes = bayes_mixture(objective, n_params, n_tokens, lower=lo, upper=hi, tol=tol,
                          max_iter=max_iter)
    mixtures: dict[str, np.ndarray] = {"h_bayes": np.asarray(bayes.h)}
    if baseline is not None:
        weights = {t: w for t, w in objective.target_weights.items()}
        missing = sorted(set(weights) - set(baseline))
        if missing:
            raise BayesmixError(f"baseline has no fit for target(s) {', '.join(missing)}")
        point = mixture_objective({t: baseline[t] for t in weights}, weights)
        if point.domains != objective.domains:
            raise BayesmixError("baseline fits have different domains from the Bayesian fits")
        if point.n_draws != 1:
            raise BayesmixError(f"baseline fits must be point fits (S = 1), got "
                                f"{point.n_draws} draws")
        base = bayes_mixture(point, n_params, n_tokens, lower=lo, upper=hi, tol=tol,
                             max_iter=max_iter)
        mixtures["baseline_h_star"] = np.asarray(base.h)
    for name, mixture in (references or {}).items():
        mixture = np.asarray(mixture, float)
        if mixture.shape != (k,) or np.any(mixture < 0) or abs(mixture.sum() - 1) > 0.02:
            raise BayesmixError(f"reference mixture '{name}' is not a point of the "
                                f"{k}-domain simplex: {mixture.tolist()}")
        mixtures[name] = mixture / mixture.sum()
    names = list(mixtures)
    values = objective_draws(objective, n_params, n_tokens, np.stack([mixtures[n] for n in names]))
    return OptimumReport(
        domains=objective.domains, n_params=float(n_params), n_tokens=float(n_tokens),
        target_weights=dict(objective.target_weights), lower=lo, upper=hi,
        h_star_draws=np.asarray(draws.h), h_star_values=np.asarray(draws.value),
        h_bayes=np.asarray(bayes.h), objective=dict(zip(names, values, strict=True)),
        mixtures=mixtures, converged=float(np.mean(np.asarray(draws.converged))),
        max_gap=float(np.max(np.asarray(draws.gap))),
        bayes_converged=bool(bayes.converged),
    )
