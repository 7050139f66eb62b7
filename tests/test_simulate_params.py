"""``simulate --params``: a truth file gives the same law on any design.

A file written by ``--truth-out`` records the reference ``(N, D)`` its sites are centred
at, so simulating from it with other ``--sizes`` gives the same losses at the runs the
two designs share; the old ``{target: {site: value}}`` file is centred at each design's
own geometric mean, which a different design moves (the negative control).
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest

from bayesmix import BayesmixError, load_law, simulate_runs
from bayesmix.cli import main
from bayesmix.simulate import design_reference

BASE = ["simulate", "--law", "additive", "--domains", "2", "--seed", "0",
        "--tokens-per-param", "10,20", "--mixtures", "5"]
SIZES = "2e7,5e7,1e8"
MORE_SIZES = "2e7,5e7,1e8,2e8"


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulate_params")
    assert main([*BASE, "--sizes", SIZES, "--out", str(root / "a.csv"),
                 "--truth-out", str(root / "truth.json")]) == 0
    return root / "truth.json"


def _simulate(params, sizes, out, capsys):
    assert main([*BASE, "--sizes", sizes, "--params", str(params), "--noise", "0",
                 "--out", str(out)]) == 0
    return pd.read_csv(out), capsys.readouterr().err


def _shared_losses(small: pd.DataFrame, large: pd.DataFrame) -> pd.DataFrame:
    keys = ["N", "D", "h_d0", "h_d1"]
    shared = small.merge(large, on=keys, suffixes=("_small", "_large"))
    assert len(shared) == len(small) > 0  # every run of the small design is in the large
    return shared


def test_truth_file_gives_the_same_law_on_another_design(truth_file, tmp_path, capsys):
    record = json.loads(truth_file.read_text())
    assert set(record) == {"law", "reference", "targets"} and record["law"] == "additive"
    assert set(record["reference"]) == {"N", "D", "loss_scale"}
    assert record["reference"]["loss_scale"] == 3.0
    small, err_small = _simulate(truth_file, SIZES, tmp_path / "s.csv", capsys)
    large, err_large = _simulate(truth_file, MORE_SIZES, tmp_path / "l.csv", capsys)
    assert "note:" not in err_small + err_large
    shared = _shared_losses(small, large)
    for target in ("d0", "d1"):
        np.testing.assert_array_equal(shared[f"loss_{target}_small"],
                                      shared[f"loss_{target}_large"])
    # negative control: the old format's sites follow each design's own centre
    old = tmp_path / "old.json"
    old.write_text(json.dumps(record["targets"]))
    small, _ = _simulate(old, SIZES, tmp_path / "os.csv", capsys)
    large, _ = _simulate(old, MORE_SIZES, tmp_path / "ol.csv", capsys)
    shared = _shared_losses(small, large)
    assert np.max(np.abs(shared["loss_d0_small"] / shared["loss_d0_large"] - 1)) > 1e-3


def test_truth_file_reproduces_the_run_table_it_came_with(truth_file, tmp_path):
    """Same design and seed: the table drawn from the prior and the one from its truth
    file are the same file."""
    again = tmp_path / "again.csv"
    assert main([*BASE, "--sizes", SIZES, "--params", str(truth_file), "--out",
                 str(again)]) == 0
    assert again.read_bytes() == (truth_file.parent / "a.csv").read_bytes()


def test_old_format_says_where_its_sites_are_centred(truth_file, tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps(json.loads(truth_file.read_text())["targets"]))
    _, err = _simulate(old, SIZES, tmp_path / "o.csv", capsys)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"note: --params {old} gives no reference")
    assert "geometric-mean N 4.642e+07 and D 6.564e+08" in lines[0]


def _edited(record: dict, field: str, value) -> dict:
    record = json.loads(json.dumps(record))
    if value is None:
        record.pop(field)
    elif field.startswith("reference."):
        record["reference"][field.split(".")[1]] = value
    else:
        record[field] = value
    return record


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("reference", None, "field 'reference' must be {N, D, loss_scale}, got None"),
    ("reference", [1, 2], "field 'reference' must be"),
    ("reference.N", "x", "field 'reference.N' must be a positive number, got 'x'"),
    ("reference.D", -1.0, "field 'reference.D' must be a positive number"),
    ("reference.loss_scale", float("inf"), "field 'reference.loss_scale' must be a positive"),
    ("targets", [1], "field 'targets': sites must map each target"),
    ("targets", {"d0": {"a": 1}}, "field 'targets': sites of target 'd0' are a; law"),
    ("targets", {"web": None}, "field 'targets': sites of target 'web' must be"),
    ("law", "joint", "field 'law' is 'joint', but this simulation's law is 'additive'"),
])
def test_bad_truth_file_one_line_exit_2(truth_file, tmp_path, capsys, field, value, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_edited(json.loads(truth_file.read_text()), field, value)))
    out = tmp_path / "x.csv"
    assert main([*BASE, "--sizes", SIZES, "--params", str(bad), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"--params {bad}: " in lines[0], lines
    assert fragment in lines[0], lines[0]
    assert not out.exists()


def test_target_not_simulated_is_refused(truth_file, tmp_path, capsys):
    record = json.loads(truth_file.read_text())
    record["targets"]["web"] = record["targets"]["d0"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    assert main([*BASE, "--sizes", SIZES, "--params", str(bad), "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert "target(s) web are not among this simulation's targets (d0, d1)" in \
        capsys.readouterr().err


def test_loss_scale_comes_from_the_file_and_a_conflict_is_refused(tmp_path, capsys):
    first = [*BASE, "--sizes", SIZES, "--loss-scale", "2", "--out", str(tmp_path / "a.csv"),
             "--truth-out", str(tmp_path / "t.json")]
    assert main(first) == 0
    again = [*BASE, "--sizes", SIZES, "--params", str(tmp_path / "t.json"), "--out",
             str(tmp_path / "b.csv"), "--truth-out", str(tmp_path / "u.json")]
    assert main(again) == 0
    assert json.loads((tmp_path / "u.json").read_text())["reference"]["loss_scale"] == 2.0
    assert main([*again, "--loss-scale", "2"]) == 0  # the same value is no conflict
    capsys.readouterr()
    assert main([*again, "--loss-scale", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bayesmix: error: --loss-scale 3 conflicts with loss_scale 2 of --params "
                   f"{tmp_path / 't.json'}; drop one"]


def test_reference_defaults_to_the_design_geometric_mean():
    law = load_law("chinchilla")
    kwargs = dict(sizes=(1e8, 4e8), tokens_per_param=(10.0, 40.0), n_mixtures=1, noise=0.0)
    table, truth = simulate_runs(jax.random.key(0), law, 1, **kwargs)
    centre = design_reference(table.frame["N"], table.frame["D"])
    np.testing.assert_allclose(centre, (2e8, 4e9), rtol=1e-12)
    same, _ = simulate_runs(jax.random.key(0), law, 1, sites=truth, reference=centre, **kwargs)
    np.testing.assert_array_equal(same.frame["loss_d0"], table.frame["loss_d0"])
    moved, _ = simulate_runs(jax.random.key(0), law, 1, sites=truth,
                             reference=(4e8, 4e9), **kwargs)
    assert not np.allclose(moved.frame["loss_d0"], table.frame["loss_d0"], rtol=1e-3)
    for bad in ((1e8,), (1e8, 0.0), (np.nan, 1e9), "ND"):
        with pytest.raises(BayesmixError, match="reference"):
            simulate_runs(jax.random.key(0), law, 1, reference=bad, **kwargs)
