"""The HTML report, its plots and the elasticities, without a NUTS fit.

Fits are built by hand: draws scattered around the parameters the runs were simulated
from, put through the same InferenceData and diagnostics code as a real fit
(:func:`fake_fit`), then saved and loaded like any fit directory. One target's chains
are pulled apart so that the report has a convergence failure to call out.
"""

import base64
import json
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pagecheck import report_problems

from bayesmix import BayesmixError
from bayesmix.cli import main
from bayesmix.decision import OptimumReport
from bayesmix.diagnostics import diagnose
from bayesmix.fit import Fit, TargetFit
from bayesmix.idata import inference_data
from bayesmix.laws import load_law
from bayesmix.model import centred_inputs, law_params, n_law_domains, scales_for, target_inputs
from bayesmix.predict import predict_draws
from bayesmix.report import SECTIONS, write_report
from bayesmix.report_inputs import read_suggestion, training_table
from bayesmix.runs import write_runs
from bayesmix.sensitivity import Elasticities, elasticities, moves_with_scale
from bayesmix.simulate import draw_law_params, simulate_runs
from bayesmix.store import load_fit, save_fit

DOMAINS = ("web", "code", "math")
PLANNED = (3e9, 6e10)
CHROMIUM = Path("/usr/bin/chromium")


# ------------------------------------------------------------------- hand-built fits


def fake_fit(law, table, sites, targets, *, chains=2, draws=400, spread=0.002, seed=0,
             stuck=(), centre=None):
    """A :class:`Fit` whose draws scatter around ``sites`` (per target), made like a
    real one from there on (InferenceData, diagnostics). Targets in ``stuck`` get
    their first chain shifted, as chains sitting in two modes. ``centre``: the run
    table the sites are centred on (``simulate_runs``'s, when ``table`` is part of it)."""
    rng = np.random.default_rng(seed)
    k = n_law_domains(law, len(table.domains))
    derived = jax.jit(jax.vmap(lambda s, scale: law_params(law, k, scale, s), (0, None)))
    means = jax.jit(jax.vmap(law.mean, (0, None, None, None)))
    out = {}
    for target in targets:
        inputs = target_inputs(law, table, target)
        if centre is not None:
            scales = scales_for(centre.target_data(target))
            centred = centred_inputs(law, scales, inputs.data.n_params, inputs.data.n_tokens,
                                     inputs.data.weights, inputs.target_index)
            inputs = replace(inputs, scales=scales, **dict(zip(("log_n", "log_d", "h"),
                                                               centred, strict=True)))
        draws_of = {}
        for name, value in sites[target].items():
            value = np.asarray(value, float)
            z = rng.normal(size=(chains, draws, *value.shape))
            draws_of[name] = value * np.exp(spread * z) if np.all(value > 0) else value + spread * z
            if target in stuck:
                draws_of[name][0] += 0.1 * np.maximum(np.abs(value), 0.1)
        flat = {n: jnp.asarray(v.reshape(chains * draws, *v.shape[2:]))
                for n, v in draws_of.items()}
        params = derived(flat, inputs.scales.loss_scale)
        mu = means(params, inputs.log_n, inputs.log_d, inputs.h)
        samples = {n: np.asarray(v).reshape(chains, draws, *np.shape(v)[1:])
                   for n, v in {**flat, **params}.items()}
        samples["mu"] = np.asarray(mu).reshape(chains, draws, -1)
        samples["sigma"] = 0.004 * np.exp(0.05 * rng.normal(size=(chains, draws)))
        samples["nu"] = 20.0 * np.exp(0.1 * rng.normal(size=(chains, draws)))
        shape = (chains, draws)
        extra = {"diverging": np.zeros(shape, bool), "num_steps": np.full(shape, 7),
                 "energy": rng.normal(size=shape), "potential_energy": rng.normal(size=shape),
                 "accept_prob": np.full(shape, 0.9), "adapt_state.step_size": np.full(shape, 0.3)}
        param_domains = (target,) if law.target_domain_only else tuple(table.domains)
        idata = inference_data(jax.random.key(seed), inputs, tuple(table.domains),
                               param_domains, samples, extra, "log")
        diagnostics, warnings = diagnose(idata, 10)
        out[target] = TargetFit(target=target, law=law, domains=tuple(table.domains),
                                scales=inputs.scales, rows=np.asarray(inputs.data.rows),
                                likelihood="log", idata=idata, param_names=list(params),
                                diagnostics=diagnostics, warnings=warnings)
    return Fit(law=law, targets=out, domains=tuple(table.domains), seed=seed,
               source=table.source)


def target_sites(law, seed, targets):
    """One prior draw of the law's sites (``E >= 0`` held), nudged for each target."""
    rng = np.random.default_rng(seed)
    base = draw_law_params(jax.random.key(seed), law, 3, 3.0)
    return {t: {n: np.asarray(v, float) * np.exp(0.05 * rng.normal(size=np.shape(v)))
                for n, v in base.items()} for t in targets}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Joint-law runs over three domains (100M-400M trained on, 800M held out); a joint
    fit of three targets (math's chains apart) and an additive fit (prior draws, a
    wrong law) of two, saved as fit directories."""
    root = tmp_path_factory.mktemp("study")
    joint, additive = load_law("joint"), load_law("additive")
    sites = target_sites(joint, 7, DOMAINS)  # an optimum inside the simplex that moves
    table, _ = simulate_runs(jax.random.key(3), joint, 3, domain_names=DOMAINS, sites=sites,
                             sizes=(1e8, 2e8, 4e8, 8e8), n_mixtures=6,
                             tokens_per_param=(5.0, 10.0, 20.0))
    train = table.select(table.frame["N"] < 5e8)
    heldout = table.select(table.frame["N"] > 5e8)
    other = target_sites(additive, 1, DOMAINS[:2])
    fits = {"joint": fake_fit(joint, train, sites, DOMAINS, stuck=("math",), centre=table),
            "additive": fake_fit(additive, train, other, DOMAINS[:2], seed=1)}
    dirs = {label: save_fit(fit, root / label) for label, fit in fits.items()}
    write_runs(heldout, root / "heldout.csv")
    return {"root": root, "train": train, "heldout": heldout, "fits": fits, "dirs": dirs}


@pytest.fixture(scope="module")
def cli_report(study):
    """``bayesmix report`` on both fits, the held-out runs and a planned scale."""
    root = study["root"]
    out = root / "report.html"
    code = main(["report", str(study["dirs"]["joint"]), str(study["dirs"]["additive"]),
                 "--heldout", str(root / "heldout.csv"), "--N", str(PLANNED[0]),
                 "--D", str(PLANNED[1]), "--draws", "64", "--out", str(out)])
    return code, out, out.read_text()


def test_report_command_writes_a_whole_self_contained_page(cli_report):
    code, out, text = cli_report
    assert code == 0
    assert report_problems(text) == []
    assert len(re.findall(r"<img ", text)) >= 12
    # the failed target is called out, with its rank plots; the others pass
    assert re.search(r'<tr class="fail"><td class="text">joint</td><td class="text">math', text)
    assert "rank plots of joint / math" in text
    assert "chains disagree" in text
    # every section opens with what to look for, and none lacked its input
    assert text.count('<p class="lead">') == len(SECTIONS)
    assert '<p class="missing">' not in text.split('id="comparison"')[0]
    # the joint law's optimum moves with scale: the path is drawn
    assert 'alt="optimal mixture along compute"' in text
    assert "computed with suggest_runs" in text
    assert "(64 draws, default candidates)" in text  # the draws used, at most the fits'
    assert "The training runs prefer joint" in text


def test_a_suggested_runs_se_is_shown_beside_its_gain_alone():
    from types import SimpleNamespace

    from bayesmix._report_sections import suggestions

    run = {"N": 1e9, "D": 2e10, "cost_flops": 1.2e20, "mixture": {"web": 0.5, "code": 0.5},
           "expected_gain": 1.12e-4, "expected_gain_alone": 3.23e-4, "gain_se": 4.2e-5,
           "gain_per_flop": 1e-24, "reason": "it moves h*"}
    payload = {"N": 3e9, "D": 6e10, "expected_regret": 1e-3, "relative_regret": 1e-3,
               "n_candidates": 9, "reason": "one run", "runs": [run],
               "batch": {"expected_gain": 1.12e-4, "gain_se": 5e-5,
                         "expected_regret_after": 8.9e-4, "cost_flops": 1.2e20}}
    html, missing = suggestions(SimpleNamespace(suggestion=payload, suggestion_source="x"))
    assert missing is None
    assert "<th>expected gain in the batch</th><th>alone ± se</th>" in html
    assert "<td>0.000112</td><td>0.000323 ± 4.2e-05</td>" in html
    # a file from before expected_gain_alone was written: the se alone
    del run["expected_gain_alone"]
    assert "<td>0.000112</td><td>± 4.2e-05</td>" in suggestions(
        SimpleNamespace(suggestion=payload, suggestion_source="x"))[0]


def test_report_check_catches_a_broken_page(cli_report):
    """Negative control: the check that passes the real page fails each broken one."""
    _, _, text = cli_report
    first = re.search(r'src="data:image/png;base64,([^"]+)"', text)
    not_png = base64.b64encode(b"GIF89a" + b"\0" * 300).decode()
    broken = {
        "no section 'Interaction matrix'": text.replace("Interaction matrix</h2>",
                                                        "Interactions</h2>"),
        "image 0 does not decode to a PNG": text.replace(first.group(1), not_png, 1),
        "image 0 is not valid base64": text.replace(first.group(1), first.group(1)[:41], 1),
        "image 0 is not an embedded PNG": text.replace('src="data:image/png;base64,',
                                                       'src="https://example.org/x.png?', 1),
        "reference outside the page: '//cdn": text.replace(
            "<head>", '<head><link rel="stylesheet" href="//cdn.example.org/a.css">'),
    }
    for problem, page in broken.items():
        found = report_problems(page)
        assert found and found[0].startswith(problem), (problem, found)


# skipped on a machine without Chromium, but not in CI (.ci/run installs it and sets
# BAYESMIX_REQUIRE_CHROMIUM, so that a missing browser fails the run instead)
@pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("BAYESMIX_REQUIRE_CHROMIUM"),
                    reason="no /usr/bin/chromium to render the page (apt-get install chromium)")
def test_report_renders_in_headless_chromium(cli_report, tmp_path):
    from PIL import Image

    _, out, _ = cli_report
    png = tmp_path / "report.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         "--window-size=1200,3000", out.resolve().as_uri()],
        check=True, capture_output=True, timeout=120)
    assert png.stat().st_size > 50_000
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[:2] == (3000, 1200)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # text, plots and colours
    dark = (image.sum(axis=2) < 300).mean(axis=1)  # share of dark pixels per pixel row
    assert (dark[:1000] > 0).mean() > 0.2 and (dark[2000:] > 0).mean() > 0.2


@pytest.mark.parametrize("args, message", [
    (["no/such/fit"], "fit directory no/such/fit does not exist"),
    (["{joint}", "--optimum", "{root}/bad"], "bad.optimum.json"),
    (["{joint}", "--suggest", "{root}/bad"], "bad.suggestion.json"),
    (["{joint}", "--N", "3e9"], "--N and --D together"),
    (["{joint}", "--optimum", "{root}/bad", "--N", "3e9", "--D", "6e10"], "not both"),
    (["{joint}", "--baseline", "{root}/bad"], "bad is not a fit directory"),
])
def test_report_command_bad_input_is_one_line_and_exit_2(study, capsys, args, message):
    root = study["root"]
    (root / "bad").mkdir(exist_ok=True)
    (root / "bad" / "optimum.json").write_text("{not json")
    (root / "bad" / "suggestion.json").write_text("[1, 2]")
    args = [a.format(joint=study["dirs"]["joint"], root=root) for a in args]
    assert main(["report", *args, "--out", str(root / "never.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bayesmix: error: ")
    assert re.search(message, err), err
    assert not (root / "never.html").exists()


# --------------------------------------------------------------- the Python API


def test_sections_without_their_input_say_so(study, tmp_path):
    import matplotlib.pyplot as plt

    suggestion = {"N": 3e9, "D": 6e10, "h_bayes": dict.fromkeys(DOMAINS, 1 / 3),
                  "expected_regret": 0.004, "predicted_objective": 2.4,
                  "relative_regret": 0.004 / 2.4, "threshold": 0.001, "stop": False,
                  "reason": "a run at 800M tells the laws apart", "budget_flops": None,
                  "runs": [{"N": 8e8, "D": 1.6e10, "mixture": dict.fromkeys(DOMAINS, 1 / 3),
                            "checkpoints": [4e9, 8e9, 1.6e10], "cost_flops": 7.7e19,
                            "expected_gain": 0.003, "expected_gain_alone": 0.003,
                            "gain_se": 0.0004, "gain_per_flop": 0.003 / 7.7e19,
                            "reason": "2x the largest size run so far"}],
                  "batch": {"expected_gain": 0.003, "gain_se": 0.0004,
                            "expected_regret_after": 0.001, "cost_flops": 7.7e19},
                  "n_candidates": 10, "settings": {}}
    (tmp_path / "suggested").mkdir()
    (tmp_path / "suggested" / "suggestion.json").write_text(json.dumps(suggestion))
    fits = {"joint": load_fit(study["dirs"]["joint"])}
    report = write_report(tmp_path / "r.html", fits, suggestion=tmp_path / "suggested")
    text = report.path.read_text()
    assert set(report.missing) == {"Calibration at held-out runs", "Interaction matrix",
                                   "The optimal mixture h*", "h*(N, D) along a compute path",
                                   "Predicted loss at the planned scale"}
    for sentence in report.missing.values():
        assert sentence in text
    assert report_problems(text) == []  # every heading is still there
    assert "2x the largest size run so far" in text and report.decision_source is None
    assert "suggested/suggestion.json" in report.suggestion_source
    assert plt.get_fignums() == []  # no figure left open
    with pytest.raises(BayesmixError, match="no runs or reason"):
        read_suggestion(_write(tmp_path / "bad", "suggestion.json", {"runs": 3}))


def test_an_optimize_directory_is_recomputed_and_checked(study, tmp_path):
    from bayesmix.decision import decide
    from bayesmix.report_inputs import read_optimum

    posteriors = _thinned(study)  # 100 draws
    made = decide(posteriors, *PLANNED, target_weights={"web": 0.7, "code": 0.3},
                  lower=np.full(3, 0.05), upper=np.full(3, 0.8),
                  references={"uniform": np.full(3, 1 / 3), "skewed": [0.7, 0.2, 0.1]})
    payload = {**made.to_dict(), "path": _path()}
    stored = read_optimum(_write(tmp_path / "opt", "optimum.json", payload), posteriors)
    np.testing.assert_allclose(stored.report.h_bayes, made.h_bayes, atol=1e-9)
    np.testing.assert_allclose(stored.report.objective["skewed"], made.objective["skewed"])
    np.testing.assert_array_equal(stored.report.upper, made.upper)
    assert stored.report.target_weights == made.target_weights and stored.path == _path()
    # coupled as optimize made it: by default; not with --independent-targets, nor for a
    # file from before the coupling (no cross_target)
    assert made.coupling is not None and stored.report.coupling.factors == made.coupling.factors
    alone = {**payload, "cross_target": {**payload["cross_target"], "disabled": True}}
    assert read_optimum(_write(tmp_path / "alone", "optimum.json", alone),
                        posteriors).report.coupling is None
    legacy = {k: v for k, v in payload.items() if k != "cross_target"}
    assert read_optimum(_write(tmp_path / "legacy", "optimum.json", legacy),
                        posteriors).report.coupling is None
    # negative control: an optimum.json whose h_bayes these fits do not give is refused
    payload["h_bayes"] = {d: w + (0.01 if d == "web" else -0.005)
                          for d, w in payload["h_bayes"].items()}
    with pytest.raises(BayesmixError, match="not made from these fits"):
        read_optimum(_write(tmp_path / "other", "optimum.json", payload), posteriors)


def _with_terms(posteriors, n_max=4e8, d_max=8e9):
    """``posteriors`` with discrepancy terms beyond ``(n_max, d_max)`` whose biases
    differ by target, so that they reweigh the targets at ``PLANNED``."""
    from bayesmix.discrepancy import Discrepancy

    out = {}
    for i, (t, p) in enumerate(posteriors.items()):
        h = p.n_draws
        term = Discrepancy(np.log(n_max), np.log(d_max), np.full(h, 0.02 + 0.03 * i),
                           np.full(h, 0.01), np.ones(h), folds=("test",),
                           bias_n=np.full(h, -0.2 + 0.4 * i))
        out[t] = replace(p, discrepancy=term)
    return out


def _thinned(study, label="additive", every=8):
    return {t: replace(p, params={n: v[::every] for n, v in p.params.items()},
                       noise={n: v[::every] for n, v in p.noise.items()})
            for t, p in study["fits"][label].posteriors.items()}


def test_an_optimize_file_is_recomputed_with_its_seed_and_discrepancy(study, tmp_path):
    from bayesmix.decision import decide
    from bayesmix.predict import law_only
    from bayesmix.report_inputs import H_BAYES_TOL, read_optimum

    posteriors = _with_terms(_thinned(study))
    weights = {"web": 0.5, "code": 0.5}
    uniform = {"uniform": np.full(3, 1 / 3)}
    made = decide(posteriors, *PLANNED, target_weights=weights, references=uniform,
                  key=jax.random.key(5))
    payload = {**made.to_dict(), "seed": 5, "discrepancy": True}
    stored = read_optimum(_write(tmp_path / "seeded", "optimum.json", payload), posteriors)
    np.testing.assert_array_equal(stored.report.objective["uniform"],
                                  made.objective["uniform"])
    # negative control: without the seed the default key draws other factors
    unseeded = {k: v for k, v in payload.items() if k != "seed"}
    other = read_optimum(_write(tmp_path / "unseeded", "optimum.json", unseeded), posteriors)
    assert not np.allclose(other.report.objective["uniform"], made.objective["uniform"])
    # made with --no-discrepancy: recomputed on the law alone, where h_bayes differs
    alone = decide(law_only(posteriors), *PLANNED, target_weights=weights,
                   references=uniform, key=jax.random.key(5))
    assert np.max(np.abs(alone.h_bayes - made.h_bayes)) > 2 * H_BAYES_TOL  # has power
    plain = {**alone.to_dict(), "seed": 5, "discrepancy": False}
    stored = read_optimum(_write(tmp_path / "plain", "optimum.json", plain), posteriors)
    np.testing.assert_allclose(stored.report.h_bayes, alone.h_bayes, atol=1e-9)
    assert stored.discrepancy is False
    # the report says so, and its path is drawn from the posteriors the decision used
    from bayesmix.report import _decision

    *_, source, _, decided = _decision(posteriors, jax.random.key(0), None, None, None, None,
                                       tmp_path / "plain", None)
    assert source.endswith("without their discrepancy terms (--no-discrepancy)")
    assert all(p.discrepancy is None for p in decided.values())
    assert all(p.discrepancy is not None for p in _decision(
        posteriors, jax.random.key(0), None, None, None, None, tmp_path / "seeded",
        None)[3].values())
    with pytest.raises(BayesmixError, match="not made from these fits"):  # as before
        read_optimum(_write(tmp_path / "unmarked", "optimum.json",
                            {k: v for k, v in plain.items() if k != "discrepancy"}),
                     posteriors)
    with pytest.raises(BayesmixError, match="discrepancy is 'no'"):
        read_optimum(_write(tmp_path / "bad", "optimum.json", {**plain, "discrepancy": "no"}),
                     posteriors)


def test_suggest_makes_the_decision_optimize_makes_at_the_same_seed(study):
    from bayesmix.decision import decide
    from bayesmix.design import DesignSettings, suggest_runs

    posteriors = _with_terms(_thinned(study))  # 100 draws: fewer than asked for
    train = study["train"].frame

    def suggested(seed):
        return suggest_runs(jax.random.key(seed), posteriors, *PLANNED,
                            train_n=train["N"], train_d=train["D"], n_random=4,
                            settings=DesignSettings(n_draws=400, n_decisions=8))

    made = decide(posteriors, *PLANNED, key=jax.random.key(3))
    found = suggested(3)
    assert found.expected_regret == pytest.approx(made.expected_regret(), rel=1e-12)
    assert found.predicted_objective == pytest.approx(
        float(np.median(made.objective["h_bayes"])), rel=1e-12)
    assert found.settings.n_draws == 100 == found.to_dict()["settings"]["n_draws"]
    assert suggested(4).expected_regret != pytest.approx(found.expected_regret, rel=1e-9)


def test_the_path_is_drawn_where_the_discrepancy_reweighs_the_targets(study):
    from bayesmix.objective import mixture_objective
    from bayesmix.sensitivity import reweights_along

    grid_n, grid_d = [2e8, 1e9, 5e9], [4e9, 2e10, 1e11]
    posteriors = _thinned(study)
    assert not reweights_along(mixture_objective(posteriors), grid_n, grid_d)
    with_terms = _with_terms(posteriors)
    assert reweights_along(mixture_objective(with_terms), grid_n, grid_d)
    # one target: a factor cannot reorder mixtures; inside the training range: no term
    assert not reweights_along(mixture_objective({"web": with_terms["web"]}), grid_n, grid_d)
    assert not reweights_along(mixture_objective(with_terms), [1e8, 2e8], [2e9, 4e9])


def _write(directory, name, payload):
    directory.mkdir()
    (directory / name).write_text(json.dumps(payload))
    return directory


def test_training_table_is_the_runs_the_fits_saw(study):
    fits = study["fits"]
    table = training_table(fits)
    train = study["train"]
    assert len(table.frame) == len(train.frame)
    assert table.domains == DOMAINS and set(table.targets) == set(DOMAINS)
    np.testing.assert_allclose(table.frame["loss_math"], train.frame["loss_math"], rtol=1e-12)
    np.testing.assert_allclose(table.weights, train.weights)


# ------------------------------------------------------------------ elasticities


def _one_draw(posterior, s):
    return replace(posterior, params={n: v[s:s + 1] for n, v in posterior.params.items()},
                   noise=None)


@pytest.mark.parametrize("label", ["joint", "additive"])
def test_elasticities_match_finite_differences_of_the_law(study, label):
    posteriors = study["fits"][label].posteriors
    h = np.array([0.5, 0.2, 0.3])
    e = elasticities(posteriors, *PLANNED, h)
    assert e.draws.shape == (800, len(posteriors), 3) and e.targets == tuple(posteriors)
    s, eps = 17, 1e-6
    for t, posterior in enumerate(posteriors.values()):
        one = _one_draw(posterior, s)
        fd = []
        for i in range(3):
            up, down = h.copy(), h.copy()
            up[i] *= 1 + eps
            down[i] *= 1 - eps
            losses = predict_draws(one, [PLANNED[0]] * 2, [PLANNED[1]] * 2, np.stack([up, down]))
            fd.append((np.log(losses[0, 0]) - np.log(losses[0, 1])) / (2 * eps))
        np.testing.assert_allclose(e.draws[s, t], fd, rtol=1e-5, atol=1e-9)
        # negative control: the plain gradient (no factor h_i) is not the elasticity
        assert not np.allclose(e.draws[s, t] / h, fd, rtol=1e-2)


def test_elasticity_summaries_and_bad_mixtures(study):
    draws = np.random.default_rng(0).normal([0.3, 0.0], 0.05, (1000, 1, 2))
    e = Elasticities(("t",), ("p", "q"), 1e9, 2e10, np.array([0.5, 0.5]), draws)
    assert e.excludes_zero().tolist() == [[True, False]]
    assert e.median[0, 0] == pytest.approx(0.3, abs=0.01)
    posteriors = study["fits"]["joint"].posteriors
    for bad in ([0.7, 0.7, 0.7], [0.5, 0.5], [1.2, -0.1, -0.1]):
        with pytest.raises(BayesmixError, match="simplex"):
            elasticities(posteriors, 1e9, 2e10, bad)


def test_scale_dependence_tells_the_joint_law_from_the_additive(study):
    from bayesmix.objective import mixture_objective

    uniform = np.full(3, 1 / 3)
    mixtures = [uniform, np.array([0.6, 0.3, 0.1])]
    joint = mixture_objective(study["fits"]["joint"].posteriors)
    additive = mixture_objective(study["fits"]["additive"].posteriors)
    assert moves_with_scale(joint, *PLANNED, mixtures)
    assert not moves_with_scale(additive, *PLANNED, mixtures)


# ------------------------------------------------------------------------- plots


@pytest.fixture(scope="module")
def decision():
    """An OptimumReport made by hand: h* draws around (0.5, 0.3, 0.2)."""
    rng = np.random.default_rng(0)
    draws = rng.dirichlet([50, 30, 20], 400)
    base = 2.5 + 0.02 * rng.normal(size=400)
    return OptimumReport(
        domains=DOMAINS, n_params=PLANNED[0], n_tokens=PLANNED[1],
        target_weights={"web": 1.0}, lower=np.zeros(3), upper=np.ones(3), h_star_draws=draws,
        h_star_values=base - 0.001, h_bayes=np.array([0.5, 0.3, 0.2]),
        objective={"h_bayes": base, "uniform": base + 0.01 + 0.005 * rng.normal(size=400)},
        mixtures={"h_bayes": np.array([0.5, 0.3, 0.2]), "uniform": np.full(3, 1 / 3)},
        converged=1.0, max_gap=1e-10, bayes_converged=True)


def _path():
    return [{"N": n, "D": 20 * n, "h_bayes": {"web": w, "code": 0.3, "math": 0.7 - w},
             "h_star": {d: {"mean": v, "median": v, "q05": v - 0.05, "q95": v + 0.05}
                        for d, v in (("web", w), ("code", 0.3), ("math", 0.7 - w))}}
            for n, w in ((1e8, 0.3), (1e9, 0.4), (1e10, 0.5))]


def _plots(study, decision):
    from bayesmix import decision_plots as dp
    from bayesmix import plots

    train, heldout = study["train"], study["heldout"]
    fit = study["fits"]["joint"]
    e = Elasticities(DOMAINS, DOMAINS, *PLANNED, decision.h_bayes,
                     np.random.default_rng(1).normal(0.05, 0.03, (100, 3, 3)))
    return {
        "runs": lambda ax: plots.plot_runs(train, ax, heldout=heldout, target=PLANNED),
        "mixtures": lambda ax: plots.plot_mixtures(train, ax, heldout=heldout),
        "forest": lambda ax: plots.plot_forest(fit.posteriors, ax),
        "rank": lambda ax: plots.plot_rank(fit.targets["math"].idata, ["m", "u[web]"],
                                           ax=[ax, ax.figure.add_subplot(2, 2, 4)]),
        "observed": lambda ax: plots.plot_observed_vs_predicted(
            jax.random.key(0), fit.targets["web"].posterior, train, ax, heldout=heldout),
        "elasticities": lambda ax: dp.plot_elasticities(e, ax),
        "optimum": lambda ax: dp.plot_optimum(decision, ax),
        "ternary": lambda ax: dp.plot_ternary(decision, ax, runs=train.weights),
        "path": lambda ax: dp.plot_optimum_path(_path(), ax, planned=PLANNED),
        "objective": lambda ax: dp.plot_objective(decision, ax),
    }


def test_each_plot_draws_on_the_axes_given_and_returns_its_figure(study, decision):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, draw in _plots(study, decision).items():
        fig, axes = plt.subplots(2, 2)
        ax = axes[0, 1]
        assert draw(ax) is fig, name
        drawn = ax.lines or ax.collections or ax.patches or ax.images
        assert drawn, f"{name} drew nothing on the axes it was given"
        assert not (axes[0, 0].lines or axes[0, 0].collections), name  # only on its own
        plt.close(fig)
    assert plt.get_fignums() == []
    with pytest.raises(BayesmixError, match="3 domains"):
        from bayesmix.decision_plots import plot_ternary

        plot_ternary(replace(decision, domains=("a", "b")))
