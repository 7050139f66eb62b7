"""Building blocks for law files in ``models/``.

A law file writes its equation with these helpers so that every law treats zero
weights, the reference point and the irreducible loss ``E`` the same way. Nothing
here is a law: the formulas live in the law files.

The reference point
-------------------
Every law is written in *centred* coordinates: ``log_n = log(N / N_ref)``,
``log_d = log(D / D_ref)`` (``N_ref`` and ``D_ref`` are the geometric means of the
training runs, stored with every fit), and mixture weights relative to the uniform
mixture, ``k * h_i``. A power term ``A / N^alpha`` is written
``exp(a - alpha * log_n)`` with ``a = log(A / N_ref^alpha)``, which is the size of
the term at the reference point. This keeps amplitudes and exponents nearly
uncorrelated in the posterior.

Zero weights
------------
Every block here gives a finite value and finite gradients at ``h_i = 0`` (RegMix
has many): :func:`power_of_weights` is exactly 0 there, :func:`log_mixed_power` and
:func:`centred_linear` are smooth in ``h``.

The blocks, and the laws that use them
--------------------------------------
- :func:`mixture_term`, ``sum_i w_i (k h_i)^gamma_i`` with shares and exponents
  from :func:`shares_and_exponents`: the data term ``1 / sum_i C_i h_i^gamma_i`` of
  the additive, additive_fixed_n, additive_fixed_nd, joint and full laws.
  :func:`mixture_priors` samples its ``m`` (size), shares and exponents together
  where a law samples nothing in between (the additive laws), and
  :func:`mixture_natural` maps them back.
- :func:`log_mixed_power` with :func:`mixing_power`, the centred
  ``(sum_i C_i h_i)^gamma``: ``A^h``, ``B^h`` of the joint and full laws (as
  :func:`mixed_power_term` with :func:`mixed_amplitudes`), the full law's
  ``alpha^h``, ``beta^h`` and the simple law's mixture term.
- :func:`with_irreducible_loss` (and :func:`irreducible_loss` under it): ``E`` from
  the loss at the reference point, in every law with an additive ``E``.
- :func:`centred_linear`, ``sum_i t_i (h_i - 1/k)``: Ye et al.'s M4.
- :func:`power_term` with :func:`power_priors` (and :func:`power_terms_natural` for
  the map back): ``A / N^alpha + B / D^beta`` of the chinchilla, additive, joint,
  simple laws (and ``B / D^beta`` of additive_fixed_n, the full law's amplitudes).
- :func:`amplitude_and_slopes`: the priors of Ye et al.'s M1, M2 and M4.
- :func:`amplitude`, :func:`exponent`, :func:`slopes`: the scalar priors.
- :func:`mixture_coefficients`, :func:`power_coefficient`, :func:`sum_coefficients`:
  the maps back to the paper's parameters that the laws' ``natural`` functions share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayesmix.sticks import ShareSticks, log_shares, share_order

_E_FLOOR = 0.02
_EXPONENT_SD = 0.75

__all__ = [
    "amplitude",
    "amplitude_and_slopes",
    "centred_linear",
    "mixture_coefficients",
    "mixture_natural",
    "mixture_priors",
    "power_coefficient",
    "power_priors",
    "power_term",
    "power_terms_natural",
    "sum_coefficients",
    "exponent",
    "irreducible_loss",
    "log_mixed_power",
    "mixing_logits",
    "mixed_amplitudes",
    "mixed_power_term",
    "mixing_power",
    "mixture_term",
    "power_of_weights",
    "shares_and_exponents",
    "slopes",
    "uniform_weights",
    "with_irreducible_loss",
]


def uniform_weights(k: int) -> jax.Array:
    """The reference mixture ``h_ref = (1/k, ..., 1/k)``, shape ``(k,)``."""
    return jnp.full((k,), 1.0 / k)


def power_of_weights(h: jax.Array, gamma: jax.Array) -> jax.Array:
    """``(k h)^gamma`` elementwise, exactly 0 where ``h == 0`` and with finite gradients.

    Parameters
    ----------
    h : Array, shape ``(..., k)``
        Domain weights on the simplex.
    gamma : Array, shape ``(k,)`` or scalar
        Positive exponents.
    """
    k = h.shape[-1]
    positive = h > 0
    safe = jnp.where(positive, h * k, 1.0)
    return jnp.where(positive, jnp.exp(gamma * jnp.log(safe)), 0.0)


def mixture_term(u: jax.Array, gamma: jax.Array, h: jax.Array) -> jax.Array:
    """``sum_i w_i (k h_i)^gamma_i`` with ``w = softmax(u)``, shape ``(...,)``.

    The centred form of ``sum_i C_i h_i^gamma_i`` (``C_i = c w_i k^gamma_i`` for any
    scale ``c``): it is 1 at the uniform mixture. Exactly 0 terms where ``h_i = 0``
    (:func:`power_of_weights`), so it is finite while one weight is positive.

    Parameters
    ----------
    u : Array, shape ``(k,)``
        Logits of the shares.
    gamma : Array, shape ``(k,)``
        Positive exponents.
    h : Array, shape ``(..., k)``
        Domain weights.
    """
    shares = jax.nn.softmax(u)
    return jnp.sum(shares * power_of_weights(h, gamma), axis=-1)


def centred_linear(t: jax.Array, h: jax.Array) -> jax.Array:
    """``sum_i t_i (h_i - 1/k)``, shape ``(...,)``: 0 at the uniform mixture.

    On the simplex it equals ``sum_i t_i h_i - mean(t)``, so a common shift of ``t``
    leaves it unchanged.
    """
    return jnp.sum(t * (h - 1.0 / h.shape[-1]), axis=-1)


def power_term(log_size: jax.Array, power: jax.Array, log_x: jax.Array) -> jax.Array:
    """``exp(a - alpha * log_x)``: the centred ``A / N^alpha`` (``log_x = log(N / N_ref)``)."""
    return jnp.exp(log_size - power * log_x)


def power_priors(loss_scale: float) -> dict[str, jax.Array]:
    """Priors of ``A / N^alpha + B / D^beta``: sites ``a, alpha, b, beta``, in that order.

    Each term at the reference point ~ a tenth of the loss (:func:`amplitude`), each
    exponent ``LogNormal(log 0.3, 0.75)`` (:func:`exponent`).
    """
    return {
        "a": amplitude("a", 0.1 * loss_scale),
        "alpha": exponent("alpha"),
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
    }


def power_terms_natural(params: dict[str, Any], n_ref: float, d_ref: float) -> dict[str, Any]:
    """The paper's ``A, alpha, B, beta`` from ``a, alpha, b, beta`` (:func:`power_coefficient`)."""
    return {
        "A": power_coefficient(params["a"], params["alpha"], n_ref),
        "alpha": params["alpha"],
        "B": power_coefficient(params["b"], params["beta"], d_ref),
        "beta": params["beta"],
    }


def amplitude_and_slopes(k: int, loss_scale: float, per_domain: bool = False) -> dict[str, Any]:
    """Priors of an exponential law of the weights: sites ``a`` then ``gamma``.

    ``a`` is the log of the reducible term at the uniform mixture, ~ a tenth of the
    loss (:func:`amplitude`; with ``per_domain``, ``k`` terms of a ``k``-th of that);
    ``gamma ~ Normal(0, 3)`` per domain (:func:`slopes`).
    """
    if per_domain:
        a = amplitude("a", 0.1 * loss_scale / k, (k,))
    else:
        a = amplitude("a", 0.1 * loss_scale)
    return {"a": a, "gamma": slopes("gamma", k)}


def amplitude(name: str, term_scale: float, shape: tuple[int, ...] = ()) -> jax.Array:
    """Prior on the log-size of a term at the reference point.

    ``log(term) ~ Normal(log(term_scale), 1)``: a term between about 1/7 and 7 times
    ``term_scale`` at two standard deviations.
    """
    loc = jnp.log(term_scale)
    if shape:
        return numpyro.sample(name, dist.Normal(loc, 1.0).expand(shape).to_event(len(shape)))
    return numpyro.sample(name, dist.Normal(loc, 1.0))


def exponent(name: str, typical: float = 0.3, shape: tuple[int, ...] = ()) -> jax.Array:
    """Prior on a positive scaling exponent: ``LogNormal(log(typical), 0.75)``."""
    d = dist.LogNormal(jnp.log(typical), _EXPONENT_SD)
    if shape:
        return numpyro.sample(name, d.expand(shape).to_event(len(shape)))
    return numpyro.sample(name, d)


def irreducible_loss(reducible_at_reference: jax.Array, loss_scale: float) -> jax.Array:
    """Sample the loss at the reference point and derive ``E`` from it.

    The sampled site is ``loss_ref`` (the predicted loss at ``N_ref``, ``D_ref`` and
    the uniform mixture, ``Normal(loss_scale, loss_scale / 4)``: the reference point
    is the centre of the training runs, so its loss is near their median);
    ``E = loss_ref - reducible_at_reference`` is recorded as a deterministic site.
    ``E`` gets its own prior, ``Gamma(2, 4 / loss_scale)`` (mean half the typical
    loss, near-zero density at ``E = 0``), added as a factor and evaluated at a
    smooth floor ``eps * softplus(E / eps)`` with ``eps = 0.02 * loss_scale`` (so
    slightly negative ``E`` has tiny, smoothly vanishing density instead of a wall
    that NUTS cannot cross): the map
    from ``loss_ref`` to ``E`` has unit Jacobian, so this is exactly that prior on
    ``E``, while the sampler moves along the well-identified ``loss_ref``.

    Parameters
    ----------
    reducible_at_reference : Array, scalar
        The law's reducible terms evaluated at the reference point.
    loss_scale : float
        Typical observed loss (the median of the training losses).
    """
    loss_ref = numpyro.sample("loss_ref", dist.Normal(loss_scale, 0.25 * loss_scale))
    e = numpyro.deterministic("E", loss_ref - reducible_at_reference)
    # A smooth floor instead of a wall at E = 0: the prior is evaluated at
    # eps * softplus(E / eps), equal to E for E >> eps and decaying like exp(E / eps)
    # below 0. A hard wall (-inf for E <= 0) made NUTS diverge and saturate its tree
    # depth when the data push E towards 0 (the paper's github loss).
    eps = _E_FLOOR * loss_scale
    soft = eps * jax.nn.softplus(e / eps)
    numpyro.factor("E_prior", dist.Gamma(2.0, 4.0 / loss_scale).log_prob(soft))
    return e


def with_irreducible_loss(
    params: dict[str, Any],
    mean: Callable[..., jax.Array],
    k: int,
    loss_scale: float,
    *,
    run_axis: bool = True,
) -> dict[str, Any]:
    """``params`` with ``E`` added: sampled through the loss at the reference point.

    Evaluates the law's own ``mean`` with ``E = 0`` at the reference point
    (``log_n = log_d = 0.0`` and the uniform mixture ``h``, as one run of shape
    ``(1, k)``) and passes that reducible part to :func:`irreducible_loss`. Call it
    last in ``sample_params``, once every other parameter is sampled.

    Parameters
    ----------
    params : dict
        Every parameter of the law but ``E``.
    mean : callable
        The law's ``mean(params, log_n, log_d, h)``.
    k : int
        Number of domains the law sees.
    loss_scale : float
        Typical observed loss (the median of the training losses).
    run_axis : bool
        False: pass ``h`` of shape ``(k,)`` instead (no run axis; for a law written
        with ``axis=-1`` reductions it is the same value). The additive laws use it:
        it is how they were written before this helper, and the traced arithmetic of
        their priors (hence the fits' numbers) stays bit-identical.

    Returns
    -------
    dict
        A new dict: ``params`` and, last, ``E``.
    """
    if run_axis:
        reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)[None, :])[0]
    else:
        reducible = jnp.reshape(mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)), ())
    return {**params, "E": irreducible_loss(reducible, loss_scale)}


def log_mixed_power(log_weights: jax.Array, gamma: jax.Array, h: jax.Array) -> jax.Array:
    """``gamma * log(sum_i w_i k h_i)`` with ``w = softmax(log_weights)``, shape ``(...,)``.

    The centred form of ``(sum_i C_i h_i)^gamma`` (joint, full and simple laws): it
    is 0 at the uniform mixture, so the term's size there is a separate amplitude.
    """
    k = h.shape[-1]
    return gamma * jnp.log(k * jnp.sum(jax.nn.softmax(log_weights) * h, axis=-1))


def mixing_logits(name: str, k: int) -> jax.Array:
    """Prior on the log-weights ``u`` of ``softmax(u)``: ``Normal(0, 1)``, shape ``(k,)``.

    A common shift of ``u`` leaves ``softmax(u)`` unchanged; this prior is what
    holds that one direction, so the sampler sees a proper posterior.
    """
    return numpyro.sample(name, dist.Normal(0.0, 1.0).expand((k,)).to_event(1))


def slopes(name: str, k: int, scale: float = 3.0) -> jax.Array:
    """Prior on signed per-domain coefficients: ``Normal(0, scale)``, shape ``(k,)``."""
    return numpyro.sample(name, dist.Normal(0.0, scale).expand((k,)).to_event(1))


def shares_and_exponents(k: int, typical: float = 0.3) -> tuple[jax.Array, jax.Array]:
    """Prior on the shares and exponents of a mixture term ``sum_i w_i (k h_i)^gamma_i``.

    The prior is ``w = softmax(u)`` with ``u ~ Normal(0, 1)`` (as :func:`mixing_logits`)
    and ``gamma_i ~ LogNormal(log(typical), 0.75)`` (as :func:`exponent`),
    independent. The shares are sampled as ``k - 1`` stick-breaking coordinates, site
    ``sticks`` (:class:`bayesmix.sticks.ShareSticks`, in the order the sampler sets:
    :mod:`bayesmix.sticks` says why), and ``u = log w`` is a deterministic site. What
    is sampled for the exponents is the elasticity of the term at the uniform
    mixture, ``log_e_i = log(w_i gamma_i)``, with its exact conditional prior
    ``Normal(log(typical) + log(w_i), 0.75)`` (a shift of ``log(gamma_i)`` by
    ``log(w_i)``: unit Jacobian, the same prior); ``gamma = e / w`` is a
    deterministic site.

    Why: to first order in ``log(k h)`` the term is ``1 + sum_i w_i gamma_i
    log(k h_i)``, so the runs pin the elasticities and, for a domain that barely
    moves a target's loss, nothing else. In ``(u, log(gamma))`` that is a thin curved
    ridge ``log(w_i(u)) + log(gamma_i) = const`` (curved through the softmax's
    normaliser): on the paper's runs NUTS crawled along it and chains settled in
    separate modes (additive law, arxiv: R-hat 1.39). Here the ridge is a coordinate
    direction of the shares at fixed ``log_e``.

    Returns
    -------
    u : Array, shape ``(k,)``
        Log shares, ``log w`` (deterministic site ``u``; ``softmax(u) = w``).
    gamma : Array, shape ``(k,)``
        Exponents (deterministic site ``gamma``).
    """
    if k == 1:
        log_w = jnp.zeros(1)
    else:
        order = share_order(k)
        log_w = log_shares(numpyro.sample("sticks", ShareSticks(k, order)), order)
    log_e = numpyro.sample(
        "log_e", dist.Normal(jnp.log(typical) + log_w, _EXPONENT_SD).to_event(1)
    )
    return (numpyro.deterministic("u", log_w),
            numpyro.deterministic("gamma", jnp.exp(log_e - log_w)))


def mixing_power(suffix: str, k: int, typical: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Prior on the exponent and logits of ``(sum_i w_i k h_i)^gamma``, ``w = softmax(u)``.

    The prior is ``gamma ~ LogNormal(log(typical), 0.75)`` (as :func:`exponent`) and
    ``u ~ Normal(0, 1)`` (as :func:`mixing_logits`), independent. What is sampled,
    besides ``gamma``, is ``g = gamma u / k`` with its exact conditional prior
    ``Normal(0, gamma / k)``; ``u = k g / gamma`` is a deterministic site.

    Why: to first order in ``h - 1/k``, ``gamma * log(sum_i w_i k h_i)`` is
    ``k sum_i (g_i - mean(g)) h_i``: the runs pin ``g`` (up to a common shift, which
    the prior holds) and see ``gamma`` only through the curvature. In ``(gamma, u)``
    that is the ridge ``u = k g / gamma``, a hyperbola reaching to ``gamma -> inf``
    with ``u -> 0``; on the paper's runs the joint law's fits found modes out there
    (``gamma_A`` of 10 to 110) and diverged. Here the ridge is the ``gamma`` axis at
    fixed ``g``.

    Parameters
    ----------
    suffix : str
        Site names are ``gamma{suffix}``, ``g{suffix}`` and ``u{suffix}``.
    k : int
    typical : float

    Returns
    -------
    gamma : Array, scalar
    u : Array, shape ``(k,)``
    """
    gamma = exponent(f"gamma{suffix}", typical=typical)
    g = numpyro.sample(f"g{suffix}", dist.Normal(0.0, gamma / k).expand((k,)).to_event(1))
    return gamma, numpyro.deterministic(f"u{suffix}", k * g / gamma)


def mixture_coefficients(m: jax.Array, u: jax.Array, gamma: jax.Array, k: int) -> jax.Array:
    """The paper's ``C_i`` of ``1 / sum_i C_i h_i^gamma_i`` written as ``exp(m) / mixture_term``.

    ``C_i = exp(-m) w_i k^gamma_i`` with ``w = softmax(u)``, shape ``(k,)``.
    """
    return jnp.exp(-m + jax.nn.log_softmax(u) + gamma * jnp.log(k))


def power_coefficient(log_size: jax.Array, power: jax.Array, reference: float) -> jax.Array:
    """The paper's ``A`` of ``A / N^alpha`` written as ``exp(a - alpha log(N / N_ref))``.

    ``A = exp(a) N_ref^alpha``: ``log_size`` is ``a``, ``power`` is ``alpha`` and
    ``reference`` is ``N_ref`` (likewise ``B``, ``beta``, ``D_ref``).
    """
    return jnp.exp(log_size + power * jnp.log(reference))


def sum_coefficients(u: jax.Array, scale: jax.Array, k: int) -> jax.Array:
    """The paper's ``C_i`` of ``(sum_i C_i h_i)^gamma`` written with shares ``softmax(u)``.

    ``sum_i C_i h_i = scale * sum_i w_i k h_i``, so ``C_i = k w_i scale``, shape ``(k,)``.
    """
    return k * jax.nn.softmax(u) * scale


def mixture_priors(k: int, loss_scale: float) -> dict[str, jax.Array]:
    """Priors of ``exp(m) / mixture_term(u, gamma, h)``: sites ``m``, ``u``, ``log_e``.

    ``m``: the term at the uniform mixture ~ a tenth of the loss (:func:`amplitude`);
    then :func:`shares_and_exponents`. Returns ``m``, ``u`` and ``gamma``.
    """
    params = {"m": amplitude("m", 0.1 * loss_scale)}
    params["u"], params["gamma"] = shares_and_exponents(k)
    return params


def mixture_natural(params: dict[str, Any], k: int) -> dict[str, Any]:
    """The paper's ``C_i``, ``gamma_i`` of ``1 / sum_i C_i h_i^gamma_i`` (keys ``C``, ``gamma``)."""
    return {
        "C": mixture_coefficients(params["m"], params["u"], params["gamma"], k),
        "gamma": params["gamma"],
    }


def mixed_power_term(
    log_size: jax.Array, u: jax.Array, gamma: jax.Array, h: jax.Array,
    power: jax.Array, log_x: jax.Array,
) -> jax.Array:
    """``exp(a + gamma log(sum_i w_i k h_i) - alpha log_x)``: the centred ``A^h / N^alpha``.

    ``A^h = (sum_i C^A_i h_i)^gamma^A`` as :func:`log_mixed_power`; ``power`` may depend
    on ``h`` (shape ``(...,)``, the full law) or not (the joint law).
    """
    return jnp.exp(log_size + log_mixed_power(u, gamma, h) - power * log_x)


def mixed_amplitudes(k: int) -> dict[str, jax.Array]:
    """Priors of ``A^h`` and ``B^h``: :func:`mixing_power` with suffixes ``_A`` then ``_B``.

    Returns ``gamma_A``, ``u_A``, ``gamma_B``, ``u_B``.
    """
    params = {}
    params["gamma_A"], params["u_A"] = mixing_power("_A", k)
    params["gamma_B"], params["u_B"] = mixing_power("_B", k)
    return params
