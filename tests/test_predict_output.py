"""``predict --out``: the user's own columns, then the predictions.

One small simulated table in the user's own column names (with a ``note`` column)
and one baseline fit of it are made once for the module. A wide table comes back
with every column as read, in its row order, before the prediction columns; a long
table and a ratios/metrics pair, whose rows are not the file's lines, come back in
the canonical columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmix.cli import main

PREDICTED = ["d0_mean", "d0_median", "d0_q05", "d0_q25", "d0_q75", "d0_q95",
             "d0_pp_q05", "d0_pp_q25", "d0_pp_q75", "d0_pp_q95"]
USER = ["--n-col", "model_size", "--weight-cols", "w_*", "--loss-cols", "loss_*"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    """``(user's CSV, baseline directory, the canonical table as text)``."""
    root = tmp_path_factory.mktemp("predict_output")
    runs, base = root / "small.csv", root / "base"
    assert main(["simulate", "--law", "additive", "--domains", "2", "--seed", "1", "--sizes",
                 "1e8,2e8,4e8", "--tokens-per-param", "4,8,16", "--mixtures", "4", "--out",
                 str(runs)]) == 0
    assert main(["baseline", str(runs), "--law", "additive", "--target", "d0", "--out",
                 str(base), "--starts", "200", "--keep", "2"]) == 0
    canonical = pd.read_csv(runs, dtype=str, keep_default_na=False)
    user = canonical.rename(columns={"N": "model_size", "h_d0": "w_d0", "h_d1": "w_d1"})
    user.insert(1, "note", [f"seen {i}" for i in range(len(user))])
    user.loc[0, "model_size"] = "1.0e8"  # written as the user wrote it
    user.to_csv(root / "user.csv", index=False)
    return root / "user.csv", base, canonical


def _json_rows(argv: list[str], capsys) -> pd.DataFrame:
    assert main([*argv, "--json"]) == 0
    return pd.DataFrame(json.loads(capsys.readouterr().out))


def test_wide_table_keeps_the_user_columns_then_predictions(fitted, tmp_path, capsys):
    user, base, _ = fitted
    argv = ["predict", str(base), "--runs", str(user), *USER, "--where", "D > 1e9"]
    assert main([*argv, "--out", str(tmp_path / "p.csv")]) == 0
    capsys.readouterr()
    written = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    given = pd.read_csv(user, dtype=str, keep_default_na=False)
    assert list(written.columns) == [*given.columns, *PREDICTED]
    kept = given[given["D"].astype(float) > 1e9].reset_index(drop=True)
    assert 0 < len(kept) < len(given)
    pd.testing.assert_frame_equal(written[list(given.columns)], kept)  # cells and order
    # the predictions are the canonical ones (--json), row for row
    canonical = _json_rows(argv, capsys)
    assert "model_size" not in canonical and "note" not in canonical
    np.testing.assert_allclose(written[PREDICTED].astype(float), canonical[PREDICTED],
                               rtol=1e-9)


def test_a_prediction_column_replaces_an_input_column_of_its_name(fitted, tmp_path, capsys):
    user, base, _ = fitted
    frame = pd.read_csv(user, dtype=str, keep_default_na=False)
    frame["d0_median"] = "mine"
    frame.to_csv(tmp_path / "clash.csv", index=False)
    assert main(["predict", str(base), "--runs", str(tmp_path / "clash.csv"), *USER,
                 "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert f"note: the prediction columns replace input column(s) d0_median of " \
           f"{tmp_path / 'clash.csv'}" in err
    written = pd.read_csv(tmp_path / "p.csv")
    assert list(written.columns) == [*frame.columns.drop("d0_median"), *PREDICTED]
    assert written["d0_median"].dtype == float
    # negative control: no clash, no note
    assert main(["predict", str(base), "--runs", str(user), *USER,
                 "--out", str(tmp_path / "q.csv")]) == 0
    assert "replace" not in capsys.readouterr().err


def test_long_table_and_pair_give_canonical_columns(fitted, tmp_path, capsys):
    _, base, canonical = fitted
    metrics = ["N", "h_d0", "h_d1", "loss_d0", "loss_d1"]
    long = canonical.melt(id_vars=["run", "D"], value_vars=metrics, var_name="metric")
    long.rename(columns={"D": "tokens"}).to_csv(tmp_path / "long.csv", index=False)
    ratios = canonical[["run", "h_d0", "h_d1"]].drop_duplicates("run")
    ratios.to_csv(tmp_path / "ratios.csv", index=False)
    canonical.drop(columns=["h_d0", "h_d1"]).to_csv(tmp_path / "metrics.csv", index=False)
    expected = [*canonical.columns.drop("run"), "run", *PREDICTED]
    for name, source in (("long", ["--runs", str(tmp_path / "long.csv")]),
                         ("pair", ["--ratios", str(tmp_path / "ratios.csv"), "--metrics",
                                   str(tmp_path / "metrics.csv")])):
        out = tmp_path / f"{name}_predicted.csv"
        assert main(["predict", str(base), *source, "--out", str(out)]) == 0, name
        written = pd.read_csv(out)
        assert sorted(written.columns) == sorted(expected), (name, list(written.columns))
        assert len(written) == len(canonical)
    capsys.readouterr()


def test_parquet_output_has_numbers(fitted, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    user, base, _ = fitted
    out = tmp_path / "p.parquet"
    assert main(["predict", str(base), "--runs", str(user), *USER, "--out", str(out)]) == 0
    capsys.readouterr()
    written = pd.read_parquet(out)
    assert written["model_size"].dtype == float
    assert pd.api.types.is_string_dtype(written["note"])
    assert written["model_size"].iloc[0] == 1e8
