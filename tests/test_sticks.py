"""The shares' stick coordinates: the map, its inverse and the density in any order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bayesmix.sticks import ShareSticks, log_shares, stick_coordinates, strongest_first

ORDERS = [(0, 1, 2), (2, 0, 1)]


@pytest.mark.parametrize("order", [(0, 1, 2, 3, 4), (3, 1, 4, 0, 2)])
def test_sticks_round_trip_to_the_same_shares(order):
    """log_shares is a map onto the simplex and stick_coordinates its inverse, in float64
    to 1e-12; tiny shares keep their logarithm (no underflow to 0)."""
    order = jnp.asarray(order)
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (50, 4), jnp.float64) * 3.0
        log_w = log_shares(x, order)
        np.testing.assert_allclose(jax.nn.logsumexp(log_w, axis=-1), 0.0, atol=1e-12)
        np.testing.assert_allclose(stick_coordinates(log_w, order), x, atol=1e-10)
        tiny = jnp.log(jnp.asarray([1e-300, 0.5, 0.25, 0.125, 0.125 - 1e-300]))
        assert np.isclose(float(log_shares(stick_coordinates(tiny, order), order)[0]),
                          np.log(1e-300), rtol=1e-10)
    # zero sticks are the uniform mixture, as in NumPyro's StickBreakingTransform
    np.testing.assert_allclose(jnp.exp(log_shares(jnp.zeros(4), order)), 0.2, rtol=1e-6)


def _grid_density(order, log_prob=None, n=801, half_width=12.0):
    """exp(log_prob) of ShareSticks(3, order) on a square grid of sticks, and the grid."""
    d = ShareSticks(3, jnp.asarray(order))
    log_prob = log_prob or d.log_prob
    g = np.linspace(-half_width, half_width, n)
    x = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    with jax.enable_x64(True):
        dens = np.exp(np.asarray(log_prob(jnp.asarray(x))))
        w = np.exp(np.asarray(log_shares(jnp.asarray(x), jnp.asarray(order))))
    return dens * (g[1] - g[0]) ** 2, w


@pytest.mark.parametrize("order", ORDERS)
def test_stick_density_is_the_logistic_normal(order):
    """The density integrates to 1 on the sticks, and the probability it gives a region
    of shares is that of softmax(3 standard normals), in every order: the quadrature
    against 200 000 exact draws, within 4 binomial standard errors. Negative control:
    the density without the sticks' Jacobian term fails both."""
    mass, w = _grid_density(order)
    assert abs(mass.sum() - 1.0) < 1e-3
    u = np.random.default_rng(1).standard_normal((200_000, 3))
    shares = np.exp(u) / np.exp(u).sum(axis=1, keepdims=True)
    for region in (lambda s: s[:, 0] < 0.2, lambda s: (s[:, 1] > 0.5) | (s[:, 2] < 0.05)):
        p_mc = region(shares).mean()
        se = np.sqrt(p_mc * (1 - p_mc) / len(shares))
        assert abs(mass[region(w)].sum() - p_mc) < 4 * se + 1e-3

    d = ShareSticks(3, jnp.asarray(order))

    def no_jacobian(x):
        x_shift = x - jnp.log(2 - jnp.arange(2))
        return d.log_prob(x) - jnp.sum(jax.nn.log_sigmoid(-x_shift), axis=-1)

    broken, w = _grid_density(order, no_jacobian)
    assert abs(broken.sum() - 1.0) > 0.05


@pytest.mark.parametrize("order", ORDERS)
def test_stick_draws_are_the_logistic_normal(order):
    """ShareSticks' own draws give shares with log(w_0 / w_1) ~ Normal(0, 2) (KS, 4000
    draws); the negative control, Normal(0, 1.6), is rejected."""
    d = ShareSticks(3, jnp.asarray(order))
    x = d.sample(jax.random.key(2), (4000,))
    log_w = np.asarray(log_shares(x, jnp.asarray(order)), float)
    ratio = log_w[:, 0] - log_w[:, 1]
    assert stats.kstest(ratio, stats.norm(0.0, np.sqrt(2.0)).cdf).pvalue > 1e-3
    assert stats.kstest(ratio, stats.norm(0.0, 1.6).cdf).pvalue < 1e-3


def test_strongest_first_orders_by_elasticity():
    assert list(strongest_first([-3.0, -1.0, -4.5, -2.0])) == [1, 3, 0, 2]


def test_start_moves_to_the_samplers_sticks():
    """in_share_order keeps the point (the same shares), orders the sticks strongest
    first and maps the covariance through the map's Jacobian (the identity but for the
    sticks' block, which sits between other sites); the other sites are untouched."""
    from bayesmix.start import StartPoint, in_share_order

    sticks = np.array([0.3, -1.2, 0.8])
    log_e = np.array([-4.0, -1.0, -3.0, -2.0])
    root = np.random.default_rng(0).normal(size=(9, 9))
    covariance = root @ root.T + np.eye(9)
    start = StartPoint({"a": np.array(0.1), "log_e": log_e, "sticks": sticks,
                        "z": np.array([0.5])},
                       {"log_e": log_e}, 1.0, np.array([1.0]), 0.0, covariance)
    moved, order = in_share_order(start)
    assert list(order) == [1, 3, 2, 0]
    with jax.enable_x64(True):
        same = log_shares(jnp.asarray(moved.unconstrained["sticks"]), jnp.asarray(order))
        want = log_shares(jnp.asarray(sticks), jnp.arange(4))
        jac = jax.jacfwd(lambda x: stick_coordinates(log_shares(x, jnp.arange(4)),
                                                     jnp.asarray(order)))(jnp.asarray(sticks))
    np.testing.assert_allclose(same, want, atol=1e-12)
    # flat order: a (1), log_e (4), sticks (3), z (1); the map's Jacobian is the
    # identity but for the sticks' block
    full = np.eye(9)
    full[5:8, 5:8] = np.asarray(jac)
    np.testing.assert_allclose(moved.covariance, full @ covariance @ full.T, atol=1e-10)
    np.testing.assert_allclose(moved.covariance[:5, :5], covariance[:5, :5])
    assert not np.allclose(jac, np.eye(3))  # negative control: the map is not the identity
    unchanged, none = in_share_order(StartPoint({"a": np.array(0.1)}, {}, 1.0,
                                                np.array([1.0]), 0.0, np.eye(1)))
    assert none is None and unchanged.unconstrained["a"] == 0.1
