"""The Huber baseline: recovery, trace, save/load/predict, CLI, bad inputs, a negative control."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayesmix._errors import BayesmixError
from bayesmix.baseline import BaselineResult, baseline_fit, fit_target_baseline
from bayesmix.cli import main
from bayesmix.huber import huber
from bayesmix.laws import load_law
from bayesmix.predict import predict_draws
from bayesmix.runs import load_runs, write_runs
from bayesmix.simulate import simulate_runs
from bayesmix.store import FORMAT, load_baseline, load_posteriors, save_baseline

NOISE = 2e-4  # relative noise of the simulated losses
FAST = {"n_random": 1000, "n_starts": 2, "n_hops": 3}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Additive-law runs with little noise (3 domains), as a file and a RunTable."""
    law = load_law("additive")
    table, truth = simulate_runs(jax.random.key(7), law, 3, noise=NOISE, n_mixtures=10)
    path = tmp_path_factory.mktemp("baseline") / "runs.csv"
    write_runs(table, path)
    return law, load_runs(path), truth, path


@pytest.fixture(scope="module")
def fitted(simulated):
    law, table, _, _ = simulated
    return baseline_fit(jax.random.key(0), law, table, ["d0", "d2"], **FAST)


def test_huber_matches_definition():
    r = jnp.array([0.0, 5e-4, -1e-3, 3e-3, -0.02])
    delta = 1e-3
    expected = np.mean([0.0, 0.5 * 5e-4**2, 0.5 * 1e-6, delta * (3e-3 - delta / 2),
                        delta * (0.02 - delta / 2)])
    np.testing.assert_allclose(float(huber(r, delta)), expected, rtol=1e-12)


def test_recovers_truth_on_nearly_noiseless_runs(simulated, fitted):
    law, table, truth, _ = simulated
    for target, result in fitted.items():
        assert isinstance(result, BaselineResult)
        assert result.success, result.message
        # Fitted losses are as close to the data as the noise allows.
        assert result.train_mre < 3 * NOISE
        # And to the noiseless truth, also at a larger model than any trained on.
        data = table.target_data(target)
        n_big = np.full(8, 3.2e9)
        d_big = np.geomspace(2e10, 1e11, 8)
        h_big = np.tile(data.weights[:1], (8, 1))
        predicted = predict_draws(result.to_posterior(law), n_big, d_big, h_big)[0]
        true_posterior = result.to_posterior(law)
        from bayesmix.model import law_params

        true_params = law_params(law, 3, true_posterior.scales.loss_scale,
                                 {k: jnp.asarray(v) for k, v in truth[target].items()})
        true_posterior = type(true_posterior)(
            law=law, target=target, domains=table.domains, scales=true_posterior.scales,
            params={k: np.asarray(v)[None] for k, v in true_params.items()},
        )
        # the simulator centres on the design's own geometric means, as scales_for does
        true_loss = predict_draws(true_posterior, n_big, d_big, h_big)[0]
        np.testing.assert_allclose(predicted, true_loss, rtol=0.01)
        # The loss at the reference point and the irreducible loss are well identified.
        np.testing.assert_allclose(result.sites["loss_ref"], truth[target]["loss_ref"],
                                   rtol=2e-3)
        # E trades with the mixture term's size at the uniform mixture, exp(m), when
        # the exponents are small: their sum is well identified, E alone less so.
        e_plus_m = true_params["E"] + np.exp(true_params["m"])
        np.testing.assert_allclose(result.params["E"] + np.exp(result.params["m"]),
                                   e_plus_m, rtol=0.01)
        np.testing.assert_allclose(result.params["E"], true_params["E"], atol=0.1 * e_plus_m)
        for name in ("alpha", "beta"):  # measured: within 1 % at this noise
            np.testing.assert_allclose(result.params[name], true_params[name], rtol=0.05)


def _numpy_huber(residuals: np.ndarray, delta: float) -> float:
    """The mean Huber loss, transcribed in NumPy from its definition."""
    r = np.abs(residuals)
    return float(np.mean(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta))))


def test_trace_ends_at_the_recomputed_huber_loss(simulated, fitted):
    """The trace's last value and ``huber`` equal the Huber loss recomputed from the
    reported parameters at the reported rows; the call counts add up."""
    law, table, _, _ = simulated
    for target, result in fitted.items():
        data = table.target_data(target)
        np.testing.assert_array_equal(result.rows, data.rows)
        pred = predict_draws(result.to_posterior(law), data.n_params, data.n_tokens,
                             data.weights)[0]
        recomputed = _numpy_huber(np.log(data.loss) - np.log(pred), result.delta)
        np.testing.assert_allclose(result.huber, recomputed, rtol=1e-9)
        np.testing.assert_allclose(result.trace[-1, 1], recomputed, rtol=1e-9)
        np.testing.assert_allclose(result.train_mre,
                                   np.mean(np.abs(pred - data.loss) / data.loss), rtol=1e-9)
        # negative control: the same recomputation at parameters nudged off the optimum
        nudged = dict(result.params, alpha=result.params["alpha"] * 1.01)
        off = predict_draws(type(result.to_posterior(law))(
            law=law, target=target, domains=table.domains, scales=result.scales,
            params={k: np.asarray(v)[None] for k, v in nudged.items()}),
            data.n_params, data.n_tokens, data.weights)[0]
        assert _numpy_huber(np.log(data.loss) - np.log(off), result.delta) > 1.01 * recomputed
        # counts: one L-BFGS run to start and one per hop for every start, one trace row
        # per run after the random search's, and every run evaluates at least once
        assert result.n_lbfgs_calls == FAST["n_starts"] * (FAST["n_hops"] + 1)
        assert result.trace.shape == (result.n_lbfgs_calls + 1, 2)
        np.testing.assert_array_equal(result.trace[:, 0], np.arange(result.n_lbfgs_calls + 1))
        assert result.n_evaluations >= result.n_lbfgs_calls
        assert result.trace[-1, 1] < result.trace[0, 1]  # L-BFGS improves on the search
        assert 0 < result.seconds_to_best <= result.seconds


def test_result_prints_like_optimize_result(fitted):
    text = repr(fitted["d0"])
    for name in ("huber", "train_mre", "n_lbfgs_calls", "success", "params", "natural"):
        assert f"{name}:" in text


def _assert_results_equal(a: BaselineResult, b: BaselineResult) -> None:
    import dataclasses

    for f in dataclasses.fields(BaselineResult):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert set(x) == set(y), f.name
            for name in x:
                np.testing.assert_array_equal(x[name], y[name], err_msg=f"{f.name}.{name}")
                assert np.shape(x[name]) == np.shape(y[name]), f"{f.name}.{name}"
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
            assert x.shape == y.shape and x.dtype.kind == y.dtype.kind, f.name
        else:
            assert x == y and type(x) is type(y), f.name


def test_save_load_round_trip_is_equal(simulated, fitted, tmp_path):
    law, table, _, _ = simulated
    path = save_baseline(fitted, tmp_path / "base", settings={"seed": 0}, source="runs.csv")
    assert path.name == "baseline.json"
    payload = json.loads(path.read_text())
    assert payload["format"] == FORMAT == 2 and payload["kind"] == "baseline"
    assert payload["law"] == {"name": "additive", "path": str(law.path)}
    assert payload["targets"] == ["d0", "d2"] and payload["seed"] == 0
    assert set(payload["versions"]) == {"bayesmix", "numpyro", "jax", "arviz", "scipy"}
    assert set(payload["per_target"]["d0"]["sites"]) == set(law.site_shapes(3))
    loaded = load_baseline(tmp_path / "base")
    assert list(loaded) == ["d0", "d2"]
    for target, result in loaded.items():
        _assert_results_equal(result, fitted[target])
    # negative control: the comparison catches a changed field
    import dataclasses

    with pytest.raises(AssertionError):
        _assert_results_equal(dataclasses.replace(loaded["d0"], huber=loaded["d0"].huber * 2),
                              fitted["d0"])
    posteriors = load_posteriors(tmp_path / "base")
    for target, posterior in posteriors.items():
        assert posterior.n_draws == 1 and posterior.noise is None
        direct = predict_draws(fitted[target].to_posterior(law), table.frame["N"],
                               table.frame["D"], table.weights)
        again = predict_draws(posterior, table.frame["N"], table.frame["D"], table.weights)
        np.testing.assert_allclose(again, direct, rtol=1e-12)


def test_load_refuses_other_formats(simulated, fitted, tmp_path):
    path = save_baseline(fitted, tmp_path / "base")
    payload = json.loads(path.read_text())
    payload["format"] = 1
    path.write_text(json.dumps(payload))
    with pytest.raises(BayesmixError, match="format 1") as info:
        load_baseline(tmp_path / "base")
    assert "\n" not in str(info.value) and "refit" in str(info.value)
    payload["format"] = FORMAT
    payload["kind"] = "fit"
    path.write_text(json.dumps(payload))
    with pytest.raises(BayesmixError, match="not a bayesmix baseline"):
        load_baseline(tmp_path / "base")
    with pytest.raises(BayesmixError, match="no baseline.json"):
        load_baseline(tmp_path)


def test_baseline_of_other_parameters_is_refused(fitted, tmp_path):
    """A baseline whose stored parameters are not those its law samples now (one from
    before the shares became sticks stores ``u`` instead of ``sticks``) is refused in
    one line that says to refit; the file as written loads (the control)."""
    path = save_baseline(fitted, tmp_path / "base")
    assert set(load_posteriors(tmp_path / "base")) == {"d0", "d2"}
    payload = json.loads(path.read_text())
    for entry in payload["per_target"].values():
        sticks = entry["sites"].pop("sticks")
        entry["sites"]["u"] = sticks + [0.0]
    path.write_text(json.dumps(payload))
    with pytest.raises(BayesmixError, match="samples .*sticks.* refit it") as info:
        load_posteriors(tmp_path / "base")
    assert "\n" not in str(info.value) and "stores the parameters" in str(info.value)


def test_wrong_law_fits_clearly_worse(simulated, fitted):
    """Negative control: a law without the mixture term cannot fit mixture data."""
    _, table, _, _ = simulated
    wrong = baseline_fit(jax.random.key(0), load_law("chinchilla"), table, ["d0"], **FAST)["d0"]
    right = fitted["d0"]
    # measured: about 11x the MRE and 65x the Huber loss
    assert wrong.train_mre > 5 * right.train_mre
    assert wrong.huber > 20 * right.huber


@pytest.fixture(scope="module")
def profiled(simulated, fitted):
    """d0 refit with E held 0.3 above the free optimum, and held at a negative value."""
    law, table, _, _ = simulated
    e_free = float(fitted["d0"].params["E"])
    return {
        e_free + 0.3: fit_target_baseline(jax.random.key(0), law, table, "d0",
                                          fixed={"E": e_free + 0.3},
                                          init=fitted["d0"].sites, **FAST),
        -0.5: fit_target_baseline(jax.random.key(0), law, table, "d0", fixed={"E": -0.5},
                                  **FAST),
    }


def test_fixed_parameter_is_held_and_the_rest_refit(fitted, profiled, tmp_path):
    free = fitted["d0"]
    for e, result in profiled.items():
        assert result.fixed == {"E": e}
        np.testing.assert_allclose(result.params["E"], e, atol=1e-4)
        assert result.success, result.message  # a fixed negative E is not "infeasible"
        # A point of the profile lies above the free minimum (measured: 3.8x and 2.0x) ...
        assert result.huber > 1.5 * free.huber
        # ... while the other parameters absorb the change: moving E by 0.3 alone would
        # put the predictions ~10 % off; refit, they stay within the noise.
        assert result.train_mre < 3 * NOISE
        assert "fixed:" in repr(result)
        payload = json.loads(save_baseline({"d0": result}, tmp_path / f"p{e}").read_text())
        assert payload["per_target"]["d0"]["fixed"] == {"E": e}
    # negative control: the free fit is held at nothing and prints no "fixed" line
    assert free.fixed == {} and "fixed:" not in repr(free)


def test_init_starts_from_the_given_sites(simulated, fitted):
    law, table, _, _ = simulated
    free = fitted["d0"]
    one_run = {"n_random": 1, "n_starts": 1, "n_hops": 0}  # a single L-BFGS run
    resumed = fit_target_baseline(jax.random.key(1), law, table, "d0", init=free.sites,
                                  **one_run)
    np.testing.assert_allclose(resumed.huber, free.huber, rtol=1e-6)
    # negative control: the same single run from a random draw (which on these runs may
    # reach the same optimum) needs far more evaluations than one started at the optimum
    cold = fit_target_baseline(jax.random.key(1), law, table, "d0", **one_run)
    assert cold.huber >= free.huber * (1 - 1e-6)
    assert resumed.n_evaluations * 5 < cold.n_evaluations, (resumed.n_evaluations,
                                                             cold.n_evaluations)
    with pytest.raises(BayesmixError, match="init must give the sites") as info:
        fit_target_baseline(jax.random.key(1), law, table, "d0", init={"E": 1.0}, **one_run)
    assert "\n" not in str(info.value)


def test_cli_writes_baseline_json(simulated, tmp_path, capsys):
    _, _, _, path = simulated
    out = tmp_path / "cli"
    status = main(["baseline", str(path), "--law", "additive", "--target", "d1",
                   "--out", str(out), "--starts", "500", "--keep", "2", "--hops", "2",
                   "--where", "N > 1.5e8"])
    assert status == 0
    printed = capsys.readouterr().out
    assert printed.startswith("d1: huber") and "wrote" in printed
    payload = json.loads((out / "baseline.json").read_text())
    assert payload["targets"] == ["d1"]
    assert payload["settings"]["hops"] == 2
    assert payload["settings"]["fixed"] == {} and payload["per_target"]["d1"]["fixed"] == {}
    assert payload["per_target"]["d1"]["n_rows"] == 3 * 10 * 4  # three sizes kept


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--law", "no_such_law", "--target", "d0"], "unknown law"),
        (["--law", "additive", "--target", "nope"], "target 'nope'"),
        (["--law", "additive", "--all-targets", "--hops", "-1"], "n_hops"),
        (["--law", "additive", "--target", "d0", "--fix", "foo=1"], "cannot fix 'foo'"),
        (["--law", "additive", "--target", "d0", "--fix", "E"], "--fix expects name=value"),
        (["--law", "additive", "--target", "d0", "--fix", "E=nan"], "must be finite"),
    ],
)
def test_cli_bad_inputs_exit_2_with_one_line(simulated, tmp_path, capsys, extra, needle):
    _, _, _, path = simulated
    status = main(["baseline", str(path), "--out", str(tmp_path / "x"), *extra])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
    assert not (tmp_path / "x").exists()


def test_bimix_fits_from_the_target_weight_only(tmp_path):
    law = load_law("bimix")
    table, _ = simulate_runs(jax.random.key(3), law, 2, noise=NOISE, n_mixtures=8)
    result = baseline_fit(jax.random.key(1), law, table, ["d1"], **FAST)["d1"]
    assert result.train_mre < 3 * NOISE
    assert set(result.params) == {"a", "alpha", "b", "beta"}
