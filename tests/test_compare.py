"""Comparing laws: CRPS, interval coverage (with a negative control), PSIS-LOO ranking,
held-out scores and the ``compare`` command."""

import dataclasses
import json

import jax
import numpy as np
import pytest
import scipy.stats

from bayesmix import BayesmixError
from bayesmix.cli import main
from bayesmix.compare import compare, stacking_weights
from bayesmix.crossval import mixture_folds, scale_folds, training_rows
from bayesmix.discrepancy import Discrepancy
from bayesmix.fit import fit
from bayesmix.laws import load_law
from bayesmix.model import Scales, TargetPosterior
from bayesmix.predict import predict_draws, predictive_draws
from bayesmix.runs import RunTable, load_runs
from bayesmix.scoring import (
    CHANCE_TRUTHS,
    LEVELS,
    chance_bands,
    crps_from_draws,
    heldout_scores,
    pool_scores,
    score_heldout,
)
from bayesmix.simulate import simulate_runs
from bayesmix.store import save_fit

LARGEST = 8.0e8  # simulate's largest default size: the held-out one


def test_crps_matches_its_definition():
    rng = np.random.default_rng(0)
    draws, observed = rng.normal(size=(300, 4)), np.array([-1.0, 0.0, 0.5, 3.0])
    brute = (np.abs(draws - observed).mean(0)
             - 0.5 * np.abs(draws[:, None, :] - draws[None, :, :]).mean((0, 1)))
    np.testing.assert_allclose(crps_from_draws(draws, observed), brute, rtol=1e-12)
    # one repeated value: the absolute error
    np.testing.assert_allclose(crps_from_draws(np.full((5, 1), 2.0), np.array([0.5])), [1.5])
    # Gaussian closed form, within Monte Carlo error of 20000 draws
    z = rng.normal(size=(20000, 1))
    y = np.array([0.7])
    exact = 0.7 * (2 * scipy.stats.norm.cdf(0.7) - 1) + 2 * scipy.stats.norm.pdf(0.7) \
        - 1 / np.sqrt(np.pi)
    np.testing.assert_allclose(crps_from_draws(z, y), [exact], atol=0.01)


def test_crps_of_a_column_with_an_infinite_draw_is_infinite():
    draws = np.array([[0.0, 1.0], [np.inf, 2.0], [1.0, 3.0]])
    score = crps_from_draws(draws, np.array([0.5, 2.0]))
    assert score[0] == np.inf and np.isfinite(score[1])
    np.testing.assert_allclose(score[1], crps_from_draws(draws[:, 1:], np.array([2.0])))


def test_stacking_weights_maximise_the_stacked_score():
    rng = np.random.default_rng(1)
    # each model predicts half of the rows well: stacking mixes them
    good, bad = rng.normal(1.0, 0.1, 40), rng.normal(-3.0, 0.1, 40)
    lpd = np.column_stack([np.r_[good, bad], np.r_[bad, good[:25] + 0.2, bad[:15]],
                           np.full(80, -10.0)])
    w = stacking_weights(lpd)
    grid = np.linspace(0, 1, 2001)
    score = [np.log(np.exp(lpd[:, :2]) @ np.array([g, 1 - g])).sum() for g in grid]
    assert abs(w[0] - grid[int(np.argmax(score))]) < 2e-3 and w[2] < 1e-6
    assert abs(w.sum() - 1) < 1e-12
    # negative control: a model better on every row takes all the weight
    dominant = stacking_weights(np.column_stack([good, good - 1.0]))
    assert dominant[0] > 1 - 1e-6


# ------------------------------------------------------------ coverage, no sampler


@pytest.fixture(scope="module")
def world():
    """Runs from the additive law and each target's true law as a point posterior."""
    law = load_law("additive")
    table, truth = simulate_runs(jax.random.key(11), law, 3, n_mixtures=30)
    frame = table.frame
    scales = Scales(n_ref=float(np.exp(np.log(frame["N"]).mean())),
                    d_ref=float(np.exp(np.log(frame["D"]).mean())), loss_scale=3.0)
    points = {t: TargetPosterior.from_sites(law, t, table.domains, scales, truth[t])
              for t in table.targets}
    return table, points


def _with_noise(point, sigma, nu=8.0, draws=4000):
    """``point`` with ``draws`` Student-t noise draws (every draw the true parameters)."""
    return dataclasses.replace(point, noise={"sigma": np.full(draws, sigma),
                                             "nu": np.full(draws, nu)})


def _resimulated(key, table, posterior):
    """The table with ``posterior.target``'s losses drawn from ``posterior``'s predictive."""
    data = table.target_data(posterior.target)
    mean = predict_draws(posterior, data.n_params, data.n_tokens, data.weights)
    one = dataclasses.replace(posterior, noise={name: v[:1] for name, v in
                                                posterior.noise.items()})
    frame = table.frame.copy()
    frame.loc[data.rows, f"loss_{posterior.target}"] = predictive_draws(key, one, mean)[0]
    return RunTable(frame, table.domains, table.targets, "resimulated")


def test_coverage_of_the_true_predictive_is_nominal(world):
    table, points = world
    sigma = 0.01
    posteriors = {t: _with_noise(p, sigma) for t, p in points.items()}
    held = table
    for i, posterior in enumerate(posteriors.values()):
        held = _resimulated(jax.random.key(100 + i), held, posterior)
    scores = heldout_scores(jax.random.key(3), {"truth": posteriors}, held)
    rows = sum(s.rows for s in scores)
    pooled = np.average([s.coverage for s in scores], axis=0, weights=[s.rows for s in scores])
    # each level within the binomial 99.9 % range of a calibrated predictive for these rows
    lo, hi = scipy.stats.binom.interval(0.999, rows, np.asarray(LEVELS))
    assert np.all((lo / rows <= pooled) & (pooled <= hi / rows)), pooled
    # negative control: intervals of a third the width are caught
    narrow = {t: _with_noise(p, sigma / 3) for t, p in points.items()}
    bad = heldout_scores(jax.random.key(3), {"narrow": narrow}, held)
    bad_pooled = np.average([s.coverage for s in bad], axis=0, weights=[s.rows for s in bad])
    assert np.any(bad_pooled < lo / rows)
    assert bad_pooled[LEVELS.index(0.9)] < 0.6
    # the true mean's relative error is the noise's: E|t_8| sigma ~ 0.85 sigma, no sign
    # (|mean of n t_8 draws| < 4 standard errors, sd(t_8) = sqrt(8 / 6))
    for s in scores:
        assert 0.6 * sigma < s.mre < 1.1 * sigma
        assert abs(s.signed) < 4 * sigma * np.sqrt(8 / 6) / np.sqrt(s.rows)


# ------------------------------------------------------------ LOO with NUTS fits


@pytest.fixture(scope="module")
def two_laws(tmp_path_factory):
    """The additive law (right) and Chinchilla's (no mixture term: wrong) fitted to one
    target of additive-law runs below the largest size; the largest size held out."""
    table, _ = simulate_runs(jax.random.key(21), load_law("additive"), 3, targets=["d1"])
    train = table.select(f"N < {LARGEST}")
    fits = {name: fit(jax.random.key(0), load_law(name), train, ["d1"], seed=0,
                      chains=2, warmup=300, draws=400)
            for name in ("additive", "chinchilla")}
    root = tmp_path_factory.mktemp("compare")
    path = root / "runs.csv"
    table.frame.to_csv(path, index=False)
    dirs = {name: save_fit(f, root / name) for name, f in fits.items()}
    return fits, table, path, dirs


def test_loo_prefers_the_right_law(two_laws):
    fits, table, _, _ = two_laws
    result = compare(jax.random.key(0), fits, table.select(f"N >= {LARGEST}"))
    assert result.preferred("d1") == "additive"
    ranks = {r.label: r for r in result.ranking if r.target == "d1"}
    assert ranks["chinchilla"].elpd_diff > 4 * ranks["chinchilla"].dse
    assert ranks["additive"].weight > 0.9
    assert {s.label for s in result.loo} == {"additive", "chinchilla"}
    held = {s.label: s for s in result.heldout}
    assert held["additive"].mre < held["chinchilla"].mre
    assert held["additive"].crps < held["chinchilla"].crps
    assert held["additive"].rows == int((table.frame["N"] >= LARGEST).sum())
    # the order of the fits does not change the answer
    again = compare(jax.random.key(0), dict(reversed(fits.items())))
    assert again.preferred("d1") == "additive"


def test_fits_of_other_runs_are_not_ranked_and_the_table_says_why(two_laws):
    fits, _, _, _ = two_laws
    other = {**fits, "chinchilla": dataclasses.replace(fits["chinchilla"],
                                                       source="another study.csv")}
    result = compare(jax.random.key(0), other)
    assert result.ranking == () and "not ranked: d1 (its fits were made on other" in str(
        result)
    assert "not ranked" not in str(compare(jax.random.key(0), fits))  # negative control


def test_compare_command(two_laws, tmp_path, capsys):
    _, _, path, dirs = two_laws
    base = [str(dirs["additive"]), str(dirs["chinchilla"])]
    held = ["--heldout", str(path), "--where", f"N >= {LARGEST}"]
    assert main(["compare", *base, *held, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"loo", "ranking", "heldout", "levels", "chance"} <= set(payload)
    assert [r["label"] for r in payload["ranking"] if r["rank"] == 0] == ["additive"]
    # a chance band per fit and target, and pooled
    bands = {(b["label"], b["target"]) for b in payload["chance"]}
    assert bands == {(r["label"], r["target"]) for r in payload["heldout"]}
    assert all(0.0 <= b["coverage_p"][-1] <= 1.0 for b in payload["chance"])
    out = tmp_path / "cmp"
    assert main(["compare", *base, *held, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "elpd_loo" in printed and "cov90" in printed and "p90" in printed
    assert "by chance alone" in printed
    assert (out / "comparison.json").is_file() and (out / "coverage.png").stat().st_size > 0
    assert (out / "loo_pit.png").stat().st_size > 0


@pytest.mark.parametrize("extra, message", [
    (["--where", "N > 1"], "--where selects held-out rows"),
    (["--heldout", "missing.csv"], "missing.csv"),
])
def test_compare_bad_input(two_laws, capsys, extra, message):
    _, _, _, dirs = two_laws
    assert main(["compare", str(dirs["additive"]), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_compare_refuses_a_directory_that_is_no_fit(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("x")
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "not a fit directory" in capsys.readouterr().err


# ------------------------------------------------------------ cross-validation


def test_folds_partition_the_training_rows(two_laws):
    fits, table, _, _ = two_laws
    train = table.select(f"N < {LARGEST}")
    rows = training_rows(fits["additive"], train)
    assert rows.all()
    (scale,) = scale_folds(train, rows)
    n = train.frame["N"].to_numpy()
    assert set(n[scale.test]) == {n.max()} and n.max() not in set(n[scale.train])
    # the largest size counted two ways (within 1 %) is still one size, all held out
    frame = train.frame.copy()
    at_max = np.flatnonzero(n == n.max())
    frame.iloc[at_max[::2], frame.columns.get_loc("N")] *= 0.996
    (nudged,) = scale_folds(dataclasses.replace(train, frame=frame), rows)
    assert (nudged.test == scale.test).all()
    folds = mixture_folds(jax.random.key(0), train, rows, 3)
    tests = np.array([f.test for f in folds])
    assert (tests.sum(axis=0) == 1).all()  # every row held out exactly once
    h = np.round(train.weights, 9)
    for f in folds:
        assert not ({tuple(r) for r in h[f.test]} & {tuple(r) for r in h[f.train]})
    # the same key, the same folds; another key, others
    again = mixture_folds(jax.random.key(0), train, rows, 3)
    assert all((a.test == b.test).all() for a, b in zip(folds, again, strict=True))
    other = mixture_folds(jax.random.key(1), train, rows, 3)
    assert any((a.test != b.test).any() for a, b in zip(folds, other, strict=True))
    # a mixture logged at float32 precision at one size is still one mixture, whole
    frame = train.frame.copy()
    columns = [f"h_{d}" for d in train.domains]
    frame.loc[n == n.max(), columns] += 2e-8
    logged = dataclasses.replace(train, frame=frame)
    assert not np.array_equal(np.round(logged.weights, 9), np.round(train.weights, 9))
    for f in mixture_folds(jax.random.key(0), logged, rows, 3):
        assert not ({tuple(r) for r in h[f.test]} & {tuple(r) for r in h[f.train]})


def test_folds_refuse_too_little(two_laws):
    fits, table, _, _ = two_laws
    small = table.select("N < 3e8")
    with pytest.raises(BayesmixError, match="at least 3 model sizes"):
        scale_folds(small, np.ones(len(small.frame), bool))
    with pytest.raises(BayesmixError, match="too few for 500 folds"):
        mixture_folds(jax.random.key(0), small, np.ones(len(small.frame), bool), 500)
    with pytest.raises(BayesmixError, match="lacks .* row"):
        training_rows(fits["additive"], small)


# slow: two folds' refits with their discrepancy (about 55 s); the default run stays
# under 15 minutes on 2 cores (bench/RESULTS.md)
@pytest.mark.slow
def test_compare_cv_scale_command(two_laws, capsys):
    """Refit without the largest training size: the right law extrapolates better."""
    _, table, path, dirs = two_laws
    assert main(["compare", str(dirs["additive"]), str(dirs["chinchilla"]), "--cv", "scale",
                 "--runs", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["cv_kind"] == "scale"
    cv = {r["label"]: r for r in payload["cv"] if r["target"] == "d1"}
    n = table.frame["N"]
    assert cv["additive"]["rows"] == int((n == n[n < LARGEST].max()).sum())
    assert cv["additive"]["mre"] < cv["chinchilla"]["mre"]
    assert cv["additive"]["crps"] < cv["chinchilla"]["crps"]
    assert main(["compare", str(dirs["additive"]), "--cv", "scale"]) == 2
    assert "--runs" in capsys.readouterr().err


def test_cross_validation_refuses_a_run_table_unlike_the_fits(two_laws, tmp_path, capsys):
    """The refits would be of other runs: the table's values at the fit's rows are checked
    against the fit's own data, before any refit (the same table passes: the slow
    test above)."""
    _, table, _, dirs = two_laws
    altered = table.frame.copy()
    row = int(altered.index[altered["N"] < LARGEST][3])
    altered.loc[row, "loss_d1"] *= 1.5
    path = tmp_path / "altered.csv"
    altered.to_csv(path, index=False)
    assert main(["compare", str(dirs["additive"]), "--cv", "scale", "--runs", str(path),
                 "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"row {row}: its loss_d1 is not the one the fit was trained on" in err


def test_the_run_table_check_reads_columns_by_name(two_laws, tmp_path):
    """The fit's own runs with the weight columns in another order, or renormalised, are
    the fit's runs; a table without the target's loss column is refused in one line."""
    fits, table, _, _ = two_laws
    frame = table.frame.copy()
    weights = [c for c in frame if c.startswith("h_")]
    frame[weights] = frame[weights] * 1.0004  # off the simplex by less than its tolerance
    shuffled = frame[[*reversed(weights), *[c for c in frame if c not in weights]]]
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    again = load_runs(path, renormalize=True)
    assert tuple(again.domains) == tuple(reversed(table.domains))
    assert training_rows(fits["additive"], again).sum() == len(fits["additive"].targets["d1"].rows)
    shuffled.drop(columns="loss_d1").to_csv(path, index=False)
    with pytest.raises(BayesmixError, match="no loss column for target 'd1'"):
        training_rows(fits["additive"], load_runs(path, renormalize=True, losses_required=False))


@pytest.mark.slow  # 2 refits in worker processes: 30-40 s
def test_compare_cv_in_worker_processes_scores_the_same(two_laws, capsys):
    _, _, path, dirs = two_laws
    command = ["compare", str(dirs["additive"]), str(dirs["chinchilla"]), "--cv", "scale",
               "--runs", str(path), "--json"]
    assert main(command) == 0
    here = json.loads(capsys.readouterr().out)["cv"]
    assert main([*command, "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["cv"] == here


@pytest.mark.slow
def test_mixture_cv_coverage_inside_the_training_range(tmp_path):
    """Issue 22, bar 2 on simulated runs: 90 % intervals for held-out mixtures at the
    training sizes hold 85-95 % of the rows, with the right law."""
    from bayesmix.crossval import cross_validate

    law = load_law("additive")
    table, _ = simulate_runs(jax.random.key(31), law, 3, n_mixtures=20, run_noise=0.002)
    fitted = fit(jax.random.key(0), law, table, list(table.targets), seed=0)
    scores = cross_validate(jax.random.key(1), "additive", fitted, table, "mixture")
    pooled = np.average([s.cover90 for s in scores], weights=[s.rows for s in scores])
    assert 0.85 <= pooled <= 0.95, pooled


def test_plots_of_fit_and_heldout(two_laws):
    import matplotlib.pyplot as plt

    from bayesmix.plots import plot_loo_pit, plot_observed_vs_predicted

    fits, table, _, _ = two_laws
    fig, ax = plt.subplots()
    assert plot_observed_vs_predicted(jax.random.key(0), fits["additive"].posteriors["d1"],
                                      table, ax=ax) is fig
    assert len(ax.containers) == table.frame["N"].nunique()  # one errorbar set a size
    fig = plot_loo_pit({name: f.targets["d1"].idata for name, f in fits.items()})
    lines = {line.get_label(): np.max(np.abs(line.get_ydata()))
             for line in fig.axes[0].get_lines() if line.get_label() in fits}
    # the right law's LOO-PIT is nearer uniform than the law without a mixture term's
    # (which misses each mixture's level: its PIT piles up at the ends)
    assert lines["additive"] < lines["chinchilla"]
    plt.close("all")


def test_heavy_tailed_predictive_scores_on_the_log_scale(world):
    """A fit with nu near zero has log-loss draws beyond exp's range: its CRPS (of the
    log loss) stays finite and no warning is raised (pytest's warnings are errors)."""
    table, points = world
    target = table.targets[0]
    heavy = {target: _with_noise(points[target], 0.01, nu=0.05)}
    data = table.target_data(target)
    mean = predict_draws(heavy[target], data.n_params, data.n_tokens, data.weights)
    log_pp = predictive_draws(jax.random.key(4), heavy[target], mean, log=True)
    assert np.all(np.isfinite(log_pp)) and log_pp.max() > 710  # exp would overflow
    (score,) = heldout_scores(jax.random.key(4), {"heavy": heavy}, table)
    assert np.isfinite(score.crps) and score.crps > 1.0
    # its pseudo-truths reach those draws too: errors of -1 or inf, a band without NaN
    for band in chance_bands(score_heldout(jax.random.key(4), {"heavy": heavy}, table)):
        assert not np.isnan([*band.mre, band.mre_p, *np.ravel(band.coverage)]).any()
    # the same draws exponentiated and logged again are infinite: the old round trip
    with np.errstate(over="ignore", divide="ignore"):
        assert np.isinf(np.log(np.exp(log_pp))).any()


# ------------------------------------------------------------ chance bands


@pytest.fixture(scope="module")
def true_predictive(world):
    """The true predictive of each target (noise only) and runs resimulated from it."""
    table, points = world
    posteriors = {t: _with_noise(p, 0.01) for t, p in points.items()}
    held = table
    for i, posterior in enumerate(posteriors.values()):
        held = _resimulated(jax.random.key(200 + i), held, posterior)
    return posteriors, held


def _beyond(posteriors, held, tau_n, bias_n):
    """Each posterior with one parameter draw per noise draw (as a fit has: one draw of
    delta each) and a discrepancy of these hyper draws whose training range ends a log
    unit below every held-out size."""
    zeros = np.zeros(tau_n.size)
    term = Discrepancy(float(np.log(held.frame["N"].min())) - 1.0,
                       float(np.log(held.frame["D"].max())), tau_n=tau_n, tau_d=zeros,
                       growth=np.ones(tau_n.size), bias_n=bias_n, bias_d=zeros)
    return {t: dataclasses.replace(p, discrepancy=term, params={
        k: np.repeat(v, p.noise["nu"].size, axis=0) for k, v in p.params.items()})
        for t, p in posteriors.items()}


def _pooled_band(bands):
    (band,) = [b for b in bands if b.target == "all"]
    return band


def test_chance_band_of_independent_rows_is_binomial(true_predictive):
    """Rows with independent errors: the pooled coverage of a pseudo-truth is binomial,
    and the observed coverage of the true predictive is typical of it."""
    posteriors, held = true_predictive
    result = score_heldout(jax.random.key(5), {"truth": posteriors}, held)
    scores, bands = result.scores, chance_bands(result)
    assert scores == heldout_scores(jax.random.key(5), {"truth": posteriors}, held)
    band = _pooled_band(bands)
    rows = sum(s.rows for s in scores)
    assert band.truths == CHANCE_TRUTHS and len(bands) == len(posteriors) + 1
    for level, (lo, hi), p in zip(LEVELS, band.coverage, band.coverage_p, strict=True):
        b_lo, b_hi = scipy.stats.binom.ppf([0.05, 0.95], rows, level) / rows
        # the band's ends within a third of the binomial sd plus a row (quantiles of
        # 1000 pseudo-truths; the intervals from 4000 draws)
        tol = np.sqrt(level * (1 - level) / rows) / 3 + 1 / rows
        assert abs(lo - b_lo) <= tol and abs(hi - b_hi) <= tol, (level, lo, hi, b_lo, b_hi)
        assert 0.001 < p < 0.999, (level, p)
    # negative control: intervals a third the width hold far less than any pseudo-truth
    narrow = {t: _with_noise(p, 0.01 / 3) for t, p in posteriors.items()}
    narrow_bands = chance_bands(score_heldout(jax.random.key(5), {"narrow": narrow}, held))
    assert _pooled_band(narrow_bands).coverage_p[LEVELS.index(0.9)] == 0.0


def test_chance_band_widens_with_an_error_shared_by_the_rows(true_predictive):
    """A discrepancy shared by every row of a target moves all its rows together: the
    pooled coverage then rests on few independent errors and its band is far wider
    than the binomial one of independent rows (the case of one held-out size)."""
    posteriors, held = true_predictive
    with_term = _beyond(posteriors, held, tau_n=np.full(2000, 0.02), bias_n=np.zeros(2000))
    bands = chance_bands(score_heldout(jax.random.key(5), {"shared": with_term}, held))
    plain = chance_bands(score_heldout(jax.random.key(5), {"truth": posteriors}, held))
    wide, narrow = _pooled_band(bands).cover90, _pooled_band(plain).cover90
    assert wide[1] - wide[0] > 3 * (narrow[1] - narrow[0]), (wide, narrow)
    # the point fit has no band
    points = {t: dataclasses.replace(p, noise=None,
                                     params={k: v[:1] for k, v in p.params.items()})
              for t, p in posteriors.items()}
    assert chance_bands(score_heldout(jax.random.key(5), {"point": points}, held)) == []


def test_chance_band_pairs_the_targets_draws(true_predictive):
    """A bias drawn once per draw and shared by every target (the discrepancy's shared
    bias) moves all targets together: the pooled band is as wide as one target's. With
    each target's pseudo-truths drawn apart (the negative control) it narrows."""
    posteriors, held = true_predictive
    with_bias = _beyond(posteriors, held, tau_n=np.zeros(4000),
                        bias_n=np.random.default_rng(7).normal(0.0, 0.02, 4000))
    result = score_heldout(jax.random.key(5), {"bias": with_bias}, held)
    bands = chance_bands(result)
    width = {b.target: b.cover90[1] - b.cover90[0] for b in bands}
    one = np.mean([w for t, w in width.items() if t != "all"])
    assert width["all"] > 0.8 * one, width
    # negative control: the same pseudo-truths with the targets' draws unpaired
    rng = np.random.default_rng(0)
    columns = list(zip(*result.pseudo["bias"], strict=True))
    shuffled = [rng.permutation(len(c)) for c in columns]
    unpaired = [pool_scores([columns[i][order[r]] for i, order in enumerate(shuffled)],
                            "bias", "all").cover90 for r in range(len(columns[0]))]
    lo, hi = np.quantile(unpaired, [0.05, 0.95])
    assert hi - lo < 0.75 * width["all"], (hi - lo, width)

