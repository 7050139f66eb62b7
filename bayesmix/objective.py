"""The mixture objective over separately fitted targets (the paper's eq. 8 and 13).

``f(h; theta, N, D) = sum_t w_t L_t(N, D, h; theta_t)``, evaluated through each law's
``mean`` via :func:`bayesmix.model.centred_inputs` (:func:`law_loss`, which
:mod:`bayesmix.sensitivity` differentiates too): no formula lives here.
:func:`paired_draws` pairs the targets' posterior draws into draws of the joint
posterior; :func:`mixture_objective` checks the target weights and domains and builds
the :class:`MixtureObjective` that :mod:`bayesmix.decision` minimises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.discrepancy import discrepancy_draws
from bayesmix.model import TargetPosterior, centred_inputs

__all__ = ["FACTOR", "MixtureObjective", "law_loss", "mixture_objective", "paired_draws"]

FACTOR = "discrepancy_factor"
"""The name under which :meth:`MixtureObjective.with_factors` stores a target's factors."""


def law_loss(posterior: TargetPosterior, params: Mapping[str, jax.Array], n_params: Any,
             n_tokens: Any, h: jax.Array) -> jax.Array:
    """The law's mean loss of one draw at one run, a scalar (differentiable in ``h``).

    Parameters
    ----------
    posterior : TargetPosterior
        Gives the law, its reference scales and the target's column.
    params : dict name -> Array
        One draw's parameters (no draw dimension).
    n_params, n_tokens : scalar
        Parameters ``N`` and tokens ``D`` of the run.
    h : Array, shape ``(k,)``
        Domain weights, in ``posterior.domains`` order.
    """
    log_n, log_d, inputs = centred_inputs(
        posterior.law, posterior.scales, jnp.reshape(n_params, (1,)),
        jnp.reshape(n_tokens, (1,)), h[None, :], posterior.target_index)
    return jnp.reshape(posterior.law.mean(params, log_n, log_d, inputs), ())


def paired_draws(posteriors: Mapping[str, TargetPosterior]) -> dict[str, dict[str, np.ndarray]]:
    """Pair draw ``s`` of every target: ``{target: {param: (S, ...)}}``.

    Why pairing is a valid draw of the joint posterior: each target is fitted with
    its own likelihood (its own loss column) and its own priors, with no parameter
    shared between targets, so the joint posterior of all targets' parameters
    factorises, ``p(theta_1, ..., theta_T | y) = prod_t p(theta_t | y_t)``. Draws
    from different targets' chains are independent, and a tuple of independent draws
    from each factor is a draw from the product. Any pairing works (draw ``s`` with
    draw ``s``, or a shuffle); what must not happen is re-using one target's draw
    with several of another's as if that added information. (The factorisation is the
    model's: the targets are losses of the same runs, whose errors go together, which
    :mod:`bayesmix.coupling` measures and :func:`bayesmix.decision.decide` adds to the
    comparisons of mixtures.) When the targets have
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


@dataclass(eq=False)  # equality and hash: __eq__, __hash__ below
class MixtureObjective:
    """``f(h; theta, N, D) = sum_t w_t L_t(N, D, h; theta_t)`` (paper eq. 8 and 13).

    Each target's law is evaluated through its own ``mean`` at its own reference
    scales (:func:`bayesmix.model.centred_inputs`). Equal (and hashed alike) when it
    evaluates the same function: the same posteriors object, weights and domains; the
    draws (``params``, with or without factors) are arguments of the jitted solvers,
    so a solver compiled for one objective is reused by its :meth:`with_factors`
    copies (a compute path's grid points, say).

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

    def _key(self) -> tuple[Any, ...]:
        return id(self.posteriors), tuple(self.target_weights.items()), self.domains

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MixtureObjective) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

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
            loss = law_loss(self.posteriors[target], params[target], n_params, n_tokens, h)
            if FACTOR in params[target]:  # a discrepancy draw (see with_factors)
                loss = loss * params[target][FACTOR]
            total = total + weight * loss
        return total

    def discrepancy_factors(self, key: jax.Array, n_params: float,
                            n_tokens: float) -> dict[str, np.ndarray]:
        """``exp(delta_t)`` per draw at ``(N, D)`` for each target with a learnt term."""
        out = {}
        for i, (target, posterior) in enumerate(self.posteriors.items()):
            if posterior.discrepancy is not None:
                delta = discrepancy_draws(jax.random.fold_in(key, i), posterior.discrepancy,
                                          [n_params], [n_tokens], self.n_draws)
                out[target] = np.exp(delta[:, 0])
        return out

    def with_factors(self, factors: Mapping[str, np.ndarray]) -> MixtureObjective:
        """The objective with target ``t``'s loss of draw ``s`` times ``factors[t][s]``.

        How a discrepancy term at one ``(N, D)`` (``exp(delta)``, the same for every
        mixture) enters the objective's values; see :func:`bayesmix.decision.decide`.
        """
        params = {t: {**p, FACTOR: np.asarray(factors[t], float)} if t in factors else p
                  for t, p in self.params.items()}
        return MixtureObjective(self.posteriors, self.target_weights, self.domains, params)

    def log_mean_factors(self, n_params: float, n_tokens: float) -> dict[str, float]:
        """``log E[exp(delta_t)]`` at ``(N, D)`` for each target with a learnt term
        (:meth:`bayesmix.discrepancy.Discrepancy.log_mean_factor`)."""
        return {t: float(p.discrepancy.log_mean_factor([n_params], [n_tokens])[0])
                for t, p in self.posteriors.items() if p.discrepancy is not None}

    def decision_objectives(self, key: jax.Array, n_params: float, n_tokens: float
                            ) -> tuple[dict[str, np.ndarray], MixtureObjective,
                                       MixtureObjective]:
        """``(factors, per_draw, expected)``: the discrepancy's factors at ``(N, D)``
        (:meth:`discrepancy_factors`, ``key`` drawing them) and the objectives that
        ``h*`` (per draw) and ``h_bayes`` are solved on.

        Draw ``s``'s ``h*`` minimises ``sum_t w_t c_ts L_ts`` (``c = exp(delta)``, 1 for
        a target without a term); it is solved with each draw's factors divided by
        their ``w``-weighted mean over the targets (a positive constant of the draw:
        the same minimiser, at the law's scale). ``h_bayes`` minimises the expected
        objective; the factors are drawn independently of the law's parameters, so
        that is ``sum_t w_t E[c_t] E[L_t]``: the law's objective with the weights
        ``w_t E[c_t]`` (scaled to keep their sum; as factors), ``E[c_t]`` exact
        (:meth:`log_mean_factors`), so ``h_bayes`` does not depend on ``key``. With one
        target, or no factors, both are this objective: a positive factor cannot
        reorder mixtures.
        """
        factors = self.discrepancy_factors(key, n_params, n_tokens)
        weights = self.target_weights
        if not factors or len(weights) < 2:
            return factors, self, self
        total = sum(weights.values())
        c = {t: np.asarray(factors[t], float) if t in factors else np.ones(self.n_draws)
             for t in weights}
        per_draw_mean = sum(w * c[t] for t, w in weights.items()) / total
        log_means = {t: 0.0 for t in weights} | {
            t: v for t, v in self.log_mean_factors(n_params, n_tokens).items() if t in weights}
        top = max(log_means.values())
        means = {t: np.exp(v - top) for t, v in log_means.items()}  # no overflow
        scale = sum(w * means[t] for t, w in weights.items()) / total
        # the weights w_t E[c_t] / scale as a constant factor of every draw: the same
        # function as the per-draw objective's, so one compiled solver serves both
        expected = {t: np.full(self.n_draws, means[t] / scale) for t in weights}
        return (factors, self.with_factors({t: c[t] / per_draw_mean for t in weights}),
                self.with_factors(expected))

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
            f"target_weights names target(s) {', '.join(unknown)} that no fit provides "
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
