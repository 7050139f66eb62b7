"""Examples and the demo run, with tiny arguments."""

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest

from bayesmix.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_example_runs():
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLES / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(tiny=True)
    medians = [s["median"] for s in report["h_star"].values()]
    assert abs(sum(report["h_bayes"].values()) - 1) < 1e-6
    assert all(0 <= m <= 1 for m in medians)


DEMO_SEED = 0
# Long enough for the chains to mix on the demo's runs (R-hat <= 1.035 for every target at
# seed 0; with 60 + 60 draws they had not, R-hat up to 1.09, and the intervals were too
# narrow to mean anything).
DEMO_SETTINGS = ("--chains", "2", "--warmup", "300", "--draws", "300")


def uncovered(report: dict, truth: dict[str, float]) -> list[str]:
    """Domains whose ``truth`` lies outside the report's 90 % h* interval."""
    return [d for d, s in report["h_star"].items() if not s["q05"] <= truth[d] <= s["q95"]]


@pytest.fixture(scope="module")
def demo_report():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--seed", str(DEMO_SEED), *DEMO_SETTINGS, "--json"])
    assert code == 0
    return json.loads(out.getvalue())


def test_demo_json(demo_report):
    report = demo_report
    assert set(report["true_h_star"]) == {"web", "code", "books"}
    assert abs(sum(report["h_bayes"].values()) - 1) < 1e-6
    assert abs(sum(report["true_h_star"].values()) - 1) < 1e-6
    assert np.isfinite(report["objective"]["uniform"]["median"])
    assert max(d["max_rhat"] for d in report["diagnostics"].values()) < 1.05
    suggestion = report["suggestion"]  # the next runs, within one largest run's FLOPs
    assert suggestion["batch"]["cost_flops"] <= suggestion["budget_flops"] * (1 + 1e-12)
    assert len(suggestion["runs"]) <= 2 and (not suggestion["stop"] or not suggestion["runs"])


@pytest.mark.xfail(strict=True, reason=(
    "measured: at seed 0 the demo's 90 % h* intervals miss the true optimum in web "
    "(0.6654 against [0.669, 0.694]) and code (0.2323 against q95 0.2300-0.2303); the h* "
    "posterior sits about 1.9 sd from the truth along the web-code direction, 4x beyond "
    "the largest training size (issue 22, docs/calibration.md). Strict: when the demo's "
    "intervals cover the truth this test passes and the mark must go."))
def test_demo_intervals_cover_the_true_optimum(demo_report):
    """What the demo shows: its 90 % h* intervals hold the true optimum.

    One simulated study is one draw of a random event, so the tolerance is binomial: a
    calibrated posterior misses at most one of the three domains' 90 % intervals with
    probability about 0.97 (0.9^3 + 3 * 0.9^2 * 0.1 for independent domains; the weights
    are coupled by the simplex, so a miss along one direction can take two domains).
    """
    missed = uncovered(demo_report, demo_report["true_h_star"])
    assert len(missed) <= 1, (missed, demo_report["h_star"], demo_report["true_h_star"])


def _h_star_of_first_target_only() -> dict[str, float]:
    """The true optimum as a plausible bug would compute it: of the first target's true
    law alone instead of the mean over the three targets."""
    import jax

    from bayesmix.decision import decide
    from bayesmix.demo import DOMAINS, _true_posteriors
    from bayesmix.laws import load_law
    from bayesmix.simulate import simulate_runs

    key_sim, _ = jax.random.split(jax.random.key(DEMO_SEED))
    law = load_law("additive")
    table, truth = simulate_runs(key_sim, law, len(DOMAINS), domain_names=DOMAINS,
                                 n_mixtures=10, loss_scale=3.0)
    first = next(iter(truth))
    n_params = 4.0 * float(table.frame["N"].max())
    h = decide(_true_posteriors(law, table, {first: truth[first]}), n_params,
               20.0 * n_params).h_bayes
    return dict(zip(DOMAINS, np.asarray(h).tolist(), strict=True))


def test_demo_coverage_check_catches_a_wrong_truth(demo_report):
    """Negative control: the same check, against the optimum of one target's true law
    instead of the mean's, fails (so a demo whose truth were computed that way is
    caught)."""
    wrong = _h_star_of_first_target_only()
    assert max(abs(wrong[d] - demo_report["true_h_star"][d]) for d in wrong) > 0.01
    assert len(uncovered(demo_report, wrong)) >= 2
