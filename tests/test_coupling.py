"""Targets coupled through shared runs (bayesmix.coupling), checked where the answer is
known exactly: two linear-Gaussian "targets" on one design whose run offsets are
correlated across targets, each with its exact (tempered) posterior."""

import numpy as np
import pytest

from bayesmix.coupling import run_influences, spread, variance_factors

RUNS, ROWS_PER_RUN, DRAWS = 400, 4, 4000
RUN_SD, ROW_SD = 1.0, 0.5


def _slope_weights(x):
    """The OLS slope as a linear function of the responses: ``slope = z @ y``."""
    design = np.column_stack([np.ones_like(x), x])
    return np.linalg.solve(design.T @ design, design.T)[1]


def _world(rho, seed=0):
    """Two targets' exact posterior draws of the slope, their rows' log-likelihoods at
    those draws, the rows' runs, and the true correlation of the two slopes' estimates."""
    rng = np.random.default_rng(seed)
    run = np.repeat(np.arange(RUNS), ROWS_PER_RUN)
    x = rng.normal(size=RUNS)[run] + 0.3 * rng.normal(size=run.size)
    design = np.column_stack([np.ones_like(x), x])
    shared = rng.normal(size=RUNS)
    sigma2 = RUN_SD**2 + ROW_SD**2
    icc = RUN_SD**2 / sigma2
    weight = 1.0 / (1.0 + (ROWS_PER_RUN - 1) * icc)  # Kish, as bayesmix.model.design_effect
    precision = weight * design.T @ design / sigma2
    draws, logliks = [], []
    for _ in range(2):
        offsets = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.normal(size=RUNS)
        y = design @ np.array([1.0, 0.5]) + RUN_SD * offsets[run] + ROW_SD * rng.normal(
            size=run.size)
        mean = np.linalg.solve(design.T @ design, design.T @ y)
        beta = rng.multivariate_normal(mean, np.linalg.inv(precision), DRAWS)
        residual = y[None, :] - beta @ design.T
        logliks.append(-0.5 * residual**2 / sigma2 - 0.5 * np.log(2 * np.pi * sigma2))
        draws.append(beta[:, 1])
    z = _slope_weights(x)
    per_run = np.bincount(run, weights=z)
    own = RUN_SD**2 * np.sum(per_run**2) + ROW_SD**2 * np.sum(z**2)
    return draws, logliks, run, weight, rho * RUN_SD**2 * np.sum(per_run**2) / own


def _factor(draws, logliks, runs_of, weight):
    phis = [d[None, :] for d in draws]
    influences = np.stack([run_influences(p, ll, r, RUNS, weight)
                           for p, ll, r in zip(phis, logliks, runs_of, strict=True)])
    variances = np.stack([p.var(axis=1) for p in phis])
    return float(variance_factors(variances, influences, np.array([0.5, 0.5]))[0])


def _tolerance(correlation):
    """Four standard errors of a correlation estimated over ``RUNS`` runs, plus the
    Monte Carlo error of covariances from ``DRAWS`` draws."""
    return 4 * (1 - correlation**2) / np.sqrt(RUNS) + 4 / np.sqrt(DRAWS)


@pytest.fixture(scope="module", params=[0.0, 0.8])
def world(request):
    return _world(request.param)


def test_variance_factor_is_one_plus_the_estimates_correlation(world):
    draws, logliks, run, weight, correlation = world
    factor = _factor(draws, logliks, [run, run], weight)
    # two targets of equal variance and weight: Var(mean) / independent = 1 + corr
    assert abs(factor - (1 + correlation)) < _tolerance(correlation)


def test_negative_control_runs_not_matched_across_targets():
    """With the second target's runs relabelled at random, the coupling finds no
    dependence where there is much: the check above would fail."""
    draws, logliks, run, weight, correlation = _world(0.8)
    assert correlation > 0.5
    relabel = np.random.default_rng(1).permutation(RUNS)
    factor = _factor(draws, logliks, [run, relabel[run]], weight)
    assert abs(factor - (1 + correlation)) > _tolerance(correlation)
    assert abs(factor - 1) < _tolerance(0.0)


def test_spread_scales_the_variance_and_keeps_the_mean():
    values = np.random.default_rng(0).gamma(2.0, size=1000)
    wider = spread(values, 2.5)
    assert np.isclose(wider.mean(), values.mean())
    assert np.isclose(wider.var(), 2.5 * values.var())
