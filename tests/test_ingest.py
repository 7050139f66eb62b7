"""Runs as they come: Olmix's pair of files and long tables load like the wide file."""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmix import BayesmixError, load_runs, runs_summary
from bayesmix.cli import build_parser, main
from bayesmix.commands.common import has_table, table_from_args
from bayesmix.runs import run_index

PAPER_FILE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "dmsl_slimpajama"
              / "dmsl_llm_slimpajama.csv")
# the options the README shows for the paper's file
PAPER_ARGS = ["--n-col", "model_size", "--d-col", "n_tokens", "--weight-cols", "weight_*",
              "--loss-cols", "*_loss"]


# ------------------------------------------------------------ building the layouts


def read_cells(path):
    """A wide CSV as text, so that the other layouts carry the very same cells."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def split_pair(wide, weights, run="run"):
    """Olmix's layout: ``(ratios, metrics)``, one row per run and one per checkpoint."""
    ratios = wide.drop_duplicates(run)[[run, *weights]]
    return ratios, wide.drop(columns=weights)


def to_long(wide, d_col, run="run", per_run=(), tokens_per_step=None):
    """One row per (run, tokens, metric, value), checkpoint after checkpoint.

    Empty cells are left out, as a logger would; the metrics in ``per_run`` get one
    row per run with an empty tokens cell. With ``tokens_per_step``, a ``step``
    column (D / T) stands for ``tokens``.
    """
    long = wide.melt(id_vars=[run, d_col], var_name="metric", value_name="value",
                     ignore_index=False)
    long = long[long["value"].astype(str) != ""].sort_index(kind="stable")
    once = long["metric"].isin(per_run)
    runs = long[once].drop_duplicates([run, "metric"]).assign(**{d_col: ""})
    long = pd.concat([runs, long[~once]]).rename(columns={d_col: "tokens"})
    if tokens_per_step is not None:
        step = [s if s == "" else f"{float(s) / tokens_per_step:.0f}" for s in long["tokens"]]
        long = long.drop(columns="tokens").assign(step=step)
    return long.reset_index(drop=True)


def write(frame, path):
    frame.to_csv(path, index=False)
    return str(path)


def cli(argv, capsys):
    """Exit code, stdout and stderr of ``bayesmix argv`` (usage errors included)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def differences(table, reference):
    """What tells two loads apart: the summary (but its source) and the frame's values."""
    found = []
    mine, theirs = runs_summary(table), runs_summary(reference)
    found += [key for key in theirs if key != "source" and mine[key] != theirs[key]]
    columns = [c for c in reference.frame.columns if c != "run"]
    if list(table.frame.columns.drop("run", errors="ignore")) != columns:
        return [*found, "columns"]
    if not np.array_equal(table.frame[columns].to_numpy(float),
                          reference.frame[columns].to_numpy(float), equal_nan=True):
        found.append("frame values")
    for target in reference.targets:  # the same runs, whether from ids or from (N, h)
        if not np.array_equal(table.target_data(target).run, reference.target_data(target).run):
            found.append(f"runs of {target}")
    return found


# ---------------------------------------------------------------- simulated runs


@pytest.fixture(scope="module")
def layouts(additive_runs, tmp_path_factory):
    """The simulated runs as files in every layout, and their wide table."""
    path, table, _ = additive_runs
    wide = read_cells(path)
    weights = [c for c in wide.columns if c.startswith("h_")]
    ratios, metrics = split_pair(wide, weights)
    tmp = tmp_path_factory.mktemp("layouts")
    return {
        "wide": [str(path)],
        "pair": ["--ratios", write(ratios, tmp / "ratios.csv"),
                 "--metrics", write(metrics, tmp / "metrics.csv")],
        "long": [write(to_long(wide, "D"), tmp / "long.csv")],
        "long per run": [write(to_long(wide, "D", per_run=("N", *weights)),
                               tmp / "long_per_run.csv")],
        "long steps": [write(to_long(wide, "D", tokens_per_step=1e8), tmp / "steps.csv"),
                       "--tokens-per-step", "1e8"],
        "pair of long": ["--ratios", str(tmp / "ratios.csv"), "--metrics",
                         write(to_long(metrics, "D"), tmp / "metrics_long.csv")],
    }, load_runs(path)


@pytest.mark.parametrize("layout", ["pair", "long", "long per run", "long steps",
                                    "pair of long"])
def test_simulated_runs_summarise_alike_in_every_layout(layout, layouts, capsys):
    files, wide = layouts
    outputs = []
    for argv in (files["wide"], files[layout]):
        code, text, err = cli(["runs", *argv], capsys)
        assert code == 0, err
        code, raw, err = cli(["runs", *argv, "--json"], capsys)
        assert code == 0, err
        outputs.append((text.splitlines()[1:], {**json.loads(raw), "source": None}))
    assert outputs[0] == outputs[1]  # the same summary, all but the source's name
    args = build_parser().parse_args(["runs", *files[layout]])
    assert differences(table_from_args(args), wide) == []
    assert differences(table_from_args(args), wide.select("N > 2e8")) != []  # the check bites


def test_frames_load_like_files(layouts, additive_runs):
    _, wide = layouts
    frame = additive_runs[1].frame.reset_index(drop=True)
    weights = [f"h_{d}" for d in additive_runs[1].domains]
    ratios, metrics = split_pair(frame, weights)
    pair = load_runs(ratios=ratios, metrics=metrics)
    assert pair.source == "<metrics DataFrame> (joined with <ratios DataFrame> on 'run')"
    pd.testing.assert_frame_equal(pair.frame, wide.frame)  # rows numbered as in metrics
    long = load_runs(to_long(frame, "D"))
    assert differences(long, wide) == []
    assert list(long.frame.index[:2]) == [1, 1 + 7]  # a checkpoint's first line: 7 metrics
    np.testing.assert_array_equal(long.frame["run"], wide.frame["run"])


def test_where_and_run_col_apply_to_every_layout(additive_runs):
    frame = additive_runs[1].frame.reset_index(drop=True).rename(columns={"run": "id"})
    weights = [f"h_{d}" for d in additive_runs[1].domains]
    wide = load_runs(frame, run_col="id", where="N > 2e8")
    ratios, metrics = split_pair(frame, weights, run="id")
    for table in (load_runs(ratios=ratios, metrics=metrics, run_col="id", where="N > 2e8"),
                  load_runs(to_long(frame, "D", run="id"), run_col="id", where="N > 2e8")):
        assert differences(table, wide) == [] and len(table.frame) == len(wide.frame) == 96


def test_swapped_join_is_caught(additive_runs):
    """Negative control: ratios rows given to the wrong runs load, but not alike."""
    table = additive_runs[1]
    frame = table.frame.reset_index(drop=True)
    weights = [f"h_{d}" for d in table.domains]
    ratios, metrics = split_pair(frame, weights)
    swapped = ratios.assign(run=np.roll(ratios["run"].to_numpy(), 1))
    loaded = load_runs(ratios=swapped, metrics=metrics)  # valid weights: nothing to refuse
    assert "frame values" in differences(loaded, table)
    assert differences(load_runs(ratios=ratios, metrics=metrics), table) == []
    # a long table whose first run's first two checkpoints trade tokens: pivots, not alike
    long = to_long(frame, "D")
    assert frame.at[0, "run"] == frame.at[1, "run"]
    mine = long["run"] == frame.at[0, "run"]
    swap = {frame.at[0, "D"]: frame.at[1, "D"], frame.at[1, "D"]: frame.at[0, "D"]}
    long.loc[mine, "tokens"] = long.loc[mine, "tokens"].replace(swap)
    assert "frame values" in differences(load_runs(long), table)


# --------------------------------------------------------------- the paper's runs


@pytest.mark.skipif(not PAPER_FILE.exists(), reason=f"{PAPER_FILE} is not here")
def test_paper_runs_load_alike_from_the_pair_and_a_long_table(tmp_path, capsys):
    """The issue's acceptance check: the same ``bayesmix runs`` summary from each layout."""
    wide = read_cells(PAPER_FILE)
    weights = [c for c in wide.columns if c.startswith("weight_")]
    numbers = wide[["model_size", *weights]].astype(float)
    run = run_index(numbers["model_size"], numbers[weights].to_numpy())
    wide.insert(0, "run", [f"r{i}" for i in run])
    ratios, metrics = split_pair(wide, weights)
    assert len(ratios) == run.max() + 1 < len(metrics) == len(wide)
    pair = ["--ratios", write(ratios, tmp_path / "ratios.csv"),
            "--metrics", write(metrics, tmp_path / "metrics.csv")]
    long = to_long(wide, "n_tokens", per_run=("model_size", *weights))
    assert (long["tokens"] == "").sum() == len(ratios) * 8  # N and 7 weights once a run
    outputs, tables = [], []
    for argv in ([str(PAPER_FILE)], pair, [write(long, tmp_path / "long.csv")]):
        code, text, err = cli(["runs", *argv, *PAPER_ARGS], capsys)
        assert code == 0, err
        outputs.append(text.splitlines()[1:])
        tables.append(table_from_args(build_parser().parse_args(["runs", *argv, *PAPER_ARGS])))
    assert outputs[0] == outputs[1] == outputs[2]
    assert differences(tables[1], tables[0]) == differences(tables[2], tables[0]) == []
    assert outputs[0][0] == "rows:               2452"


# ------------------------------------------------------------------ the commands


def test_every_command_that_reads_runs_takes_the_pair(layouts):
    files, wide = layouts
    parser = build_parser()
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    readers = {name for name, sub in commands.items()
               if any("--n-col" in a.option_strings for a in sub._actions)}
    assert {"runs", "fit", "baseline", "predict", "compare", "suggest"} <= readers
    assert all(any("--ratios" in a.option_strings for a in commands[name]._actions)
               for name in readers)
    extra = {"fit": ["--law", "additive", "--all-targets", "--out", "x"],
             "baseline": ["--law", "additive", "--all-targets", "--out", "x"],
             "predict": ["fitdir", "--json"], "compare": ["fitdir"],
             "report": ["fitdir", "--out", "x.html"],
             "suggest": ["fitdir", "--N", "7e9", "--D", "1.5e11", "--confirm", "2"]}
    for name in readers:
        args = parser.parse_args([name, *files["pair"], *extra.get(name, [])])
        assert has_table(args)
        assert differences(table_from_args(args), wide) == [], name
    heldout_only = parser.parse_args(["compare", "fitdir", "--runs", files["wide"][0]])
    assert not has_table(heldout_only)  # compare's --runs is the --cv training table


# ------------------------------------------------------------------- bad input


def tiny():
    """Two runs at two checkpoints, two domains, one target."""
    return pd.DataFrame({
        "run": ["r1", "r1", "r2", "r2"], "N": [1e8, 1e8, 2e8, 2e8], "D": [1e9, 2e9, 1e9, 2e9],
        "h_a": [0.5, 0.5, 0.2, 0.2], "h_b": [0.5, 0.5, 0.8, 0.8],
        "loss_a": [3.1, 3.0, 2.9, 2.8],
    })


def tiny_pair(ratios=lambda r: r, metrics=lambda m: m):
    def write_pair(tmp):
        r, m = split_pair(tiny(), ["h_a", "h_b"])
        return ["--ratios", write(ratios(r), tmp / "ratios.csv"),
                "--metrics", write(metrics(m), tmp / "metrics.csv")]
    return write_pair


def tiny_long(change=lambda f: f, *extra, **kwargs):
    """The long table: lines 1-4 are r1's first checkpoint (N, h_a, h_b, loss_a)."""
    return lambda tmp: [write(change(to_long(tiny(), "D", **kwargs)), tmp / "long.csv"), *extra]


def more_runs(metrics):
    extra = pd.DataFrame({"run": [f"x{i}" for i in range(8)], "N": 1e8, "D": 1e9,
                          "loss_a": 3.0})
    return pd.concat([metrics, extra])


# Each bad input: (the arguments after `bayesmix runs`, a fragment of the one-line message)
BAD = {
    "id in ratios only": (tiny_pair(ratios=lambda r: pd.concat(
        [r, r.iloc[[0]].assign(run="r9")])),
        r"run id\(s\) r9 of ratios file \S+ratios.csv are not in metrics file \S+metrics.csv"),
    "ids in metrics only": (tiny_pair(metrics=more_runs),
                            r"run id\(s\) x0, x1, x2, x3, x4 and 3 more of metrics file "
                            r"\S+metrics.csv are not in ratios file"),
    "id repeated in ratios": (tiny_pair(ratios=lambda r: pd.concat([r, r.iloc[[1]]])),
                              r"ratios file \S+ repeats run id\(s\) r2 \(rows 2, 3\)"),
    "no run column": (tiny_pair(metrics=lambda m: m.drop(columns="run")),
                      r"metrics file \S+ has no run-id column 'run'; name it with run_col"),
    "column in both": (tiny_pair(metrics=lambda m: m.assign(h_b=0.5)),
                       r"column\(s\) h_b are in both ratios file"),
    "ratios off simplex": (tiny_pair(ratios=lambda r: r.assign(h_a=[0.5, 0.3])),
                           r"weights of \S+ratios.csv do not sum to 1 .* in rows 2 \(run r2\)"),
    "ratios non-numeric": (tiny_pair(ratios=lambda r: r.assign(h_b=["0.5", "lots"])),
                           r"column 'h_b' of \S+ratios.csv has non-numeric cells in rows 2 "),
    "metrics loss <= 0": (tiny_pair(metrics=lambda m: m.assign(loss_a=[3.1, 3.0, 0.0, 2.8])),
                          r"loss column 'loss_a' of \S+metrics.csv \(joined with \S+ratios.csv "
                          r"on 'run'\) is non-positive in rows 3 \(run r2\)"),
    "ratios without metrics": (lambda tmp: tiny_pair()(tmp)[:2],
                               r"--ratios needs --metrics: the pair is a ratios file"),
    "metrics without ratios": (lambda tmp: tiny_pair()(tmp)[2:],
                               r"one of the arguments RUNS --ratios is required"),
    "file and ratios": (lambda tmp: [write(tiny(), tmp / "wide.csv"), *tiny_pair()(tmp)],
                        r"argument --ratios: not allowed with argument RUNS"),
    "file and metrics": (lambda tmp: [write(tiny(), tmp / "wide.csv"), *tiny_pair()(tmp)[2:]],
                         r"give RUNS or --ratios and --metrics, not both"),
    "long repeats a row": (tiny_long(lambda f: pd.concat([f, f.iloc[[5]]])),
                           r"long table \S+ repeats \(run, tokens, metric\) in rows 6, 17 "
                           r"\(run r1, 'tokens' 2000000000.0, metric 'h_a'\)"),
    "long without value": (tiny_long(lambda f: f.drop(columns="value")),
                           r"long table \S+ has no column 'value' \(a long table has columns "
                           r"run, metric, value, and tokens or step\)"),
    "long non-numeric value": (tiny_long(lambda f: f.assign(value=f["value"].where(
        f.index != 3, "n/a"))), r"column 'value' of \S+long.csv has non-numeric cells in rows 4 "
                                r"\(row 4: 'n/a'\)"),
    "long step without tokens per step": (tiny_long(tokens_per_step=1e9),
                                          r"counts checkpoints in 'step': give tokens_per_step"),
    "long tokens and tokens per step": (tiny_long(lambda f: f, "--tokens-per-step", "2"),
                                        r"has a 'tokens' column: tokens_per_step applies to a "
                                        r"'step' column only"),
    "wide with tokens per step": (lambda tmp: [write(tiny(), tmp / "w.csv"),
                                               "--tokens-per-step", "2"],
                                  r"tokens_per_step applies to a long table .* is wide"),
    "long without N at a checkpoint": (tiny_long(lambda f: f.drop(index=8)),
                                       r"column 'N' \(parameters\) of \S+long.csv is missing or "
                                       r"NaN in rows 9 \(run r2\)"),
    "long metric named D": (tiny_long(lambda f: f.replace({"metric": {"loss_a": "D"}})),
                            r"metric 'D' of long table \S+ has the name of its tokens column"),
    "long per run and at a checkpoint": (
        tiny_long(lambda f: pd.concat([f, f.iloc[[2]].assign(tokens="")]), per_run=("N",)),
        r"metric 'h_a' of run r1 of long table \S+ is given per run \(row 15\) and at a "
        r"checkpoint"),
    "long per-run rows only": (tiny_long(lambda f: pd.concat(
        [f, f.iloc[[0]].assign(run="r7")]), per_run=("N",)),
        r"run r7 of long table \S+ has per-run rows \(row 15: empty 'tokens'\) but no row"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_layout_one_line_exit_2(case, tmp_path, capsys):
    make, fragment = BAD[case]
    code, _, err = cli(["runs", *make(tmp_path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(fragment, lines[0]), lines[0]


def test_library_errors_name_arguments(tmp_path):
    ratios, metrics = split_pair(tiny(), ["h_a", "h_b"])
    messages = []
    for kwargs in ({"ratios": ratios}, {"metrics": metrics}, {},
                   {"source": tiny(), "ratios": ratios, "metrics": metrics},
                   {"source": to_long(tiny(), "D", tokens_per_step=1e9)},
                   {"source": to_long(tiny(), "D"), "d_value": 1e9}):
        with pytest.raises(BayesmixError) as info:
            load_runs(**kwargs)
        messages.append(str(info.value))
    assert not [m for m in messages if "--" in m or "\n" in m], messages
    assert messages[0].startswith("ratios given without metrics")
    assert messages[1].startswith("metrics given without ratios")
    assert "tokens_per_step" in messages[4] and "d_value does not apply" in messages[5]
