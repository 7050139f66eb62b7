"""Which run to launch next: candidates, the value of a run, batches, the stop rule.

The posteriors here are built by hand (no NUTS fit), so every check runs in seconds.
"""

import json
from dataclasses import replace
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesmix import BayesmixError
from bayesmix.candidates import candidate_runs, checkpoint_tokens, read_candidates
from bayesmix.confirm import _with_outcome, batch_rows, confirm_batch
from bayesmix.decision import decide
from bayesmix.design import DesignSettings, _greedy, suggest_runs
from bayesmix.discrepancy import Discrepancy
from bayesmix.fantasy import (
    batch_value,
    fantasised_log_losses,
    fantasy_summaries,
    regrets_with_each,
    start_projection,
)
from bayesmix.laws import load_law
from bayesmix.model import Scales, TargetPosterior
from bayesmix.predict import predict_draws
from bayesmix.runs import RunTable
from bayesmix.simulate import simulate_runs

LAW = load_law("additive")
SCALES = Scales(n_ref=1.4e8, d_ref=2.0e9, loss_scale=3.0)
TRAIN_N = np.repeat([1e8, 2e8], 3)
TRAIN_D = TRAIN_N * np.tile([5.0, 10.0, 20.0], 2)
TARGET = (7e9, 1.5e11)
SMALL = DesignSettings(n_draws=256, n_decisions=32, threshold=0.0)


def _posterior(u: np.ndarray, sigma: float, domains=("p", "q"), target="x", gamma=None):
    """Additive-law draws that differ in the mixture shares ``u`` (shape (S, k)) and,
    when given, the exponents ``gamma``."""
    n, k = u.shape
    params = {"a": np.full(n, -2.0), "alpha": np.full(n, 0.3), "b": np.full(n, -1.5),
              "beta": np.full(n, 0.3), "m": np.full(n, np.log(0.3)), "u": u,
              "gamma": np.full((n, k), 0.5) if gamma is None else gamma,
              "E": np.full(n, 2.0)}
    return TargetPosterior(law=LAW, target=target, domains=domains, scales=SCALES,
                           params=params, noise={"sigma": np.full(n, sigma),
                                                 "nu": np.full(n, 30.0)})


def _two_types(sigma: float, n: int = 64):
    """Half the draws favour domain p, half q; both predict the same at h = (1/2, 1/2)."""
    u = np.where((np.arange(n) % 2 == 0)[:, None], [1.5, -1.5], [-1.5, 1.5])
    return {"x": _posterior(u, sigma)}


@pytest.fixture(scope="module")
def spread():
    """Three domains, shares and exponents spread, noisy runs: no run or two settle the
    decision."""
    rng = np.random.default_rng(5)
    return {t: _posterior(rng.normal(0.0, 0.7, (400, 3)), 0.03, ("p", "q", "r"), t,
                          gamma=np.exp(rng.normal(np.log(0.5), 0.4, (400, 3))))
            for t in ("p", "q")}


def test_checkpoints_follow_the_runs_schedule():
    assert checkpoint_tokens(TRAIN_N, TRAIN_D, 1e8, 1e9).tolist() == [5e8, 1e9]
    assert checkpoint_tokens(TRAIN_N, TRAIN_D, 4e8, 8e9) == pytest.approx([2e9, 4e9, 8e9])
    c = candidate_runs(jax.random.key(0), ("p", "q", "r"), TRAIN_N, TRAIN_D,
                       mixtures={"h_bayes": [0.2, 0.3, 0.5], "corner": [0.9, 0.05, 0.05]},
                       lower=np.full(3, 0.1), upper=np.full(3, 0.8), n_random=10)
    assert sorted(set(c.n_params)) == [1e8, 2e8, 4e8]  # one size up, at the runs' step
    assert "corner" not in c.origin  # outside the bounds
    assert np.all(c.weights >= 0.1 - 1e-9) and np.all(c.weights <= 0.8 + 1e-9)
    np.testing.assert_allclose(c.weights.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(np.nanmax(c.checkpoints, axis=1), c.n_tokens)
    keys = {(n, d, *np.round(h, 6)) for n, d, h in zip(c.n_params, c.n_tokens, c.weights,
                                                       strict=True)}
    assert len(keys) == len(c)  # no run twice
    assert c.cost == pytest.approx(6 * c.n_params * c.n_tokens)


def test_fantasies_are_the_predictive_summarised():
    """Each draw's fantasy has its own mean, the fit's noise at its weight, and the
    discrepancy's spread beyond the training range; summaries are centred."""
    from bayesmix.discrepancy import Discrepancy

    n = 4000
    rng = np.random.default_rng(1)
    post = _posterior(rng.normal(0.0, 0.5, (n, 2)), 0.01)
    candidates = candidate_runs(jax.random.key(0), ("p", "q"), TRAIN_N, TRAIN_D,
                                mixtures={"skewed": [0.8, 0.2]}, n_random=0, sizes_up=1)
    index = np.arange(n)
    one = candidates.take([int(np.argmax(candidates.n_tokens))])  # 4e8 to 8e9: 3 rows
    level = fantasy_summaries(jax.random.key(2), {"x": post}, one, index, {"x": 0.25})
    mu = np.log(predict(post, one)).mean(axis=1)
    # the level summary is the mean log-mu plus noise of sd sigma / sqrt(w) / sqrt(rows)
    resid = level[0, :, 0] - (mu - mu.mean())
    assert np.std(resid) == pytest.approx(0.01 / np.sqrt(0.25) / np.sqrt(3), rel=0.05)
    assert abs(level[0, :, 0].mean()) < 1e-12
    far = Discrepancy(np.log(2e8), np.log(4e9), np.array([0.05]), np.array([0.0]),
                      np.array([1.0]))
    wide = fantasy_summaries(jax.random.key(2), {"x": replace(post, discrepancy=far)}, one,
                             index, {"x": 0.25})
    extra = np.var(wide[0, :, 0] - (mu - mu.mean())) - np.var(resid)
    assert extra == pytest.approx((0.05 * np.log(2.0)) ** 2, rel=0.15)


def predict(posterior, candidates):
    from bayesmix.predict import predict_draws

    rows = candidates.mask[0]
    return predict_draws(posterior, np.full(rows.sum(), candidates.n_params[0]),
                         candidates.checkpoints[0][rows],
                         np.repeat(candidates.weights[:1], rows.sum(), axis=0))


def test_value_is_all_the_regret_or_none_on_a_known_problem():
    posteriors = _two_types(0.001)
    candidates = candidate_runs(jax.random.key(0), ("p", "q"), TRAIN_N, TRAIN_D,
                                mixtures={"uniform": [0.5, 0.5], "skewed": [0.85, 0.15]},
                                n_random=0, sizes_up=0)
    s = suggest_runs(jax.random.key(1), posteriors, *TARGET, candidates=candidates,
                     settings=SMALL)
    uniform = np.array([o == "uniform" for o in s.candidates.origin])
    assert s.regret_thinned > 1e-3
    # both types predict the same loss at the uniform mixture: worth nothing, once the
    # regression's chance gain (what uninformative runs gain) is taken off
    assert np.all(np.abs(s.gain[uniform]) < 0.02 * s.regret_thinned)
    # a skewed run tells the types apart: it removes nearly all the regret, never more
    # (the per-draw regret after it, truly 0, is estimated with noise and clipped at 0,
    # which makes the value conservative by a few per cent)
    assert np.all(s.gain[~uniform] > 0.85 * s.regret_thinned)
    assert np.all(s.gain[~uniform] <= s.regret_thinned)
    assert s.candidates.origin[s.chosen[0]] == "skewed"
    # the values are differences from decide's own objective draws
    report = decide(posteriors, *TARGET, key=jax.random.split(jax.random.key(1), 3)[0])
    assert s.expected_regret == pytest.approx(
        np.mean(report.objective["h_bayes"] - report.h_star_values))
    # negative control: noise that swamps the difference leaves most of the regret
    noisy = suggest_runs(jax.random.key(1), _two_types(3.0), *TARGET, candidates=candidates,
                         settings=SMALL)
    assert noisy.gain.max() < 0.3 * noisy.regret_thinned


def test_a_batch_is_distinct_runs_worth_at_least_the_best_single_one(spread):
    settings = DesignSettings(n_draws=400, n_decisions=48, threshold=0.0)
    s = suggest_runs(jax.random.key(2), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     batch=4, settings=settings, n_random=12)
    assert len(s.chosen) == 4 and len(set(s.chosen)) == 4
    runs = {(s.candidates.n_params[i], s.candidates.n_tokens[i],
             *np.round(s.candidates.weights[i], 6)) for i in s.chosen}
    assert len(runs) == 4
    # the batch's value, one least-squares fit on all its runs (not the greedy's
    # projections one run at a time)
    value, se = batch_value(s.fantasies, list(s.chosen))
    assert value - s.batch_chance == pytest.approx(s.batch_gain, rel=1e-7)
    assert 0 < s.batch_chance < 0.2 * s.batch_gain
    assert s.batch_gain >= s.gain.max() > 0
    assert np.all(s.marginal_gain > 0)
    # negative control: the four least valuable runs together are worth less
    worst = list(np.argsort(s.gain)[:4])
    assert batch_value(s.fantasies, worst)[0] < s.batch_gain - 3 * se
    # negative control of the stop: with runs that tell nothing (every summary noise,
    # like the uninformative runs'), none is chosen for the luck of the best of them
    blind = s.fantasies._replace(summaries=s.fantasies.null[:1].repeat(
        len(s.candidates), axis=0) + 1e-3 * np.random.default_rng(0).standard_normal(
        s.fantasies.summaries.shape))
    nothing = _greedy(blind, s.candidates.cost, 4, None, False, tuple(
        np.asarray(regrets_with_each(start_projection(blind, 1), jnp.asarray(x),
                                     jnp.asarray(blind.values), jnp.asarray(blind.optimum)))
        for x in (blind.summaries, blind.null)))
    assert nothing.chosen == ()
    # with a budget: within it, and still worth the best single run that fits it
    budget = float(np.quantile(s.candidates.cost, 0.3))
    b = suggest_runs(jax.random.key(2), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     batch=4, budget=budget, settings=settings, n_random=12)
    fits = b.candidates.cost <= budget
    assert b.candidates.cost[list(b.chosen)].sum() <= budget * (1 + 1e-12)
    assert b.batch_gain >= b.gain[fits].max()


def test_no_run_removes_more_than_the_regret_there_is():
    """A wide posterior (shares and exponents far apart, the objective's draws heavy
    tailed at the planned scale): a linear fit could promise more than the expected
    regret; the estimate is bounded by it, per run and per batch."""
    rng = np.random.default_rng(9)
    wide = {"p": _posterior(rng.normal(0.0, 2.0, (300, 3)), 0.01, ("p", "q", "r"), "p",
                            gamma=np.exp(rng.normal(np.log(0.5), 1.0, (300, 3))))}
    s = suggest_runs(jax.random.key(4), wide, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     batch=6, settings=DesignSettings(n_draws=300, n_decisions=64,
                                                      threshold=0.0), n_random=20)
    assert s.regret_thinned > 0
    assert np.all(s.gain <= s.regret_thinned + 1e-12)
    assert batch_value(s.fantasies, list(s.chosen))[0] <= s.regret_thinned + 1e-12
    assert s.batch_gain <= s.regret_thinned + 1e-12


def test_stop_rule_and_bad_settings(spread):
    s = suggest_runs(jax.random.key(3), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     settings=SMALL._replace(threshold=0.5), n_random=4)
    assert s.stop and s.chosen == () and "below the threshold" in s.reason
    assert s.to_dict()["runs"] == []
    with pytest.raises(BayesmixError, match="budget of"):
        suggest_runs(jax.random.key(3), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     budget=1.0, settings=SMALL, n_random=4)
    point = {t: TargetPosterior(p.law, p.target, p.domains, p.scales,
                                {n: v[:1] for n, v in p.params.items()})
             for t, p in spread.items()}
    with pytest.raises(BayesmixError, match="point fit"):
        suggest_runs(jax.random.key(3), point, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D)
    with pytest.raises(BayesmixError, match="batch"):
        suggest_runs(jax.random.key(3), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     batch=0)


def test_candidate_file_and_its_errors(tmp_path):
    good = tmp_path / "runs.csv"
    good.write_text("N,D,h_p,h_q,h_r\n4e8,8e9,0.2,0.3,0.5\n")
    c = read_candidates(good, ("p", "q", "r"), TRAIN_N, TRAIN_D)
    assert c.checkpoints[0].tolist() == pytest.approx([2e9, 4e9, 8e9])
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,h_p,h_q,h_r\n4e8,8e9,0.2,0.3,0.5\n-1,8e9,0.2,0.3,0.5\n")
    with pytest.raises(BayesmixError, match="N or D not a positive number in rows 2"):
        read_candidates(bad, ("p", "q", "r"), TRAIN_N, TRAIN_D)
    header = tmp_path / "header.csv"
    header.write_text("N,D,h_p,h_q,h_r\n")
    with pytest.raises(BayesmixError, match="candidate runs .*header.csv have no rows"):
        read_candidates(header, ("p", "q", "r"), TRAIN_N, TRAIN_D)
    twice = tmp_path / "twice.csv"
    twice.write_text("name,N,D,h_p,h_q,h_r\na,4e8,8e9,0.2,0.3,0.5\na,4e8,8e9,0.5,0.3,0.2\n")
    with pytest.raises(BayesmixError, match="candidate runs .*: the name 'a' is given to two"):
        read_candidates(twice, ("p", "q", "r"), TRAIN_N, TRAIN_D)


def _fake_fits(spread):
    return {t: SimpleNamespace(posterior=p, training_runs=(TRAIN_N, TRAIN_D),
                               likelihood_weight=1.0)
            for t, p in spread.items()}


def test_cli_suggest(spread, tmp_path, monkeypatch, capsys):
    import bayesmix.commands.suggest
    from bayesmix.cli import main

    fits = _fake_fits(spread)
    monkeypatch.setattr(bayesmix.commands.suggest, "_bayesian_fit", lambda path: SimpleNamespace(
        targets={t: f for t, f in fits.items() if path.endswith(t)}))
    small = ["--draws", "64", "--mixtures", "4", "--threshold", "0"]
    dirs = [str(tmp_path / t) for t in fits]
    assert main(["suggest", *dirs, "--N", "7e9", "--D", "1.5e11", "--batch", "2",
                 *small, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["runs"]) == 2 and out["stop"] is False
    assert {"N", "D", "mixture", "cost_flops", "expected_gain", "gain_per_flop",
            "reason"} <= set(out["runs"][0])
    assert main(["suggest", *dirs, "--N", "7e9", "--D", "1.5e11", *small, "--out",
                 str(tmp_path / "next")]) == 0
    printed = capsys.readouterr().out
    assert "expected regret of h_bayes" in printed and "gain/EFLOP" in printed
    table = (tmp_path / "next" / "candidates.csv").read_text().splitlines()
    assert table[0].startswith("candidate,N,D,h_p") and len(table) > 10
    assert main(["suggest", *dirs, "--N", "7e9", "--D", "1.5e11", *small,
                 "--budget", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget" in err
    assert main(["suggest", *dirs, "--N", "7e9", "--D", "1.5e11", "--confirm", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--runs" in err


def test_cli_suggest_refuses_what_is_not_a_bayesian_fit(tmp_path, capsys):
    from bayesmix.cli import main

    assert main(["suggest", str(tmp_path / "nothing"), "--N", "7e9", "--D", "1.5e11"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing" in err


@pytest.fixture(scope="module")
def batch_of_two(spread):
    """A suggested batch of two runs, and a run table of the suggestion's domains."""
    s = suggest_runs(jax.random.key(2), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     batch=2, settings=SMALL)
    table = simulate_runs(jax.random.key(3), LAW, 3, domain_names=("p", "q", "r"),
                          targets=["p", "q"], sizes=(1e8, 2e8), n_mixtures=4).table
    return s, table


def test_a_confirming_outcome_is_the_training_rows_and_the_batch(batch_of_two):
    """``suggest --confirm``'s refit table: the fit's rows, then the batch's checkpoints
    as new runs with the fantasised losses of the fitted targets only."""
    s, table = batch_of_two
    n, d, h, run = batch_rows(s)
    c = s.candidates
    assert len(n) == sum(int(c.mask[i].sum()) for i in s.chosen) and set(run) == {0, 1}
    rows = np.arange(len(table.frame)) >= 3  # a fit that did not use every row
    losses = {"p": np.linspace(2.0, 3.0, len(n))}
    grown = _with_outcome(table, rows, (n, d, h, run), losses, 0)
    new = grown.frame.iloc[-len(n):]
    assert len(grown.frame) == rows.sum() + len(n) and grown.frame.index.is_unique
    for column, values in (("N", n), ("D", d), ("loss_p", losses["p"])):
        np.testing.assert_array_equal(new[column], values)
    np.testing.assert_array_equal(new[["h_p", "h_q", "h_r"]].to_numpy(), h)
    assert new["loss_q"].isna().all()  # a target no fit holds has no fantasy
    assert not set(new["run"]) & set(table.frame["run"])
    before = np.unique(table.select(rows).target_data("p").run).size
    assert np.unique(grown.target_data("p").run).size == before + 2  # two new runs
    # without a run column, a batch run of a size and mixture already run is still
    # a run of its own
    bare = RunTable(table.frame.drop(columns="run"), table.domains, table.targets)
    same = (np.full(2, table.frame["N"].iloc[-1]), np.array([1e9, 2e9]),
            np.repeat(table.weights[-1:], 2, axis=0), np.array([0, 0]))
    grown = _with_outcome(bare, rows, same, {"p": np.array([2.5, 2.4])}, 1)
    before = np.unique(bare.select(rows).target_data("p").run).size
    assert np.unique(grown.target_data("p").run).size == before + 1
    # a loss column with no value in the fit's rows (not a target there) stays, empty
    empty = RunTable(table.frame.assign(loss_x=np.nan), table.domains, table.targets,
                     unmeasured=("x",))
    grown = _with_outcome(empty, rows, (n, d, h, run), losses, 2)
    assert grown.frame["loss_x"].isna().all() and grown.unmeasured == ("x",)


def test_fantasies_of_raw_losses_have_their_noise_in_loss_units():
    """A fit of raw losses has sigma in loss units: the fantasised log-loss spreads by
    sigma / mu around log mu; a fit of log-losses by sigma (the control)."""
    n = 4000
    logged = _posterior(np.zeros((n, 2)), 0.03)
    raw = replace(logged, likelihood="raw")
    rows = (np.array([1e8]), np.array([2e9]), np.array([[0.5, 0.5]]))
    mu = np.asarray(predict_draws(logged, *rows))[:, 0]
    tolerance = 4 / np.sqrt(2 * n)  # relative standard error of a standard deviation
    for posterior, expected in ((logged, 0.03), (raw, 0.03 / mu[0])):
        y = fantasised_log_losses(np.random.default_rng(0), posterior, *rows)[:, 0]
        assert np.std(y - np.log(mu)) == pytest.approx(expected, rel=tolerance)
    assert 0.03 / mu[0] < 0.03 * (1 - 3 * tolerance)  # the two cases are told apart
    # beyond the training range both carry the discrepancy, as predict applies it
    h = n
    term = Discrepancy(np.log(5e7), np.log(2e9), np.zeros(h), np.zeros(h), np.ones(h),
                       bias_n=np.full(h, -0.05))
    for posterior in (logged, raw):
        plain = fantasised_log_losses(np.random.default_rng(0), posterior, *rows)
        shifted = fantasised_log_losses(np.random.default_rng(0),
                                        replace(posterior, discrepancy=term), *rows)
        np.testing.assert_allclose(shifted - plain, -0.05 * np.log(2), rtol=1e-12)


def test_confirm_refuses_what_it_cannot_refit(batch_of_two):
    s, table = batch_of_two
    fake = SimpleNamespace(targets={t: SimpleNamespace(rows=np.array([10_000]))
                                    for t in ("p", "q")}, source="elsewhere.csv")
    with pytest.raises(BayesmixError, match="no run"):
        confirm_batch(jax.random.key(2), [fake], table, replace(s, chosen=()))
    with pytest.raises(BayesmixError, match="at least 1"):
        confirm_batch(jax.random.key(2), [fake], table, s, outcomes=0)
    with pytest.raises(BayesmixError, match="lack some of the suggestion's"):
        confirm_batch(jax.random.key(2), [_only(fake, "p")], table, s)
    with pytest.raises(BayesmixError, match="lacks 1 row"):
        confirm_batch(jax.random.key(2), [fake], table, s)
    other = RunTable(table.frame.rename(columns={"h_p": "h_z"}), ("z", "q", "r"),
                     table.targets, "other.csv")
    with pytest.raises(BayesmixError, match="other.csv has domains z, q, r but the fits"):
        confirm_batch(jax.random.key(2), [fake], other, s)
    with pytest.raises(BayesmixError, match="no loss column for target.s. q"):
        confirm_batch(jax.random.key(2), [fake], RunTable(
            table.frame.drop(columns="loss_q"), table.domains, ("p",)), s)


def _only(fake, *targets):
    return SimpleNamespace(targets={t: fake.targets[t] for t in targets}, source=fake.source)


def test_fantasies_carry_the_discrepancy_bias_beyond_the_training_range():
    """A learnt bias b per unit d_N^p moves the fantasised log-loss one size beyond by
    b d_N^p (and not at all inside); the spread is the noise's and the scale's."""
    n, bias, tau = 4000, -0.03, 0.01
    term = Discrepancy(np.log(2e8), np.log(4e9), np.full(n, tau), np.zeros(n),
                       np.ones(n), bias_n=np.full(n, bias))
    posterior = replace(_posterior(np.zeros((n, 2)), 0.01), discrepancy=term)
    rows = (np.array([1e8, 2e8 * np.e]), np.array([2e9, 4e9]), np.full((2, 2), 0.5))
    mu = np.asarray(predict_draws(posterior, *rows))
    y = fantasised_log_losses(np.random.default_rng(0), posterior, *rows) - np.log(mu)
    se = np.array([0.01, np.hypot(0.01, tau)]) / np.sqrt(n)  # of each column's mean
    expected = np.array([0.0, bias])  # d_N = 0 inside, 1 one e-fold beyond
    assert np.all(np.abs(y.mean(axis=0) - expected) < 4 * se)
    # negative control: the same fantasies without the bias miss it beyond
    plain = replace(posterior, discrepancy=replace(term, bias_n=np.zeros(n)))
    y0 = fantasised_log_losses(np.random.default_rng(0), plain, *rows) - np.log(mu)
    assert abs(y0.mean(axis=0)[1] - bias) > 4 * se[1]


def test_thinned_draws_fantasise_with_their_own_discrepancy_draw():
    """Draw ``index[j]`` of a thinned posterior keeps the discrepancy hyper draw it has
    in the whole posterior (``index[j] mod H``), so a fantasy and the decision value
    it is regressed on share their bias."""
    n, h = 400, 100
    bias = np.linspace(-0.05, 0.05, h)  # one bias per hyper draw, no spread
    term = Discrepancy(np.log(2e8), np.log(4e9), np.zeros(h), np.zeros(h), np.ones(h),
                       bias_n=bias)
    posterior = replace(_posterior(np.zeros((n, 2)), 1e-6), discrepancy=term)
    rows = (np.array([2e8 * np.e]), np.array([4e9]), np.full((1, 2), 0.5))  # d_N = 1
    index = np.arange(3, n, 7)
    thinned = posterior.at_draws(index)
    mu = np.asarray(predict_draws(thinned, *rows))
    y = fantasised_log_losses(np.random.default_rng(0), thinned, *rows) - np.log(mu)
    np.testing.assert_allclose(y[:, 0], bias[index % h], atol=1e-5)
    # negative control: the hyper draws by position in the thinned sample, as before
    assert np.max(np.abs(y[:, 0] - bias[np.arange(index.size) % h])) > 0.01


def test_the_batch_is_reported_on_the_draws_its_gains_were_measured_on(spread):
    s = suggest_runs(jax.random.key(2), spread, *TARGET, train_n=TRAIN_N, train_d=TRAIN_D,
                     batch=2, settings=SMALL._replace(n_draws=100), n_random=8)
    assert s.chosen and s.settings.n_draws < 400  # thinned
    # the two estimates of the regret now differ (the check below can tell them apart)
    assert abs(s.expected_regret - s.regret_thinned) > 1e-3 * s.expected_regret
    batch = s.to_dict()["batch"]
    assert batch["expected_regret_before"] == s.regret_thinned
    assert batch["expected_regret_after"] == pytest.approx(
        max(0.0, s.regret_thinned - s.batch_gain))
    share = round(100 * s.marginal_gain[0] / s.regret_thinned)
    assert f"{share:.0f} % of the expected regret in this batch" in s.run_reason(
        s.chosen[0], float(s.marginal_gain[0]))


def test_confirming_rows_are_correlated_as_the_fits_runs_are():
    """``--confirm``'s rows: the noise scale sigma with the fit's intra-run correlation,
    so that a refit's design effect reads them as it read the fit's runs."""
    from bayesmix.confirm import intra_run_correlation
    from bayesmix.model import design_effect

    runs, per_run, rho = 2000, 4, 0.5
    posterior = _posterior(np.zeros((1, 2)), 0.01)
    rows = (np.full(runs * per_run, 1e8), np.full(runs * per_run, 2e9),
            np.full((runs * per_run, 2), 0.5))
    run = np.repeat(np.arange(runs), per_run)
    mu = np.log(np.asarray(predict_draws(posterior, *rows)))[0]
    deff = {}
    for label, correlation in (("fit", rho), ("independent", 0.0)):
        y = fantasised_log_losses(np.random.default_rng(1), posterior, *rows, runs=run,
                                  correlation=correlation)[0]
        assert np.std(y - mu) == pytest.approx(0.01, rel=0.05)  # sigma itself
        deff[label] = design_effect(y - mu, run)
    # the ANOVA estimate's standard error here is about 0.05 in the design effect
    assert deff["fit"] == pytest.approx(1 + (per_run - 1) * rho, abs=0.25)
    assert deff["independent"] == pytest.approx(1.0, abs=0.1)  # negative control
    table = simulate_runs(jax.random.key(3), LAW, 2, domain_names=("p", "q"),
                          targets=["p"], sizes=(1e8, 2e8), n_mixtures=4).table
    rows_per_run = len(table.frame) / len(np.unique(table.frame["N"].astype(str)
                                                    + table.frame["h_p"].astype(str)))
    fake = SimpleNamespace(rows=table.frame.index.to_numpy(),
                           diagnostics=SimpleNamespace(design_effect=2.0))
    assert intra_run_correlation(fake, table) == pytest.approx(1 / (rows_per_run - 1))


def test_confirm_draws_its_own_keys(monkeypatch):
    """``suggest --confirm`` does not reuse the keys that chose the candidates and
    fantasised the regression's outcomes (``fold_in(key, 1)``)."""
    import bayesmix.commands.suggest as command
    import bayesmix.confirm

    seen = []
    monkeypatch.setattr(bayesmix.confirm, "confirm_batch",
                        lambda key, *a, **k: seen.append(key) or SimpleNamespace(
                            to_dict=lambda: {}))
    args = SimpleNamespace(seed=5, no_discrepancy=False, confirm=1, workers=1,
                           scheduler=None)
    command._confirmation(args, [], None, None)
    design_key = jax.random.key_data(jax.random.fold_in(jax.random.key(5), 1))
    assert not np.array_equal(jax.random.key_data(seen[0]), design_key)
    assert not np.array_equal(jax.random.key_data(seen[0]),
                              jax.random.key_data(jax.random.key(5)))
