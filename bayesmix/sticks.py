"""The coordinates a mixture term's shares are sampled in: stick-breaking, strongest first.

The shares ``w = softmax(u)`` of ``sum_i w_i (k h_i)^gamma_i`` have the prior of
``u ~ Normal(0, 1)`` independent (a logistic-normal ``w``; the common shift of ``u``
is unseen). They are *sampled* as ``k - 1`` stick-breaking coordinates in an order
of the domains: the first stick is the first domain's share, the next the second's
share of what is left, and so on (NumPyro's ``StickBreakingTransform``, in log space
here so that a tiny share keeps its logarithm). The prior is the same in every order;
only the coordinates differ.

Why: a domain that barely moves a target's loss has a small exponent, so its term
``w_i (k h_i)^gamma_i`` is nearly the constant ``w_i``. The runs pin the sum of those
constants over the weak domains (the shares of the strong ones are pinned by the
curvature of the loss in their weights, and the shares sum to 1) but not how it is
split. In logits that set is the curved ridge ``log sum_weak exp(u_i) = const``: on
the paper's runs (additive law, book) NUTS needed a step size 0.016 for its width and
248 leapfrog steps a draw to follow it. With the strong domains first, the weak
domains' split is the last sticks' coordinates, with nothing curved about it
(``docs/speed.md``, third study). The order is a sampler setting, like the metric:
:func:`strongest_first` takes it from the elasticities at the start point, and the
sampler passes it to the model as the argument ``share_order``
(:func:`bayesmix.model.bound_model`, which traces the law's priors under
:func:`ordered_shares`). Everything else (the start search, the refits
of a discrepancy, the prior checks) uses the domains' own order.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints

__all__ = ["ShareSticks", "log_shares", "ordered_shares", "share_order",
           "stick_coordinates", "strongest_first"]

_ORDER: contextvars.ContextVar[Any] = contextvars.ContextVar("share_order", default=None)


def _shifted(sticks: jax.Array) -> jax.Array:
    """NumPyro's balancing shift: all-zero sticks are the uniform mixture."""
    n = sticks.shape[-1]
    return sticks - jnp.log(n - jnp.arange(n))


def log_shares(sticks: jax.Array, order: jax.Array) -> jax.Array:
    """``log w`` in the domains' order from the sticks (shape ``(..., k - 1)``) in ``order``.

    ``w_(1) = z_1``, ``w_(j) = z_j prod_{i<j} (1 - z_i)``, ``w_(k) = prod_i (1 - z_i)``
    with ``z = sigmoid(sticks - log(k - 1 - j))``, the ``(j)`` following ``order``.
    """
    x = _shifted(sticks)
    pos, neg = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    before = jnp.cumsum(neg, axis=-1) - neg
    ordered = jnp.concatenate([pos + before, jnp.sum(neg, axis=-1, keepdims=True)], axis=-1)
    return jnp.take(ordered, jnp.argsort(order), axis=-1)


def stick_coordinates(log_w: jax.Array, order: jax.Array) -> jax.Array:
    """The sticks in ``order`` of the shares ``exp(log_w)`` (the inverse of :func:`log_shares`)."""
    ordered = jnp.take(log_w, order, axis=-1)
    # log of what is left after each stick: logsumexp of the shares that follow it
    rest = jnp.flip(jax.lax.cumlogsumexp(jnp.flip(ordered, -1), axis=ordered.ndim - 1), -1)
    n = ordered.shape[-1] - 1
    return ordered[..., :-1] - rest[..., 1:] + jnp.log(n - jnp.arange(n))


class ShareSticks(dist.Distribution):
    """Logistic-normal shares (``softmax`` of ``k`` standard normals) in stick coordinates.

    Parameters
    ----------
    k : int
        Number of shares (at least 2).
    order : Array of int, shape ``(k,)``
        The domains' order along the stick (a permutation of ``0..k-1``).
    """

    support = constraints.real_vector
    pytree_data_fields = ("order",)
    pytree_aux_fields = ("k",)

    def __init__(self, k: int, order: jax.Array, *, validate_args: bool | None = None):
        self.k = k
        self.order = order
        super().__init__(batch_shape=(), event_shape=(k - 1,), validate_args=validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        u = jax.random.normal(key, (*sample_shape, self.k))
        return stick_coordinates(jax.nn.log_softmax(u, axis=-1), self.order)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """The logistic-normal density of the shares times the sticks' Jacobian.

        ``y = log(w_:-1 / w_k) ~ Normal(0, I + 11')`` (the ``k`` normals' common shift
        integrated out) and the density of ``w`` is that of ``y`` over ``prod_i w_i``;
        the map from the sticks to the shares has ``log |det J| = sum_(j<k) log w_(j)
        + sum_j log(1 - z_j)``. What is left of ``sum_i log w_i`` is the last share
        along the stick.
        """
        log_w = log_shares(value, self.order)
        y = log_w[..., :-1] - log_w[..., -1:]
        n = self.k - 1
        quad = jnp.sum(y ** 2, axis=-1) - jnp.sum(y, axis=-1) ** 2 / self.k
        log_normal = -0.5 * quad - 0.5 * n * jnp.log(2 * jnp.pi) - 0.5 * jnp.log(self.k)
        last = jnp.take(log_w, self.order[-1], axis=-1)
        return log_normal - last + jnp.sum(jax.nn.log_sigmoid(-_shifted(value)), axis=-1)


def share_order(k: int) -> jax.Array:
    """The order of the sticks while a law's priors are traced: the domains' own order,
    or the one :func:`ordered_shares` set (:func:`bayesmix.model.loss_model`'s
    ``share_order``)."""
    order = _ORDER.get()
    return jnp.arange(k) if order is None else order


@contextlib.contextmanager
def ordered_shares(order: Any) -> Iterator[None]:
    """Within this block, :func:`share_order` is ``order`` (an array of int, shape ``(k,)``,
    possibly traced: it is passed on to :class:`ShareSticks`, a pytree field, not kept).

    An effect like NumPyro's handlers, but a context variable rather than a site:
    NumPyro treats a ``param`` site's value as a parameter of the model.
    """
    token = _ORDER.set(order)
    try:
        yield
    finally:
        _ORDER.reset(token)


def strongest_first(log_elasticity: Any) -> np.ndarray:
    """The order of the domains by their elasticity at the start point, largest first.

    ``log_elasticity`` is the site ``log_e`` (``log(w_i gamma_i)``, how much a target's
    loss moves with ``log h_i`` at the uniform mixture), shape ``(k,)``.
    """
    return np.argsort(-np.asarray(log_elasticity, float), kind="stable").astype(np.int32)
