"""The warmup's metrics (bayesmix.metric) and the draws' step-size probe (bayesmix.sampling)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from bayesmix.metric import FIRST_VARIANCE_MAX, first_metric, window_metric
from bayesmix.sampling import DIVERGENT_SHARE, STEP_CUT, sample, warmed_up

THIN = np.array([[1.0, -0.9997], [-0.9997, 1.0]])
"""A correlation with one direction 1e4 times thinner than the other (the paper's
``a`` and ``alpha`` are correlated about so)."""


def _draws(rng: np.random.Generator, covariance: np.ndarray, chains: int, n: int,
           offsets: np.ndarray) -> dict[str, np.ndarray]:
    x = rng.multivariate_normal(np.zeros(len(covariance)), covariance, size=(chains, n))
    return {"x": x + offsets[:, None, :]}


def _thinnest_ratio(metric: np.ndarray, covariance: np.ndarray) -> float:
    """The metric's variance along the covariance's thinnest direction, over the truth."""
    values, vectors = np.linalg.eigh(covariance)
    thin = vectors[:, 0]
    return float(thin @ metric @ thin / values[0])


def test_window_metric_is_the_chains_own_covariance():
    """Chains at different places (a spread between them 30 times the posterior's)
    give the covariance within chains: each entry within 4 standard errors of the
    truth for 4 x 400 independent draws (sd of a covariance entry about
    sqrt((s_ii s_jj + s_ij^2) / n)). Negative control: the covariance of all draws
    together is far off."""
    rng = np.random.default_rng(0)
    scales = np.array([1e-3, 1.0, 30.0])
    covariance = np.outer(scales, scales) * np.array(
        [[1.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 1.0]])
    offsets = 30 * scales * rng.normal(size=(4, 3))
    z = _draws(rng, covariance, 4, 400, offsets)
    metric = window_metric(z, np.eye(3))
    n = 4 * 400
    s = np.diag(covariance)
    se = np.sqrt((np.outer(s, s) + covariance ** 2) / n)
    # the shrinkage towards the previous correlations moves an entry by 5 / 405 of it
    assert np.all(np.abs(metric - covariance) <= 4 * se + 0.02 * np.abs(covariance))
    together = np.cov(z["x"].reshape(-1, 3), rowvar=False)
    assert not np.all(np.abs(together - covariance) <= 4 * se + 0.02 * np.abs(covariance))


def test_window_metric_keeps_a_thin_direction_thin():
    """From 4 chains of 25 draws, shrunk towards the previous metric's correlations (a
    previous metric right in shape, 100 times too wide), the thin direction stays
    within 2x of its variance; Stan's shrinkage towards 1e-3 I (the negative control)
    makes it more than 10 times too wide. The draws' own variances are kept exactly."""
    rng = np.random.default_rng(1)
    covariance = THIN * 1e-2
    z = _draws(rng, covariance, 4, 25, np.zeros((4, 2)))
    metric = window_metric(z, 100 * covariance)
    assert 0.5 < _thinnest_ratio(metric, covariance) < 2.0
    flat = z["x"] - z["x"].mean(axis=1, keepdims=True)
    within = np.einsum("cni,cnj->ij", flat, flat) / (4 * 24)
    np.testing.assert_allclose(np.diag(metric), np.diag(within), rtol=1e-12)
    stan = 25 / 30 * within + 1e-3 * 5 / 30 * np.eye(2)
    assert _thinnest_ratio(stan, covariance) > 10


def test_window_metric_keeps_the_previous_one_where_its_own_has_no_root(monkeypatch):
    """A window whose metric has no Cholesky root (rounding, chains stuck along a
    direction) keeps the metric the chains ran with (which had one) instead of ending
    the fit in a LinAlgError."""
    rng = np.random.default_rng(2)
    z = _draws(rng, np.eye(2), 4, 50, np.zeros((4, 2)))
    previous = 2 * np.eye(2)
    assert not np.array_equal(window_metric(z, previous), previous)  # control

    def no_root(a):
        raise np.linalg.LinAlgError("Matrix is not positive definite")

    monkeypatch.setattr(np.linalg, "cholesky", no_root)
    assert window_metric(z, previous) is previous


def test_window_metric_flattens_sites_as_numpyro():
    """Two sites, one of them a matrix, at scales 1e-3 to 1e3: the metric's diagonal is
    each coordinate's variance in :func:`jax.flatten_util.ravel_pytree`'s order (the
    shrinkage keeps the diagonal exactly)."""
    from jax.flatten_util import ravel_pytree

    rng = np.random.default_rng(4)
    scales = {"b": np.array([[1e-3, 1e-1], [1e1, 1e3]]), "a": np.array(3.0)}
    z = {name: s * rng.normal(size=(2, 50, *np.shape(s))) for name, s in scales.items()}
    flat = np.stack([np.stack([np.asarray(ravel_pytree({k: v[c, i] for k, v in z.items()})[0])
                               for i in range(50)]) for c in range(2)])
    expected = np.mean(np.var(flat, axis=1, ddof=1), axis=0)
    metric = window_metric(z, np.eye(5))
    np.testing.assert_allclose(np.diag(metric), expected, rtol=1e-12)


def test_window_metric_keeps_the_previous_when_a_coordinate_did_not_move():
    """Chains stuck in one coordinate for a window give no variance there: the previous
    metric is kept (a zero variance would make the metric singular)."""
    z = {"x": np.zeros((2, 20, 2))}
    z["x"][..., 0] = np.random.default_rng(5).normal(size=(2, 20))
    previous = np.array([[2.0, 0.1], [0.1, 1.0]])
    np.testing.assert_array_equal(window_metric(z, previous), previous)
    np.testing.assert_array_equal(window_metric(z, np.ones(2)), np.ones(2))


def test_window_metric_diagonal():
    """A diagonal previous metric gives the draws' variances within chains."""
    rng = np.random.default_rng(2)
    z = _draws(rng, np.diag([4.0, 0.01]), 3, 300, np.array([[0, 0], [5, 1], [-5, 2.0]]))
    metric = window_metric(z, np.ones(2))
    assert metric.shape == (2,)
    np.testing.assert_allclose(metric, [4.0, 0.01], rtol=0.15)  # 3.2 sd for 900 draws


def _funnel() -> None:
    v = numpyro.sample("v", dist.Normal(0.0, 3.0))
    numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2)).expand([4]).to_event(1))


def _gaussian() -> None:
    numpyro.sample("x", dist.Normal(0.0, jnp.array([1.0, 10.0, 0.1])).to_event(1))


def _probe(model, init: dict[str, jax.Array]) -> tuple[float, Any]:
    """Warmup's common step size and what :func:`sample` returns."""
    d = sum(int(np.prod(v.shape[1:])) for v in init.values())
    warm = warmed_up(jax.random.key(0), model, (), init, jnp.eye(d), chains=2,
                     chain_method="sequential", warmup=200, dense_mass=True,
                     target_accept=0.8, max_tree_depth=8, progress=False)
    drawn = sample(warm, (), draws=300, max_draws=300)
    # the discarded probes count too
    assert drawn.gradients > warm.steps + int(np.sum(drawn.extra["num_steps"]))
    return float(warm.state.adapt_state.step_size[0]), drawn


def _cuts(warm_step: float, drawn: Any) -> float:
    """Cuts of the step size seen in the kept draws (all of them at one step size)."""
    steps = drawn.extra["adapt_state.step_size"]
    assert np.all(steps == steps[0, 0])
    return float(np.log(steps[0, 0] / warm_step) / np.log(STEP_CUT))


@pytest.fixture(scope="module")
def funnel_probe():
    return _probe(_funnel, {"v": jnp.zeros(2), "x": jnp.zeros((2, 4))})


def test_probe_cuts_the_step_where_the_chains_diverge(funnel_probe):
    """Neal's funnel: the step size warmup adapts in the funnel's mouth diverges in its
    neck, so the draws are taken with a step cut by ``STEP_CUT`` one or more times, as
    many as :class:`Drawn` reports, the divergences of the discarded probes with it."""
    warm_step, drawn = funnel_probe
    cuts = _cuts(warm_step, drawn)
    assert cuts > 0.5 and abs(cuts - round(cuts)) < 1e-3
    assert round(cuts) == drawn.step_cuts and drawn.discarded_divergences >= drawn.step_cuts


def test_probe_keeps_the_step_without_divergences():
    """Negative control: a Gaussian has no divergence, and the draws keep warmup's step."""
    warm_step, drawn = _probe(_gaussian, {"x": jnp.zeros((2, 3))})
    assert not drawn.extra["diverging"].any()
    assert drawn.step_cuts == 0 and drawn.discarded_divergences == 0
    np.testing.assert_allclose(drawn.extra["adapt_state.step_size"], warm_step, rtol=1e-6)


def test_first_metric_caps_flat_directions_only():
    """A direction the Laplace covariance clipped to variance 100 is capped at
    FIRST_VARIANCE_MAX; the others, and every eigenvector, are kept (to float64
    rounding). Diagonal: entry by entry."""
    rng = np.random.default_rng(3)
    vectors, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    values = np.array([100.0, 0.3, 1e-6, 0.02])
    metric = first_metric((vectors * values) @ vectors.T)
    capped = np.array([FIRST_VARIANCE_MAX, 0.3, 1e-6, 0.02])
    np.testing.assert_allclose(vectors.T @ metric @ vectors, np.diag(capped),
                               atol=1e-12 * FIRST_VARIANCE_MAX)
    np.testing.assert_array_equal(first_metric(np.array([100.0, 0.5])),
                                  [FIRST_VARIANCE_MAX, 0.5])


def test_too_many_divergences_draw_again_with_a_cut_step(monkeypatch):
    """With a probe of one draw, which the funnel passes (with the 0.1 % rule off the
    step stays warmup's: the control), its draws diverge more than DIVERGENT_SHARE
    allows, so they are discarded and drawn again, once, with the step cut once more."""
    import bayesmix.sampling as sampling

    init = {"v": jnp.zeros(2), "x": jnp.zeros((2, 4))}
    monkeypatch.setattr(sampling, "PROBE", 1)
    with monkeypatch.context() as off:
        off.setattr(sampling, "DIVERGENT_SHARE", 1.0)
        warm_step, control = _probe(_funnel, init)
    assert _cuts(warm_step, control) == 0 and control.extra["diverging"].mean() > DIVERGENT_SHARE
    warm_step, drawn = _probe(_funnel, init)
    assert abs(_cuts(warm_step, drawn) - 1) < 1e-3 and drawn.step_cuts == 1
    assert drawn.discarded_divergences == int(control.extra["diverging"].sum())
