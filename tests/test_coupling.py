"""Targets coupled through shared runs (bayesmix.coupling), checked where the answer is
known exactly: two linear-Gaussian "targets" on one design whose run offsets are
correlated across targets, each with its exact (tempered) posterior."""

import numpy as np
import pytest

from bayesmix.coupling import run_influences, variance_factors, widen

RUNS, ROWS_PER_RUN, DRAWS = 400, 4, 4000
RUN_SD, ROW_SD = 1.0, 1.0  # rows as noisy as runs: clustering by row would not pass


def _slope_weights(x):
    """The OLS slope as a linear function of the responses: ``slope = z @ y``."""
    design = np.column_stack([np.ones_like(x), x])
    return np.linalg.solve(design.T @ design, design.T)[1]


def _world(rho, seed=0):
    """Two targets' exact posterior draws of the slope, their rows' log-likelihoods at
    those draws, the rows' runs, and the true correlation of the two slopes' estimates."""
    rng = np.random.default_rng(seed)
    run = np.repeat(np.arange(RUNS), ROWS_PER_RUN)
    x = rng.normal(size=RUNS)[run] + rng.normal(size=run.size)
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


def _influences(draws, logliks, runs_of, weight):
    return np.stack([run_influences(d[None, :], ll, r, RUNS, weight)
                     for d, ll, r in zip(draws, logliks, runs_of, strict=True)])


def _factor(draws, influences, floor=None):
    variances = np.stack([[d.var()] for d in draws])
    return float(variance_factors(variances, influences, np.array([0.5, 0.5]), floor)[0])


def _tolerance(draws, influences):
    """Four standard errors of the factor, by the jackknife over runs (the runs'
    products of influences are heavy-tailed: a normal-theory error of a correlation
    over 400 runs, 0.05, is half the measured one)."""
    leave_one_out = np.array([_factor(draws, np.delete(influences, r, axis=-1))
                              for r in range(RUNS)])
    return 4 * np.sqrt((RUNS - 1) / RUNS * np.sum((leave_one_out - leave_one_out.mean())**2))


@pytest.fixture(scope="module", params=[0.0, 0.8])
def world(request):
    return _world(request.param)


def test_variance_factor_is_one_plus_the_estimates_correlation(world):
    draws, logliks, run, weight, correlation = world
    influences = _influences(draws, logliks, [run, run], weight)
    factor = _factor(draws, influences)
    # two targets of equal variance and weight: Var(mean) / independent = 1 + corr
    assert abs(factor - (1 + correlation)) < _tolerance(draws, influences)
    assert _factor(draws, influences, floor=1.0) == max(1.0, factor)  # never narrower


def test_negative_control_runs_not_matched_across_targets():
    """With the second target's runs relabelled at random, the coupling finds no
    dependence where there is much: the check above would fail."""
    draws, logliks, run, weight, correlation = _world(0.8)
    assert correlation > 0.5
    relabel = np.random.default_rng(1).permutation(RUNS)
    influences = _influences(draws, logliks, [run, relabel[run]], weight)
    factor = _factor(draws, influences)
    matched = _influences(draws, logliks, [run, run], weight)
    assert abs(factor - (1 + correlation)) > _tolerance(draws, matched)
    assert factor < 1 + _tolerance(draws, influences)


def test_a_target_of_pure_noise_is_left_uncoupled():
    """A target whose influences are Monte Carlo noise alone (its draws unrelated to
    its rows) beside a real one: the factor is exactly 1 for every seed, where without
    the guard (the negative control) the noise's correlation with the real target
    moves it by 0.4 on one of them (seed 4)."""
    draws, logliks, run, weight, _ = _world(0.8)
    real = run_influences(draws[0][None, :], logliks[0], run, RUNS, weight)
    unguarded = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        phi = draws[0].std() * rng.normal(size=DRAWS)
        noise = run_influences(phi[None, :], 0.01 * rng.normal(size=logliks[1].shape), run,
                               RUNS, weight)
        influences, variances = np.stack([real, noise]), np.array([[draws[0].var()], [phi.var()]])
        weights = np.array([0.5, 0.5])
        assert variance_factors(variances, influences, weights, floor=None)[0] == 1.0
        unguarded.append(variance_factors(variances, influences, weights, None, 0.0)[0])
    assert max(abs(np.array(unguarded) - 1)) > 0.3


def test_widen_scales_the_law_part_and_keeps_the_mean():
    rng = np.random.default_rng(0)
    law, other = rng.gamma(2.0, size=1000), rng.normal(size=1000)
    law -= law.mean()
    wider = widen(law + other, law, 2.5)
    assert np.isclose(wider.mean(), other.mean())
    assert np.isclose(np.var(wider - other), 2.5 * law.var())


# ----------------------------------------------------------------- through decide()


@pytest.fixture(scope="module")
def study():
    """Two targets of simulated runs (3 domains, 48 runs) with prior draws standing in
    for their posteriors, and the rows they would have been fitted to."""
    import jax

    from bayesmix.laws import load_law
    from bayesmix.model import Scales, TargetPosterior, TrainingRows, law_params
    from bayesmix.simulate import draw_law_params, simulate_runs

    law = load_law("additive")
    table, _ = simulate_runs(jax.random.key(3), law, 3, targets=["d0", "d1"],
                             run_noise=0.01, run_correlation=0.5)
    frame = table.frame
    scales = Scales(n_ref=float(np.exp(np.log(frame["N"]).mean())),
                    d_ref=float(np.exp(np.log(frame["D"]).mean())), loss_scale=3.0)
    weights = frame[[f"h_{d}" for d in table.domains]].to_numpy(float)
    out = {}
    for t, target in enumerate(("d0", "d1")):
        draws = [law_params(law, 3, 3.0, draw_law_params(
            jax.random.fold_in(jax.random.key(t), s), law, 3, 3.0, n_proposals=200))
            for s in range(16)]
        params = {n: np.stack([np.asarray(d[n]) for d in draws]) for n in draws[0]}
        rows = TrainingRows(frame["N"].to_numpy(float), frame["D"].to_numpy(float), weights,
                            np.log(frame[f"loss_{target}"].to_numpy(float)), 0.5)
        out[target] = TargetPosterior(law=law, target=target, domains=table.domains,
                                      scales=scales, params=params,
                                      noise={"sigma": np.full(16, 0.01), "nu": np.full(16, 5.0)},
                                      training=rows)
    return out


def test_decide_couples_bayesian_targets_and_says_when_it_cannot(study):
    from dataclasses import replace

    from bayesmix.decision import decide, prob_better

    uniform = {"uniform": np.full(3, 1 / 3)}
    report = decide(study, 2e9, 4e10, references=uniform)
    assert report.coupling.note is None and report.coupling.n_runs == 48
    factor = report.variance_factor("uniform")
    assert np.isfinite(factor) and factor >= 1
    difference = report.objective["h_bayes"] - report.objective["uniform"]
    wider = widen(difference, report.coupling.deviations["uniform"], factor)
    assert report.p_better("uniform") == prob_better(wider, np.zeros_like(difference))
    # no discrepancy: the law's part is the whole difference about its mean
    assert np.allclose(report.coupling.deviations["uniform"], difference - difference.mean())
    row = report.to_dict()["objective"]["uniform"]
    assert row["cross_target_variance_factor"] == factor
    assert row["p_h_bayes_better_independent"] == prob_better(difference,
                                                              np.zeros_like(difference))

    alone = decide(study, 2e9, 4e10, references=uniform, couple_targets=False)
    assert alone.coupling is None and alone.variance_factor("uniform") == 1.0
    assert "on request" in alone.to_dict()["cross_target"]["note"]
    assert alone.to_dict()["cross_target"]["disabled"]

    few = {t: replace(p, training=p.training._replace(
        **{f: np.asarray(v)[:40] for f, v in p.training._asdict().items() if f != "weight"}))
        for t, p in study.items()}  # the first 40 rows: 10 runs
    report = decide(few, 2e9, 4e10, references=uniform)
    assert "fewer than 30" in report.coupling.note
    assert report.variance_factor("uniform") == 1.0

    point = {**study, "d1": replace(study["d1"], training=None)}
    assert "not Bayesian fits" in decide(point, 2e9, 4e10, references=uniform).coupling.note
    one = decide({"d0": study["d0"]}, 2e9, 4e10, references=uniform)
    assert one.coupling.note == "one target: nothing to couple"


def test_with_a_discrepancy_only_the_laws_part_is_widened(study):
    """Beyond the training range each target's draws carry a discrepancy factor, drawn
    independently of the law: the law's part of the difference (weights w_t
    E[exp(delta_t)]) is what the factor widens, and it is not the whole difference."""
    from dataclasses import replace

    from bayesmix.decision import decide
    from bayesmix.discrepancy import Discrepancy
    from bayesmix.objective import mixture_objective
    from bayesmix.predict import predict_draws

    n_max = max(float(p.training.n_params.max()) for p in study.values())
    d_max = max(float(p.training.n_tokens.max()) for p in study.values())
    h = 64
    term = Discrepancy(np.log(n_max), np.log(d_max), np.full(h, 0.02), np.full(h, 0.02),
                       np.ones(h), ("test",), np.full(h, -0.01), np.zeros(h))
    beyond = {t: replace(p, discrepancy=term) for t, p in study.items()}
    report = decide(beyond, 4 * n_max, 4 * d_max, references={"uniform": np.full(3, 1 / 3)})
    difference = report.objective["h_bayes"] - report.objective["uniform"]
    deviation = report.coupling.deviations["uniform"]
    assert not np.allclose(deviation, difference - difference.mean())  # the factors' part
    # the law's part, computed here: sum_t w_t E[exp(delta_t)] (Delta L_ts - its mean)
    objective = mixture_objective(beyond)
    means = objective.log_mean_factors(4 * n_max, 4 * d_max)
    expected = 0.0
    for target, posterior in beyond.items():
        at = predict_draws(posterior, np.full(2, 4 * n_max), np.full(2, 4 * d_max),
                           np.stack([report.h_bayes, np.full(3, 1 / 3)]))
        law = at[:, 0] - at[:, 1]
        expected = expected + 0.5 * np.exp(means[target]) * (law - law.mean())
    np.testing.assert_allclose(deviation, expected, rtol=1e-10, atol=1e-15)
