"""Examples and the demo run, with tiny arguments."""

import importlib.util
import json
from pathlib import Path

import numpy as np

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


def test_demo_json(capsys):
    code = main(["demo", "--chains", "2", "--warmup", "60", "--draws", "60", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["true_h_star"]) == {"web", "code", "books"}
    assert abs(sum(report["h_bayes"].values()) - 1) < 1e-6
    assert np.isfinite(report["objective"]["uniform"]["median"])
