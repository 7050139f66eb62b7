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


DEMO_SEED = 0  # the demo's small settings below; the seed is fixed like every test's


def uncovered(report: dict, truth: dict[str, float]) -> list[str]:
    """Domains whose ``truth`` lies outside the report's 90 % h* interval."""
    return [d for d, s in report["h_star"].items() if not s["q05"] <= truth[d] <= s["q95"]]


@pytest.fixture(scope="module")
def demo_report():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--seed", str(DEMO_SEED), "--chains", "2", "--warmup", "60",
                     "--draws", "60", "--json"])
    assert code == 0
    return json.loads(out.getvalue())


def test_demo_json(demo_report):
    report = demo_report
    assert set(report["true_h_star"]) == {"web", "code", "books"}
    assert abs(sum(report["h_bayes"].values()) - 1) < 1e-6
    assert abs(sum(report["true_h_star"].values()) - 1) < 1e-6
    assert np.isfinite(report["objective"]["uniform"]["median"])
    # what the demo claims: the posterior's 90 % h* intervals cover the true optimum
    assert not uncovered(report, report["true_h_star"]), (report["h_star"],
                                                          report["true_h_star"])


def test_demo_coverage_check_catches_a_miss(demo_report):
    """Negative control: the same check on a truth moved out of the intervals fails.

    Weight moves from the domain with the most weight to the one with the least (still
    a mixture on the simplex), by 1.5 times the wider of their two intervals: a truth
    or intervals off by that much, as a demo with a broken truth would be, is caught.
    """
    report = demo_report
    truth = dict(report["true_h_star"])
    widths = {d: s["q95"] - s["q05"] for d, s in report["h_star"].items()}
    most, least = max(truth, key=truth.get), min(truth, key=truth.get)
    shift = 1.5 * max(widths[most], widths[least])
    moved = {**truth, most: truth[most] - shift, least: truth[least] + shift}
    assert min(moved.values()) >= 0 and abs(sum(moved.values()) - 1) < 1e-9
    assert set(uncovered(report, moved)) == {most, least}
