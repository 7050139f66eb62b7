"""Runs and the likelihood's weight: run ids and the design effect of residuals."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bayesmix.model import design_effect
from bayesmix.runs import run_index


def test_run_index_from_sizes_and_weights():
    n = np.array([1e8, 1e8, 2e8, 1e8, 1e8])
    h = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.3, 0.7], [0.5, 0.5]])
    np.testing.assert_array_equal(run_index(n, h), [0, 0, 1, 2, 0])


def test_run_index_prefers_the_run_column():
    n = np.ones(4) * 1e8
    h = np.full((4, 2), 0.5)
    np.testing.assert_array_equal(run_index(n, h, ["b", "a", "b", "c"]), [0, 1, 0, 2])


def _clustered(rho: float, runs: int = 200, m: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    run = np.repeat(np.arange(runs), m)
    offsets = rng.normal(0, np.sqrt(rho), runs)[run]
    return offsets + rng.normal(0, np.sqrt(1 - rho), runs * m), run


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_design_effect_matches_the_intra_run_correlation(rho):
    """1 + (m - 1) rho within 4 standard errors of the ANOVA estimate of rho
    (Fisher: var(rho_hat) ~ 2 (1 - rho)^2 (1 + (m - 1) rho)^2 / (m (m - 1) G))."""
    runs, m = 200, 8
    residuals, run = _clustered(rho, runs, m)
    se_rho = np.sqrt(2 * (1 - rho) ** 2 * (1 + (m - 1) * rho) ** 2 / (m * (m - 1) * runs))
    tolerance = 4 * (m - 1) * se_rho + 1e-9
    got = design_effect(residuals, run)
    assert abs(got - (1 + (m - 1) * rho)) < tolerance
    # negative control: ignoring the runs (a row a run) reports no design effect
    assert design_effect(residuals, np.arange(len(run))) == 1.0
    if rho >= 0.5:
        assert not abs(got - 1.0) < tolerance


def test_noise_draws_follow_the_likelihood():
    """NumPy's draws (used for posterior predictive draws) follow ``noise``'s law."""
    from scipy import stats

    from bayesmix.model import noise, noise_draws

    nu, loc, sigma = 4.0, 0.3, 0.02
    draws = noise_draws(jax.random.key(3), np.full(20_000, nu), loc, sigma)
    assert draws.shape == (20_000,)
    cdf = noise(nu, loc, sigma).cdf
    assert stats.kstest(draws, lambda x: np.asarray(cdf(x))).pvalue > 1e-3
    # negative control: the same draws are not Student-t with 2 degrees of freedom
    other = noise(2.0, loc, sigma).cdf
    assert stats.kstest(draws, lambda x: np.asarray(other(x))).pvalue < 1e-3
    # seeded by the key
    np.testing.assert_array_equal(draws, noise_draws(jax.random.key(3), nu, loc,
                                                     np.full(20_000, sigma)))
    assert not np.array_equal(draws, noise_draws(jax.random.key(4), nu, loc,
                                                 np.full(20_000, sigma)))
