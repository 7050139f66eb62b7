"""The discrepancy term beyond the training range: its draws, its learning, its use."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from bayesmix import BayesmixError, calibrate, decision
from bayesmix.calibrate import fold_residual, learn_discrepancy, size_folds
from bayesmix.cli import main
from bayesmix.decision import decide
from bayesmix.discrepancy import Discrepancy, discrepancy_draws
from bayesmix.fit import fit
from bayesmix.foldposterior import (
    BIAS_GRID,
    GROWTH_GRID,
    LENGTH_GRID,
    TAU_GRID,
    FoldResidual,
    hyper_posterior,
    joint_draws,
    target_log_marginal,
)
from bayesmix.laws import load_law
from bayesmix.model import centred_inputs, target_inputs
from bayesmix.objective import mixture_objective
from bayesmix.predict import extrapolation_notes, law_only, predict_table
from bayesmix.scoring import heldout_scores
from bayesmix.simulate import simulate_runs
from bayesmix.start import find_start
from bayesmix.store import load_fit, save_fit

N_MAX, D_MAX = 8e8, 1.6e10


def _term(tau_n=0.02, tau_d=0.01, growth=1.0, h=4000, bias_n=0.0) -> Discrepancy:
    return Discrepancy(np.log(N_MAX), np.log(D_MAX), np.full(h, tau_n), np.full(h, tau_d),
                       np.full(h, growth), folds=("test",), bias_n=np.full(h, bias_n))


# ----------------------------------------------------------------------- the term


def test_zero_inside_and_scale_beyond():
    term = _term()
    n = np.array([1e8, N_MAX, N_MAX * np.e, N_MAX * np.e ** 2])
    d = np.array([1e9, D_MAX, D_MAX, D_MAX * np.e])
    draws = discrepancy_draws(jax.random.key(0), term, n, d, 4000)
    assert np.all(draws[:, :2] == 0.0)  # inside the training range: exactly the law
    # d_N = 1: sd tau_N; d_N = 2, d_D = 1: sd sqrt((2 tau_N)^2 + tau_D^2)
    expected = np.array([0.02, np.hypot(0.04, 0.01)])
    se = expected / np.sqrt(2 * 4000)  # standard error of a sample sd
    assert np.all(np.abs(draws[:, 2:].std(axis=0) - expected) < 4 * se)
    np.testing.assert_allclose(term.scale(n, d)[2:], expected, rtol=1e-12)
    # one z per draw for all runs at one (N, D): rows of a draw move together
    same = discrepancy_draws(jax.random.key(0), term, [N_MAX * np.e] * 3, [D_MAX] * 3, 50)
    assert np.all(same == same[:, :1])


def test_a_small_model_trained_longer_than_the_large_ones_is_beyond_the_runs():
    """Larger models trained on fewer tokens: a run is inside the training range only
    where a training run at least as large in N and in D exists, so a small model
    trained longer than any larger model gets d_D > 0 (the box of the largest N and D
    would call it inside)."""
    from bayesmix.calibrate import token_reach

    n = np.array([5e7, 5e7, 1e8, 1e8, 4e8, 4e8 * 1.004])  # the last two: one size
    d = np.array([8e9, 1.6e10, 4e9, 8e9, 1e9, 2e9])
    edges, reach = token_reach(n, d)
    np.testing.assert_allclose(np.exp(reach), [1.6e10, 8e9, 2e9])
    term = dataclasses.replace(_term(), log_n_max=float(np.log(n.max())),
                               log_d_max=float(np.log(d.max())), reach_log_n=edges,
                               reach_log_d=reach)
    queries_n = np.array([5e7, 1e8, 4e8, 4e8, 1.6e9, 7e7])
    queries_d = np.array([1.6e10, 1.6e10, 1.6e10, 2e9, 2e9, 8e9])
    d_n, d_d = term.distances(queries_n, queries_d)
    np.testing.assert_allclose(d_d, [0.0, np.log(2), np.log(8), 0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(d_n[:4], 0.0)
    # negative control: the box (a term without the staircase) calls all of them inside
    box = dataclasses.replace(term, reach_log_n=None, reach_log_d=None)
    assert np.all(box.distances(queries_n, queries_d)[1] == 0)
    back = Discrepancy.from_dict(json.loads(json.dumps(term.to_dict())), "x")
    np.testing.assert_array_equal(back.distances(queries_n, queries_d)[1], d_d)


def test_bias_moves_the_mean_beyond_only():
    term = _term(bias_n=-0.03, growth=2.0)
    n = np.array([1e8, N_MAX, N_MAX * np.e ** 0.5, N_MAX * np.e])
    d = np.full(4, D_MAX)
    draws = discrepancy_draws(jax.random.key(0), term, n, d, 4000)
    assert np.all(draws[:, :2] == 0.0)
    expected = np.array([0.0, 0.0, -0.03 * 0.25, -0.03])  # b_N d_N^p, p = 2
    np.testing.assert_allclose(term.mean(n, d), expected, atol=1e-15)
    # the sample mean within 4 standard errors (sd tau_N d_N^p); a zero bias is not
    se = 0.02 * np.array([0.25, 1.0]) / np.sqrt(4000)
    assert np.all(np.abs(draws[:, 2:].mean(axis=0) - expected[2:]) < 4 * se)
    unbiased = discrepancy_draws(jax.random.key(0), _term(growth=2.0), n, d, 4000)
    assert np.all(np.abs(unbiased[:, 2:].mean(axis=0) - expected[2:]) > 4 * se)
    # the spread is the scale's: a constant bias adds none
    np.testing.assert_allclose(term.scale(n, d), _term(growth=2.0).scale(n, d), rtol=1e-12)


def test_record_round_trip_and_corrupt_record():
    term = _term(h=5)
    back = Discrepancy.from_dict(json.loads(json.dumps(term.to_dict())), "x")
    assert back.folds == term.folds and np.array_equal(back.tau_n, term.tau_n)
    biased = _term(h=5, bias_n=-0.01)
    back = Discrepancy.from_dict(json.loads(json.dumps(biased.to_dict())), "x")
    assert np.array_equal(back.bias_n, biased.bias_n) and np.all(back.bias_d == 0)
    # a record written before the bias was learnt reads as a zero bias
    old = {k: v for k, v in biased.to_dict().items() if k not in ("bias_n", "bias_d")}
    assert np.all(Discrepancy.from_dict(old, "x").bias_n == 0)
    # one written before the staircase reads as the box of its largest N and D
    boxed = Discrepancy.from_dict({k: v for k, v in term.to_dict().items()
                                   if not k.startswith("reach")}, "x")
    assert boxed.reach_log_d.tolist() == [term.log_d_max]
    for broken in ({**term.to_dict(), "tau_n": [0.1, -1.0, 0, 0, 0]},
                   {**term.to_dict(), "growth": [1.0]},
                   {**term.to_dict(), "growth": [0.0] * 5},  # d**0 = 1 inside the range
                   {k: v for k, v in term.to_dict().items() if k != "tau_d"},
                   {**term.to_dict(), "log_n_max": "big"},
                   {**term.to_dict(), "bias_n": [0.0] * 4},
                   {**term.to_dict(), "bias_d": [float("nan")] * 5},
                   {**term.to_dict(), "reach_log_n": [20.0, 19.0], "reach_log_d": [23, 22]},
                   {**term.to_dict(), "reach_log_n": [20.0], "reach_log_d": [23, 22]}):
        with pytest.raises(BayesmixError, match="fit.json"):
            Discrepancy.from_dict(broken, "fit.json")


# ----------------------------------------------------------------------- learning


def _residuals(key, tau_n, groups=60, rows=30, noise=0.002, bias=0.0, link=0.0):
    """Fold residuals simulated from the model with a known tau_N and bias ``m`` (in
    units of tau_N; tau_D = 0, p = 1), the folds' cuts 0.3 apart in log N, their ``z``
    a Gauss-Markov sequence with ``link`` the correlation of neighbours (0: independent).
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).tolist())
    out = []
    z = rng.standard_normal()
    for g in range(groups):
        d_n = np.full(rows, rng.uniform(0.2, 0.7))
        d_d = np.zeros(rows)
        r = tau_n * d_n * (bias + z) + noise * rng.standard_normal(rows)
        out.append(FoldResidual(f"f{g}", "t", r, noise ** 2, np.zeros((rows, 0)), d_n, d_d,
                                15.0 + 0.3 * g))
        z = link * z + np.sqrt(1 - link ** 2) * rng.standard_normal()
    return out


def _median_tau_n(residuals):
    w = hyper_posterior(residuals)["t"]
    marginal = w.sum(axis=(0, 1, 2, 4))
    return TAU_GRID[np.searchsorted(np.cumsum(marginal), 0.5)]


def _bias_moments(residuals):
    marginal = hyper_posterior(residuals)["t"].sum(axis=(1, 2, 3, 4))
    mean = marginal @ BIAS_GRID
    return mean, np.sqrt(marginal @ (BIAS_GRID - mean) ** 2)


def _correlated_folds(rng, cuts=(20.0, 20.3, 20.7), rows=(30, 20, 10)):
    return [FoldResidual(f"f{f}", "t", rng.normal(0, 0.01, n), 1e-4,
                         rng.normal(0, 0.003, (n, 4)), rng.uniform(0.1, 0.8, n),
                         rng.uniform(0.0, 0.5, n), cut)
            for f, (cut, n) in enumerate(zip(cuts, rows, strict=True))]


def _dense_folds(folds, p, length, tau):
    """The stacked folds as one dense Gaussian: ``Phi`` (rows, 2F), ``Sigma`` of the
    refits, the prior covariance ``G = R (x) diag(tau^2)`` of the folds' deltas."""
    cuts = np.array([f.log_n_cut for f in folds])
    corr = (np.exp(-np.abs(cuts[:, None] - cuts[None, :]) / length) if length > 0
            else np.eye(len(folds)))
    phi = scipy.linalg.block_diag(*[np.stack([f.d_n ** p, f.d_d ** p], axis=1)
                                    for f in folds])
    sigma = scipy.linalg.block_diag(*[f.covariance for f in folds])
    return phi, sigma, np.kron(corr, np.diag(tau ** 2))


def test_folds_density_by_elimination_is_the_dense_gaussian():
    """The grid's log density of a target's folds (their z correlated along the cuts,
    low-rank covariances never formed, eliminated a fold at a time, in any order given)
    against scipy's dense multivariate normal of the stacked residuals. Negative control:
    the same point with the folds taken as independent differs."""
    rng = np.random.default_rng(3)
    folds = _correlated_folds(rng)
    # given out of order (the reverse would not do: a Gauss-Markov chain reads the same
    # both ways), eliminated in the order of their cuts
    grid = target_log_marginal([folds[1], folds[0], folds[2]])  # (m, p, ell, tau_N, tau_D)
    r = np.concatenate([f.residual for f in folds])
    for im, ip, il, i, j in ((30, 0, 2, 40, 35), (10, 4, 3, 20, 50), (24, 2, 0, 0, 60),
                             (20, 1, 4, 30, 30)):
        m, p, length = BIAS_GRID[im], GROWTH_GRID[ip], LENGTH_GRID[il]
        tau = TAU_GRID[[i, j]]
        phi, sigma, g = _dense_folds(folds, p, length, tau)
        mean = m * phi @ np.tile(tau, len(folds))
        dense = scipy.stats.multivariate_normal(mean, sigma + phi @ g @ phi.T).logpdf(r)
        # the grid drops the constant -rows/2 log(2 pi)
        got = grid[im, ip, il, i, j] - r.size / 2 * np.log(2 * np.pi)
        assert got == pytest.approx(dense, abs=1e-6)
        if length > 0:
            independent = scipy.stats.multivariate_normal(
                mean, sigma + phi @ _dense_folds(folds, p, 0.0, tau)[2] @ phi.T).logpdf(r)
            assert abs(got - independent) > 1e-2


def test_one_fold_and_a_part_never_reached():
    """One fold: no link, every length gives the same density. A fold whose rows never
    reach beyond its training D: flat in tau_D."""
    fold = _correlated_folds(np.random.default_rng(5), cuts=(20.0,), rows=(25,))[0]
    alone = target_log_marginal([fold])
    assert np.max(np.abs(alone - alone[:, :, :1])) < 1e-9
    in_n = target_log_marginal([fold._replace(d_d=np.zeros(25))])
    assert np.max(np.abs(in_n - in_n[..., :1])) < 1e-9
    assert np.ptp(alone[24, 0, 0, 30]) > 1e-3  # negative control: D reached, not flat


def test_the_folds_correlation_length_is_learnt():
    """Folds whose z follow one another closely (neighbours correlated 0.95) put the
    posterior of ``ell`` on the long lengths; independent folds on the short ones."""
    def long_share(link):
        post = hyper_posterior(_residuals(jax.random.key(7), 0.02, groups=30, link=link))
        return post["t"].sum(axis=(0, 1, 3, 4))[LENGTH_GRID >= 1.5].sum()

    assert long_share(0.95) > 0.8
    assert long_share(0.0) < 0.2  # negative control


def test_hyper_posterior_recovers_the_scale():
    # 60 groups: the sd of tau's estimate is about tau / sqrt(2 * 60) = 9 % of tau
    true = 0.02
    got = _median_tau_n(_residuals(jax.random.key(1), true))
    assert abs(np.log(got / true)) < 0.3
    # no discrepancy in the residuals: the learnt scale is far below the true one above
    assert _median_tau_n(_residuals(jax.random.key(2), 0.0)) < 0.1 * true
    # negative control: residuals with twice the scale fail the same tolerance
    doubled = _median_tau_n(_residuals(jax.random.key(1), 2 * true))
    assert abs(np.log(doubled / true)) > 0.3


def test_hyper_posterior_recovers_the_bias():
    """60 groups with a bias of -1.5 scale units: the posterior of m is near -1.5 (its
    sd is about sqrt(1 + m^2 / 2) / sqrt(60) = 0.17 here) and the scale near its own;
    unbiased groups give m near 0. Negative control: the unbiased groups' estimate is
    outside the biased one's tolerance."""
    true = -1.5
    mean, sd = _bias_moments(_residuals(jax.random.key(1), 0.02, bias=true))
    assert abs(mean - true) < 4 * max(sd, 0.17)
    assert abs(np.log(_median_tau_n(_residuals(jax.random.key(1), 0.02, bias=true)) / 0.02)) < 0.3
    zero, sd0 = _bias_moments(_residuals(jax.random.key(2), 0.02))
    assert abs(zero) < 4 * max(sd0, 0.17)
    assert abs(zero - true) > 4 * max(sd, 0.17)


def test_joint_draws_are_the_grid_posterior_with_one_bias_for_all_targets():
    """The joint draws' marginals are each target's grid marginal (within 4 standard
    errors of 4000 draws), with the bias shared: one index per draw for all targets.
    Negative control: the draws of unbiased residuals miss the biased marginal."""
    residuals = []
    for i, tau in enumerate([0.01, 0.03]):
        residuals += [r._replace(target=f"t{i}") for r in
                      _residuals(jax.random.key(20 + i), tau, groups=10, bias=-1.5)]
    im, _, scales = joint_draws(np.random.default_rng(0), residuals, 4000)
    post = hyper_posterior(residuals)
    marginal = post["t0"].sum(axis=(1, 2, 3, 4))
    mean = marginal @ BIAS_GRID
    se = np.sqrt(marginal @ (BIAS_GRID - mean) ** 2 / 4000)
    assert abs(BIAS_GRID[im].mean() - mean) < 4 * se
    for t in ("t0", "t1"):
        tau = post[t].sum(axis=(0, 1, 2, 4)) @ np.log(TAU_GRID)
        draws = np.log(TAU_GRID[scales[t][0]])
        assert abs(draws.mean() - tau) < 4 * draws.std() / np.sqrt(4000)
    unbiased = [r._replace(residual=r.residual - r.d_n * (-1.5) * (0.01 if r.target == "t0"
                                                                   else 0.03))
                for r in residuals]
    im0 = joint_draws(np.random.default_rng(0), unbiased, 4000).im
    assert abs(BIAS_GRID[im0].mean() - mean) > 4 * se
    with pytest.raises(BayesmixError, match="unequal shapes"):
        Discrepancy(0.0, 0.0, np.ones(3), np.ones(2), np.ones(3))


def test_hyper_posterior_is_normalised_on_the_grid():
    w = hyper_posterior(_residuals(jax.random.key(3), 0.01, groups=5))["t"]
    assert w.shape == (BIAS_GRID.size, GROWTH_GRID.size, LENGTH_GRID.size, TAU_GRID.size,
                       TAU_GRID.size)
    assert np.isclose(w.sum(), 1.0) and np.all(w >= 0)


def test_partial_pooling_keeps_an_outlying_target_apart():
    """Five targets with a small scale and one with a large one: the large one keeps
    its own scale, the others stay near theirs (no common scale for all)."""
    residuals = []
    for i, tau in enumerate([0.005] * 5 + [0.1]):
        residuals += [r._replace(target=f"t{i}")
                      for r in _residuals(jax.random.key(10 + i), tau, groups=8)]
    post = hyper_posterior(residuals)

    def median(t):
        marginal = post[t].sum(axis=(0, 1, 2, 4))
        return TAU_GRID[np.searchsorted(np.cumsum(marginal), 0.5)]

    assert median("t5") > 0.04
    assert all(median(f"t{i}") < 0.012 for i in range(5))


@pytest.fixture(scope="module")
def small_fit():
    """Additive runs at five sizes; one target fitted on the four smallest, 1.6B beyond."""
    table, _ = simulate_runs(jax.random.key(11), load_law("additive"), 3,
                             sizes=(1e8, 2e8, 4e8, 8e8, 1.6e9))
    train = table.select("N < 1e9")
    result = fit(jax.random.key(0), load_law("additive"), train, ["d0"], seed=0,
                 chains=2, warmup=200, draws=200)
    learnt = learn_discrepancy(jax.random.key(1), result, train)
    return table, train, result.with_discrepancy(learnt)


def test_learnt_from_nested_size_folds(small_fit):
    table, train, result = small_fit
    sizes = np.unique(train.frame["N"])
    folds = size_folds(train, np.ones(len(train.frame), bool))
    assert len(folds) == sizes.size - 2
    for target, tf in result.targets.items():
        term = tf.discrepancy
        assert term is not None and term.folds == tuple(f.name for f in folds)
        assert np.isclose(term.log_n_max, np.log(sizes.max()))
        assert np.isclose(term.log_d_max, np.log(train.target_data(target).n_tokens.max()))
    # the simulated law is the fitted one: the learnt scale is small (noise is 0.3 %)
    assert result.targets["d0"].discrepancy.summary()["tau_n"] < 0.02


def test_a_fold_holding_the_rows_of_the_fold_before_is_counted_once(small_fit):
    """A target without rows at 400M: the fold trained up to 400M holds its rows of the
    fold before (up to 200M, 800M held out), the same evidence, so it is left out."""
    _, train, result = small_fit
    frame = train.frame.copy()
    frame.loc[frame["N"] == 4e8, "loss_d0"] = np.nan
    gap = dataclasses.replace(train, frame=frame)
    assert len(calibrate.fold_residuals(jax.random.key(2), result, gap)) == 1
    # negative control: with its rows at 400M both folds count
    assert len(calibrate.fold_residuals(jax.random.key(2), result, train)) == 2


def test_a_fold_refit_with_held_out_rows_weighted_0_is_the_refit_of_its_rows(small_fit):
    """The fold's refit sees the fit's rows with weight 0 outside the fold (so that it
    uses the fit's compiled programs); its mode is the mode of the fold's rows alone."""
    _, train, _ = small_fit
    law, fold = load_law("additive"), size_folds(train, np.ones(len(train.frame), bool))[0]
    inputs = target_inputs(law, train.select(fold.train), "d0")
    data = train.target_data("d0")
    seen = np.isin(data.rows, train.frame.index.to_numpy()[fold.train])
    log_n, log_d, h = centred_inputs(law, inputs.scales, data.n_params, data.n_tokens,
                                     data.weights, inputs.target_index)

    def mode(weight, rows):
        return find_start(jax.random.key(4), law, inputs.k, inputs.scales, log_n[rows],
                          log_d[rows], h[rows], jnp.asarray(data.loss[rows]), n_starts=4,
                          weight=None if weight is None else weight[rows])

    alone, padded = mode(None, seen), mode(seen.astype(float), np.ones(seen.size, bool))
    # float32 potentials of a few hundred nats, L-BFGS to its tolerance
    assert abs(padded.potential - alone.potential) < 1e-3 * abs(alone.potential)
    # negative control: every row seen is another posterior
    everything = mode(np.ones(seen.size), np.ones(seen.size, bool))
    assert abs(everything.potential - alone.potential) > 0.1 * abs(alone.potential)
    residual = fold_residual(jax.random.key(4), law, train, fold, "d0", n_starts=4)
    held = np.isin(data.rows, train.frame.index.to_numpy()[fold.test])
    assert residual.residual.shape == (held.sum(),) and np.all(residual.d_n > 0)
    assert np.all(np.abs(residual.residual) < 0.05)  # the fitted law is the true one


def test_nothing_learnt_without_sizes_or_n(small_fit):
    _, train, result = small_fit
    two = train.select(f"N <= {np.unique(train.frame['N'])[1]}")
    assert size_folds(two, np.ones(len(two.frame), bool)) == []
    assert learn_discrepancy(jax.random.key(0), result, two) == {}
    fixed = dataclasses.replace(result, law=load_law("additive_fixed_nd"))
    assert learn_discrepancy(jax.random.key(0), fixed, train) == {}


def test_sizes_within_one_percent_are_one_size(small_fit):
    _, train, _ = small_fit
    every = np.ones(len(train.frame), bool)
    count = len(size_folds(train, every))

    def nudged(factor):  # half of the smallest size's rows counted another way
        frame = train.frame.copy()
        rows = np.flatnonzero(frame["N"].to_numpy() == frame["N"].min())[::2]
        frame.iloc[rows, frame.columns.get_loc("N")] *= factor
        return dataclasses.replace(train, frame=frame)

    assert len(size_folds(nudged(1.004), every)) == count
    assert len(size_folds(nudged(1.05), every)) == count + 1  # negative control: a size


def test_a_study_of_many_sizes_names_its_folds_in_one_short_line(small_fit):
    """Hoffmann et al.'s runs have 41 sizes: a fold's name lists at most three of the
    sizes it holds out (the full list made a line of 3000 characters)."""
    _, train, _ = small_fit
    frame = train.frame.copy()
    frame["N"] = frame["N"].to_numpy() * np.exp(0.05 * (np.arange(len(frame)) % 12))
    many = dataclasses.replace(train, frame=frame)
    folds = size_folds(many, np.ones(len(frame), bool))
    assert len(folds) > 10 and len({f.name for f in folds}) == len(folds)
    assert max(len(f.name) for f in folds) < 60
    assert folds[0].name.endswith(" sizes)") and "..." in folds[0].name
    assert "..." not in folds[-1].name  # negative control: the last folds list all


def test_nothing_learnt_in_d_gives_its_prior_and_no_bias(small_fit):
    """Folds that never reach beyond their training D learn nothing of the error in D:
    its scale is the prior's (not zero, which would claim the law exact there) and it
    carries no bias; a note says so where a prediction needs it."""
    _, train, result = small_fit
    beyond_d = float(np.exp(result.targets["d0"].discrepancy.log_d_max)) * 2
    folds = [f._replace(target="d0")
             for f in _residuals(jax.random.key(5), 0.02, groups=2, bias=-1.0)]
    term = calibrate.discrepancies(jax.random.key(6), result, train, folds)["d0"]
    assert not term.d_learnt and np.all(term.bias_d == 0)
    assert np.median(term.tau_d) > 1e-3 and np.ptp(np.log(term.tau_d)) > 2
    n_max = float(np.exp(term.log_n_max))
    assert term.unlearnt_reach([n_max, n_max], [beyond_d, 1.0]) == 1
    posterior = dataclasses.replace(result.posteriors["d0"], discrepancy=term)
    assert "beyond the tokens the training runs" in extrapolation_notes(
        {"d0": posterior}, n_max, beyond_d)[0]
    # a token count a rounding beyond (within SAME_SIZE) reaches nowhere new
    rounded = float(np.exp(term.log_d_max)) * 1.001
    assert term.unlearnt_reach([n_max], [rounded]) == 1  # the term's own, exact reach
    assert extrapolation_notes({"d0": posterior}, n_max, rounded) == []
    back = Discrepancy.from_dict(json.loads(json.dumps(term.to_dict())), "fit.json")
    assert back.d_learnt is False
    # negative control: a fold that reaches beyond its D learns the bias there too
    reached = [f._replace(d_d=np.full(f.d_d.size, 0.3)) for f in folds]
    learnt = calibrate.discrepancies(jax.random.key(6), result, train, reached)["d0"]
    assert learnt.d_learnt and np.any(learnt.bias_d != 0)
    assert learnt.unlearnt_reach([n_max], [beyond_d]) == 0
    assert extrapolation_notes({"d0": dataclasses.replace(posterior, discrepancy=learnt)},
                               n_max, beyond_d) == []


def test_a_note_where_the_intervals_are_the_laws_own_beyond_the_runs(small_fit):
    _, train, result = small_fit
    bare = law_only(result.posteriors)  # as a fit of two sizes, or --no-discrepancy
    scales = bare["d0"].scales
    assert (scales.n_max, scales.d_max) == (train.frame["N"].max(), train.frame["D"].max())
    notes = extrapolation_notes(bare, [scales.n_max, 2 * scales.n_max], scales.d_max)
    assert len(notes) == 1 and "1 run(s) beyond the training range" in notes[0]
    # none inside the range, none where the learnt term covers the extrapolation
    assert extrapolation_notes(bare, scales.n_max, scales.d_max) == []
    assert extrapolation_notes(result.posteriors, 2 * scales.n_max, 2 * scales.d_max) == []


def _with_copy(train, missing_at=None):
    """``train`` with a target ``e``, ``d0``'s losses, none at size ``missing_at``."""
    frame = train.frame.copy()
    frame["loss_e"] = frame["loss_d0"]
    if missing_at is not None:
        frame.loc[frame["N"] == missing_at, "loss_e"] = np.nan
    return dataclasses.replace(train, frame=frame, targets=(*train.targets, "e"))


def test_fit_says_which_target_lost_a_fold(small_fit, capsys):
    from bayesmix.commands.fit import _print_discrepancy

    _, train, result = small_fit
    tf = result.targets["d0"]
    fewer = dataclasses.replace(tf.discrepancy, folds=tf.discrepancy.folds[:1])
    two = dataclasses.replace(result, targets={
        "d0": tf, "e": dataclasses.replace(tf, target="e", discrepancy=fewer)})
    _print_discrepancy(two, _with_copy(train))
    out = capsys.readouterr().out
    assert f"e learnt without fold(s) {tf.discrepancy.folds[1]}" in out
    assert "d0 learnt without" not in out  # negative control: d0 has every fold
    # a fold left out because it held no new rows of e (none at 400M) is no loss
    _print_discrepancy(two, _with_copy(train, missing_at=4e8))
    assert "learnt without" not in capsys.readouterr().out


def test_folds_hold_a_target_only_where_it_has_rows_to_refit_and_to_predict(small_fit):
    _, train, result = small_fit
    two = dataclasses.replace(result, targets={**result.targets, "e": result.targets["d0"]})
    names = [f.name for f in size_folds(train, np.ones(len(train.frame), bool))]
    plan = {fold.name: targets for fold, targets in
            calibrate.fold_plan(two, _with_copy(train, missing_at=8e8))}
    # no row of e at 800M: the last fold (up to 400M, 800M held out) has nothing to score
    assert plan == {names[0]: ("d0", "e"), names[1]: ("d0",)}
    plan = {fold.name: targets for fold, targets in
            calibrate.fold_plan(two, _with_copy(train))}
    assert plan == {names[0]: ("d0", "e"), names[1]: ("d0", "e")}  # negative control


def test_fit_says_why_there_is_no_term(small_fit, capsys):
    from bayesmix.commands.fit import _print_discrepancy

    _, train, result = small_fit
    bare = result.with_discrepancy({})
    _print_discrepancy(bare, train, skipped=True)
    assert "(--no-discrepancy was given)" in capsys.readouterr().out
    two_sizes = train.select("N <= 2e8")
    _print_discrepancy(bare, two_sizes)
    out = capsys.readouterr().out
    assert "fewer than 3 model sizes" in out and "no-discrepancy" not in out


def test_constant_target_is_refused_in_one_line(small_fit):
    from bayesmix import BayesmixError
    from bayesmix.model import target_inputs

    _, train, _ = small_fit
    frame = train.frame.copy()
    frame["loss_d0"] = 2.5
    with pytest.raises(BayesmixError, match="same loss .2.5. on every one of its"):
        target_inputs(load_law("additive"), dataclasses.replace(train, frame=frame), "d0")
    assert target_inputs(load_law("additive"), train, "d0").data.loss.size  # control


def test_a_target_name_that_is_no_file_name(small_fit, tmp_path):
    _, _, result = small_fit
    tf = result.targets["d0"]
    named = dataclasses.replace(result, targets={
        name: dataclasses.replace(tf, target=name) for name in ("paloma/c4", "paloma_c4")})
    back = load_fit(save_fit(named, tmp_path / "fit"))
    assert list(back.targets) == ["paloma/c4", "paloma_c4"]
    assert sorted(p.name for p in (tmp_path / "fit").glob("*.nc")) == ["paloma_c4.nc",
                                                                       "paloma_c4_2.nc"]


def test_held_out_scores_skip_a_target_without_rows(small_fit):
    """A fold of cross-validation can hold no row of a target (measured at other sizes):
    no score for it, rather than a score of 0 rows and NaN errors."""
    table, _, result = small_fit
    beyond = (table.frame["N"] > 1e9).to_numpy()
    frame = table.frame.copy()
    frame.loc[beyond, "loss_d0"] = np.nan
    held = dataclasses.replace(table, frame=frame).select(beyond)
    assert heldout_scores(jax.random.key(0), {"f": result.posteriors}, held) == []
    # negative control: with its losses the target is scored
    scored = heldout_scores(jax.random.key(0), {"f": result.posteriors}, table.select(beyond))
    assert [(s.target, s.rows) for s in scored] == [("d0", int(beyond.sum()))]


def test_store_round_trip(small_fit, tmp_path):
    _, _, result = small_fit
    back = load_fit(save_fit(result, tmp_path / "fit"))
    for target, tf in result.targets.items():
        assert np.array_equal(back.targets[target].discrepancy.tau_d, tf.discrepancy.tau_d)
        assert back.targets[target].scales == tf.scales
    # a fit written before the training range was kept reads without it (and no note)
    meta = json.loads((tmp_path / "fit" / "fit.json").read_text())
    for info in meta["per_target"].values():
        del info["scales"]["n_max"], info["scales"]["d_max"]
    (tmp_path / "fit" / "fit.json").write_text(json.dumps(meta))
    old = law_only(load_fit(tmp_path / "fit").posteriors)
    assert old["d0"].scales.n_max is None
    assert extrapolation_notes(old, 1e12, 1e13) == []


def _with_term(result, tau_n, bias_n):
    """d0's posterior with its learnt term at a given scale and bias in N."""
    learnt = result.posteriors["d0"].discrepancy
    term = dataclasses.replace(learnt, tau_n=np.full_like(learnt.tau_n, tau_n),
                               bias_n=np.full_like(learnt.tau_n, bias_n))
    return {"d0": dataclasses.replace(result.posteriors["d0"], discrepancy=term)}, term


def test_mean_factor_is_the_mean_of_the_drawn_factors(small_fit):
    post, term = _with_term(small_fit[2], 0.05, -0.02)
    n, d = 4e9, 8e10
    exact = mixture_objective(post).log_mean_factors(n, d)["d0"]
    draws = 400_000
    delta = discrepancy_draws(jax.random.key(0), term, [n], [d], draws)[:, 0]
    c = np.exp(delta)
    # the Monte Carlo mean's standard error, on the log scale
    assert exact == pytest.approx(np.log(c.mean()), abs=4 * c.std() / c.mean() / np.sqrt(draws))
    assert abs(exact - np.log(np.median(c))) > 1e-3  # negative control: not the median


def test_corrupt_record_in_a_fit_file(small_fit, tmp_path, capsys):
    _, table, result = small_fit
    out = save_fit(result, tmp_path / "fit")
    meta = json.loads((out / "fit.json").read_text())
    meta["per_target"]["d0"]["discrepancy"]["tau_n"] = "lots"
    (out / "fit.json").write_text(json.dumps(meta))
    runs = tmp_path / "runs.csv"
    table.frame.to_csv(runs, index=False)
    assert main(["predict", str(out), "--runs", str(runs), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fit.json" in err[0] and "d0" in err[0]


# ----------------------------------------------------------------------- use


def test_predict_widens_beyond_only(small_fit):
    table, _, result = small_fit
    with_term = predict_table(jax.random.key(5), result.posteriors, table)
    without = predict_table(jax.random.key(5), law_only(result.posteriors), table)
    inside = table.frame["N"].to_numpy() < 1e9
    for name in ("d0_q05", "d0_q95", "d0_pp_q05", "d0_pp_q95"):
        np.testing.assert_array_equal(with_term[name][inside], without[name][inside])
    width = (with_term["d0_pp_q95"] - with_term["d0_pp_q05"])[~inside]
    width0 = (without["d0_pp_q95"] - without["d0_pp_q05"])[~inside]
    assert np.all(width >= width0 * (1 - 1e-9))
    # the learnt term is small here; a term of 5 % per unit of log N must widen clearly
    big = {t: dataclasses.replace(p, discrepancy=dataclasses.replace(
        p.discrepancy, tau_n=np.full_like(p.discrepancy.tau_n, 0.05)))
        for t, p in result.posteriors.items()}
    wide = predict_table(jax.random.key(5), big, table)
    assert np.median(((wide["d0_pp_q95"] - wide["d0_pp_q05"])[~inside]) / width0) > 1.5


def test_decisions_of_several_targets_solve_the_factored_objective(small_fit):
    """With several targets the factors reweight them: each draw's h* is the optimum of
    its own factored objective, so no draw's regret is negative."""
    _, _, result = small_fit
    post = result.posteriors["d0"]
    k = len(post.domains)
    # a second target: the same law with its domains permuted (another optimum)
    turned = {name: v[..., ::-1] if np.ndim(v) == 2 and np.shape(v)[-1] == k else v
              for name, v in post.params.items()}
    learnt = post.discrepancy
    two = {"a": dataclasses.replace(post, discrepancy=dataclasses.replace(
               learnt, tau_n=np.full_like(learnt.tau_n, 0.1))),
           "b": dataclasses.replace(post, target="b", params=turned, discrepancy=None)}
    n, d, key = 4e9, 8e10, jax.random.key(2)
    report = decide(two, n, d, key=key)
    other = decide(two, n, d, key=jax.random.key(3))
    # h_bayes from the factors' exact means: the same for any key; h* per draw is not
    np.testing.assert_array_equal(other.h_bayes, report.h_bayes)
    assert not np.array_equal(other.h_star_draws, report.h_star_draws)
    tol = 1e-6 * report.h_star_values.mean()  # the solver's tolerance, generously
    regret = report.objective["h_bayes"] - report.h_star_values
    assert regret.min() > -tol
    # negative control: the law's own optima are not the factored objective's (worse
    # than the draws' h* by more than the tolerance: a regret check would see it)
    objective = mixture_objective(two)
    factored = objective.with_factors(objective.discrepancy_factors(key, n, d))
    law_h = decide(law_only(two), n, d).h_star_draws
    at_law_h = np.asarray(decision._own_values(factored, factored.jax_params(),
                                               jnp.asarray(n), jnp.asarray(d), law_h))
    assert np.max(at_law_h - report.h_star_values) > 5 * tol


def test_decisions_of_one_target_unchanged(small_fit):
    table, _, result = small_fit
    # a large scale and a bias of its size: both shared by every mixture at (N, D)
    post, _ = _with_term(result, 0.05, -0.05)
    uniform = {"uniform": np.full(3, 1 / 3)}
    n, d = 4e9, 8e10  # beyond the training range in N and D
    a = decide(post, n, d, references=uniform, key=jax.random.key(0)).to_dict()
    b = decide(law_only(post), n, d, references=uniform).to_dict()
    assert a["h_bayes"] == b["h_bayes"] and a["h_star"] == b["h_star"]
    for name in ("h_bayes", "uniform"):
        assert a["objective"][name]["p_h_bayes_better"] == b["objective"][name][
            "p_h_bayes_better"]
    width = {r: r_["objective"]["h_bayes"]["q95"] - r_["objective"]["h_bayes"]["q05"]
             for r, r_ in (("with", a), ("without", b))}
    assert width["with"] > 2 * width["without"]  # the predicted loss itself is wider
    n_in, d_in = 2e8, float(np.median(table.frame["D"][table.frame["N"] == 2e8]))
    inside = decide(post, n_in, d_in, references=uniform, key=jax.random.key(0)).to_dict()
    plain = decide(law_only(post), n_in, d_in, references=uniform).to_dict()
    assert inside["objective"] == plain["objective"]  # inside the range: the law's own
