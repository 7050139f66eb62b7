"""Run tables: loading, mapping options, round trips and every bad input."""

import json
import os
import re
import stat

import jax
import numpy as np
import pandas as pd
import pytest

from bayesmix import BayesmixError, load_law, load_runs, runs_summary, simulate_runs, write_runs
from bayesmix._io import atomic_dir
from bayesmix.cli import main
from bayesmix.model import check_enough_rows
from bayesmix.runs import RunTable
from bayesmix.simulate import SimulatedRuns


def _paper_like(path, **overrides):
    """A small file in the paper's column names."""
    frame = pd.DataFrame({
        "weight_a": [0.5, 0.2, 0.3, 0.5],
        "weight_b": [0.5, 0.8, 0.7, 0.5],
        "model_size": [1e8, 1e8, 2e8, 2e8],
        "n_tokens": [1e9, 2e9, 1e9, 2e9],
        "a_loss": [3.1, 3.0, 2.9, 2.8],
        "b_loss": [3.5, 3.4, np.nan, 3.2],
        "openhermes_loss": [2.5, 2.4, 2.3, 2.2],
    })
    for col, value in overrides.items():
        frame[col] = value
    frame.to_csv(path, index=False)
    return path


PAPER = dict(n_col="model_size", d_col="n_tokens", weight_cols="weight_*", loss_cols="*_loss")
PAPER_ARGS = ["--n-col", "model_size", "--d-col", "n_tokens", "--weight-cols", "weight_*",
              "--loss-cols", "*_loss"]


def test_mapping_options_and_missing_cells(tmp_path):
    table = load_runs(_paper_like(tmp_path / "p.csv"), **PAPER)
    assert table.domains == ("a", "b")
    assert table.targets == ("a", "b", "openhermes")
    data = table.target_data("b")
    assert len(data.loss) == 3 and list(data.rows) == [1, 2, 4]  # missing cell drops row 3 only
    assert len(table.target_data("a").loss) == 4
    assert table.target_index("openhermes") is None


def test_where_selects_rows(tmp_path):
    table = load_runs(_paper_like(tmp_path / "p.csv"), where="N > 1.5e8", **PAPER)
    assert list(table.frame.index) == [3, 4]


def test_simulate_write_load_round_trip(tmp_path):
    simulated = simulate_runs(jax.random.key(0), load_law("additive"), 3)
    assert isinstance(simulated, SimulatedRuns) and isinstance(simulated.table, RunTable)
    frame = simulated.table.frame
    assert list(frame.index) == list(range(1, len(frame) + 1))  # rows counted from 1
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"runs{suffix}"
        write_runs(simulated.table, path)
        table = load_runs(path)
        assert table.domains == ("d0", "d1", "d2")
        np.testing.assert_allclose(table.frame["loss_d1"].to_numpy(), frame["loss_d1"], rtol=1e-9)
        np.testing.assert_allclose(table.weights.sum(axis=1), 1.0, atol=1e-9)
    summary = runs_summary(table)
    assert summary["rows"] == len(frame) and summary["distinct_mixtures"] == 12
    sizes, counts = summary["model_sizes"], summary["token_counts"]
    assert len(sizes) == frame["N"].nunique() and counts == frame["D"].nunique()
    # a file counting one size's parameters 0.5 % differently: still one size, and so
    # one token count where its D moved with N (the fit's folds count them so)
    nudged = frame.copy()
    first = nudged["N"] == nudged["N"].min()
    nudged.loc[first & (nudged.index % 2 == 0), ["N", "D"]] *= 1.005
    again = runs_summary(load_runs(nudged.reset_index(drop=True)))
    assert again["model_sizes"] == pytest.approx(sizes, rel=0.006)
    assert again["token_counts"] == counts and nudged["N"].nunique() == len(sizes) + 1


def test_simulate_runs_returns_a_loaded_table():
    """The simulated table went through load_runs: the same frame loads to the same table."""
    table, truth = simulate_runs(jax.random.key(5), load_law("additive"), 2,
                                 domain_names=("web", "code"), targets=("web", "ood"))
    assert table.domains == ("web", "code") and table.targets == ("web", "ood")
    assert set(truth) == {"web", "ood"}
    again = load_runs(table.frame.reset_index(drop=True))
    pd.testing.assert_frame_equal(again.frame, table.frame)
    assert "simulated from law 'additive'" in table.source


def test_simulate_runs_goes_through_load_runs(monkeypatch):
    """The table comes from load_runs' validation, not a RunTable built by hand."""
    import bayesmix.simulate

    def refuse(frame, **kwargs):
        raise BayesmixError("validated")

    monkeypatch.setattr(bayesmix.simulate, "load_runs", refuse)
    with pytest.raises(BayesmixError, match="validated"):
        simulate_runs(jax.random.key(5), load_law("chinchilla"), 1, n_mixtures=1)


def test_dataframe_loads_like_its_file(tmp_path):
    path = _paper_like(tmp_path / "p.csv")
    from_file = load_runs(path, **PAPER)
    from_frame = load_runs(pd.read_csv(path), **PAPER)
    assert from_frame.source == "<DataFrame>"
    assert (from_frame.domains, from_frame.targets) == (from_file.domains, from_file.targets)
    pd.testing.assert_frame_equal(from_frame.frame, from_file.frame)
    # a frame's own index is not its row numbering
    shuffled = pd.read_csv(path).set_index(pd.Index([10, 20, 30, 40]))
    assert list(load_runs(shuffled, **PAPER).target_data("b").rows) == [1, 2, 4]


# Each bad frame: (the frame, load_runs arguments, a fragment of the one-line message)
BAD_FRAMES = {
    "no rows": (lambda f: f.iloc[:0], {}, "run table <DataFrame> has no rows"),
    "missing N": (lambda f: f, {k: v for k, v in PAPER.items() if k != "n_col"},
                  "run table <DataFrame> has no column 'N' .* n_col"),
    "non-numeric": (lambda f: f.assign(model_size=["1e8", "big", "2e8", "2e8"]), PAPER,
                    "column 'model_size' of <DataFrame> has non-numeric cells in rows 2"),
    "NaN N": (lambda f: f.assign(model_size=[1e8, np.nan, 2e8, 2e8]), PAPER,
              "'N' .* of <DataFrame> is missing or NaN in rows 2"),
    "off simplex": (lambda f: f.assign(weight_a=[0.5, 0.2, 0.3, 0.6]), PAPER,
                    "do not sum to 1 .* rows 4 .*renormalize"),
    "negative loss": (lambda f: f.assign(a_loss=[3.1, 3.0, -1.0, 2.8]), PAPER,
                      "loss column 'a_loss' of <DataFrame> is non-positive in rows 3"),
    "repeated column": (lambda f: pd.concat([f, f[["a_loss"]]], axis=1), PAPER,
                        "repeats column"),
    "bool column": (lambda f: f.assign(model_size=[True, False, True, True]), PAPER,
                    "column 'model_size' of <DataFrame> has non-numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frame_one_line_error(case, tmp_path):
    change, kwargs, fragment = BAD_FRAMES[case]
    frame = change(pd.read_csv(_paper_like(tmp_path / "p.csv")))
    with pytest.raises(BayesmixError) as info:
        load_runs(frame, **kwargs)
    message = str(info.value)
    assert "\n" not in message and re.search(fragment, message), message


def test_library_errors_name_arguments_not_flags(tmp_path):
    path = _paper_like(tmp_path / "p.csv")
    messages = []
    for kwargs in ({**PAPER, "weight_cols": "nope_*"}, {**PAPER, "where": "N >"},
                   {**PAPER, "where": "N > 1e12"}, {**PAPER, "d_col": "tokens"},
                   {"n_col": "model_size", "d_col": "n_tokens", "weight_cols": "weight_*"}):
        with pytest.raises(BayesmixError) as info:
            load_runs(path, **kwargs)
        messages.append(str(info.value))
    with pytest.raises(BayesmixError) as info:
        load_runs(_paper_like(tmp_path / "q.csv", weight_b=[0.6, 0.8, 0.7, 0.5]), **PAPER)
    messages.append(str(info.value))
    for call in (lambda: simulate_runs(jax.random.key(0), load_law("additive"), 3,
                                       min_weight=0.5),
                 lambda: simulate_runs(jax.random.key(0), load_law("additive"), 0),
                 lambda: simulate_runs(jax.random.key(0), load_law("additive"), 2,
                                       sizes=(1e8, -1.0))):
        with pytest.raises(BayesmixError) as info:
            call()
        messages.append(str(info.value))
    assert not [m for m in messages if "--" in m], messages
    joined = " | ".join(messages)
    for argument in ("weight_cols", "where", "d_col", "loss_cols", "renormalize",
                     "min_weight", "k (the number of domains)", "sizes"):
        assert argument in joined, argument


def test_select_by_mask_keeps_row_numbers(tmp_path):
    table = load_runs(_paper_like(tmp_path / "p.csv"), **PAPER)
    subset = table.select(table.frame["N"].to_numpy() > 1.5e8)
    assert list(subset.frame.index) == [3, 4] and subset.domains == table.domains
    with pytest.raises(BayesmixError, match="selects no rows"):
        table.select(np.zeros(4, bool))
    with pytest.raises(BayesmixError, match="row mask of shape"):
        table.select(np.ones(3, bool))


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_follow_the_umask(umask, tmp_path):
    table, _ = simulate_runs(jax.random.key(0), load_law("chinchilla"), 1, n_mixtures=1)
    write_runs(table, tmp_path / "runs.csv")
    assert _mode(tmp_path / "runs.csv") == 0o666 & ~umask  # mkstemp alone gives 0600
    out = tmp_path / "fitdir"
    (out / "mine").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me\n")
    os.chmod(out, 0o700)
    os.chmod(out / "mine", 0o700)
    with atomic_dir(out) as tmp:
        (tmp / "sub").mkdir()
        write_runs(table, tmp / "sub" / "runs.csv")
    # the user's own directories keep their modes (private stays private); a directory
    # bayesmix makes gets the umask's mode (mkdtemp alone gives 0700)
    assert _mode(out) == _mode(out / "mine") == 0o700
    assert _mode(out / "sub") == 0o777 & ~umask
    assert _mode(out / "sub" / "runs.csv") == 0o666 & ~umask
    assert (out / "notes.txt").read_text() == "keep me\n"  # the user's file survives


def test_umask_check_catches_private_modes(tmp_path):
    """Negative control: the mode check above fails on what mkstemp / mkdtemp give."""
    import tempfile

    old = os.umask(0o022)
    try:
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        assert _mode(name) != 0o666 & ~0o022
        assert _mode(tempfile.mkdtemp(dir=tmp_path)) != 0o777 & ~0o022
    finally:
        os.umask(old)


def test_renormalize(tmp_path):
    path = _paper_like(tmp_path / "p.csv", weight_b=[0.6, 0.8, 0.7, 0.5])
    with pytest.raises(BayesmixError, match=r"do not sum to 1 .* rows 1 .*renormalize"):
        load_runs(path, **PAPER)
    table = load_runs(path, renormalize=True, **PAPER)
    np.testing.assert_allclose(table.weights.sum(axis=1), 1.0)


def test_fixed_scale_file_with_constant_n_and_d(tmp_path):
    path = tmp_path / "fixed.csv"
    pd.DataFrame({"h_x": [0.3, 0.6], "h_y": [0.7, 0.4], "loss_x": [2.0, 1.9]}).to_csv(path)
    table = load_runs(path, n_value=1e6, d_value=1e9)
    assert set(table.frame["N"]) == {1e6}
    # a constant beside a column of the same quantity is ambiguous: which did they mean?
    with_n = tmp_path / "with_n.csv"
    pd.read_csv(path).assign(N=[1e8, 2e8]).to_csv(with_n)
    with pytest.raises(BayesmixError, match="has a column 'N' .* and n_value 1000000.0 was"):
        load_runs(with_n, n_value=1e6, d_value=1e9)


def test_loss_columns_without_values(tmp_path):
    path = _paper_like(tmp_path / "p.csv")
    # b_loss is missing in the one row selected: b is not a target there, and says why
    table = load_runs(path, **PAPER, where="N > 1.5e8 and D < 1.5e9")
    assert table.targets == ("a", "openhermes") and table.unmeasured == ("b",)
    with pytest.raises(BayesmixError, match="target 'b' has no loss value in the selected"):
        table.target_data("b")
    # the same when a loaded table is subset afterwards (a fold of cross-validation)
    later = load_runs(path, **PAPER).select("N > 1.5e8 and D < 1.5e9")
    assert (later.targets, later.unmeasured) == (table.targets, table.unmeasured)
    # every loss column empty, or none: an error for training runs, a plan to predict at
    losses = ["a_loss", "b_loss", "openhermes_loss"]
    empty = pd.read_csv(path).assign(**{c: np.nan for c in losses})
    with pytest.raises(BayesmixError, match="'a_loss', 'b_loss', 'openhermes_loss' .* have no"):
        load_runs(empty, **PAPER)
    none = pd.read_csv(path).drop(columns=losses)
    with pytest.raises(BayesmixError, match="matches loss_cols"):
        load_runs(none, **PAPER)
    for plan in (empty, none):
        assert load_runs(plan, **PAPER, losses_required=False).targets == ()


def test_a_domain_no_run_trained_on(tmp_path, capsys):
    path = _paper_like(tmp_path / "p.csv", weight_a=[0.0] * 4, weight_b=[1.0] * 4)
    assert load_runs(path, **PAPER).unseen_domains == ("a",)
    assert load_runs(_paper_like(tmp_path / "q.csv"), **PAPER).unseen_domains == ()
    assert main(["fit", str(path), *PAPER_ARGS, "--law", "additive", "--target", "nope",
                 "--out", str(tmp_path / "f")]) == 2  # stops at the target, after the note
    printed = capsys.readouterr()
    assert "domain a has weight 0 in every run" in printed.out
    assert len(printed.err.strip().splitlines()) == 1  # the error alone, on one line


def test_target_and_row_count_errors(tmp_path):
    table = load_runs(_paper_like(tmp_path / "p.csv"), **PAPER)
    with pytest.raises(BayesmixError, match="target 'nope' is not in"):
        table.target_data("nope")
    with pytest.raises(BayesmixError, match="4 usable rows but law 'additive' has 9 parameters"):
        check_enough_rows(load_law("additive"), table, "a", 4)


# Each bad input: (what to write, extra CLI args, a fragment of the one-line message)
BAD_INPUTS = {
    "empty file": (lambda p: p.write_text(""), [], "is empty"),
    "header only": (lambda p: p.write_text("N,D,h_a,loss_a\n"), [], "no rows"),
    "unreadable": (lambda p: p.write_bytes(b"\xff\xfe\x00\x81garbage\n\x00"), [], "cannot read"),
    "missing N": (lambda p: _paper_like(p), ["--d-col", "n_tokens", "--weight-cols", "weight_*",
                                             "--loss-cols", "*_loss"], "no column 'N'"),
    "missing D": (lambda p: _paper_like(p), ["--n-col", "model_size", "--weight-cols",
                                             "weight_*", "--loss-cols", "*_loss"],
                  "no column 'D'"),
    "weight glob matches nothing": (lambda p: _paper_like(p), [*PAPER_ARGS[:4], "--loss-cols",
                                                               "*_loss"],
                                    r"matches weight_cols 'h_\*'"),
    "loss glob matches nothing": (lambda p: _paper_like(p), [*PAPER_ARGS[:6]],
                                  r"matches loss_cols 'loss_\*'"),
    "non-numeric": (lambda p: _paper_like(p, model_size=["1e8", "big", "2e8", "2e8"]),
                    PAPER_ARGS, "column 'model_size' of .* non-numeric cells in rows 2"),
    "NaN N": (lambda p: _paper_like(p, model_size=[1e8, np.nan, 2e8, 2e8]), PAPER_ARGS,
              "'N' .* is missing or NaN in rows 2"),
    "inf D": (lambda p: _paper_like(p, n_tokens=[1e9, np.inf, 1e9, 2e9]), PAPER_ARGS,
              "'D' .* is infinite in rows 2"),
    "N <= 0": (lambda p: _paper_like(p, model_size=[1e8, 1e8, 0.0, 2e8]), PAPER_ARGS,
               "'N' .* non-positive in rows 3"),
    "D <= 0": (lambda p: _paper_like(p, n_tokens=[1e9, -2e9, 1e9, 2e9]), PAPER_ARGS,
               "'D' .* non-positive in rows 2"),
    "NaN weight": (lambda p: _paper_like(p, weight_a=[0.5, np.nan, 0.3, 0.5]), PAPER_ARGS,
                   "weight column 'weight_a' .* NaN or infinite in rows 2"),
    "negative weight": (lambda p: _paper_like(p, weight_a=[0.5, -0.2, 0.3, 0.5],
                                              weight_b=[0.5, 1.2, 0.7, 0.5]), PAPER_ARGS,
                        "weight column 'weight_a' .* negative in rows 2"),
    "off simplex": (lambda p: _paper_like(p, weight_a=[0.5, 0.2, 0.3, 0.6]), PAPER_ARGS,
                    "do not sum to 1 .* rows 4 .*renormalize"),
    "loss <= 0": (lambda p: _paper_like(p, a_loss=[3.1, 0.0, 2.9, 2.8]), PAPER_ARGS,
                  "loss column 'a_loss' .* non-positive in rows 2"),
    "inf loss": (lambda p: _paper_like(p, a_loss=[3.1, np.inf, 2.9, 2.8]), PAPER_ARGS,
                 "loss column 'a_loss' .* infinite in rows 2"),
    "duplicated columns": (lambda p: p.write_text("N,D,h_a,h_a,loss_a\n1,2,0.5,0.5,3\n"), [],
                           "repeats column"),
    "bad where": (lambda p: _paper_like(p), [*PAPER_ARGS, "--where", "nonsense >"],
                  "where 'nonsense >' failed"),
    "where selects nothing": (lambda p: _paper_like(p), [*PAPER_ARGS, "--where", "N > 1e12"],
                              "selects no rows"),
    "missing file": (lambda p: None, [], "does not exist"),
    "where not a condition": (lambda p: _paper_like(p), [*PAPER_ARGS, "--where", "N + 1"],
                              "where 'N \\+ 1' failed .*: it is not a condition on the rows"),
    "a directory": (lambda p: p.mkdir(), [], "runs file .* is a directory, not a file"),
    "weight glob takes the losses": (lambda p: _paper_like(p), [
        "--n-col", "model_size", "--d-col", "n_tokens", "--weight-cols", "*",
        "--loss-cols", "*_loss"], "matching loss_cols '\\*_loss' also matches weight_cols"),
    "N and D one column": (lambda p: _paper_like(p), [*PAPER_ARGS, "--d-col", "model_size"],
                           "n_col and d_col both name column 'model_size'"),
    # pandas' message ends in a line break: the error still takes one line
    "a ragged row": (
        lambda p: p.write_text("N,D,h_a,h_b,loss_a\n1,2,0.5,0.5,3\n1,2,0.5,0.5,3,4\n"), [],
        "cannot read .*ParserError: Error tokenizing data"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2(case, tmp_path, capsys):
    write, extra, fragment = BAD_INPUTS[case]
    path = tmp_path / "runs.csv"
    write(path)
    before = path.read_bytes() if path.is_file() else None
    code = main(["runs", str(path), *extra])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and err.count("\n") == 1, err  # not even a blank line
    assert lines[0].startswith("bayesmix: error: ")
    assert "Traceback" not in err
    assert re.search(fragment, lines[0]), lines[0]
    assert (path.read_bytes() if path.is_file() else None) == before  # nothing overwritten


@pytest.mark.parametrize(("extra", "params", "fragment"), [
    (["--loss-scale", "0"], None, "loss_scale must be positive"),
    (["--noise", "-1"], None, "noise must be at least 0"),
    (["--run-noise", "nan"], None, "run_noise must be at least 0"),
    ([], {"d0": {"ZZ": 1}}, "sites of target 'd0' are ZZ; law 'chinchilla' samples a, alpha"),
    ([], [1, 2], "sites must map each target"),
    ([], {"d0": {"a": "x", "alpha": 1, "b": 1, "beta": 1, "loss_ref": 1}},
     "site 'a' of target 'd0' is not a number"),
    ([], {"d0": {"a": [1, 2], "alpha": 1, "b": 1, "beta": 1, "loss_ref": 1}},
     r"site 'a' of target 'd0' must be finite with shape \(\)"),
])
def test_simulate_bad_options_one_line_exit_2(extra, params, fragment, tmp_path, capsys):
    argv = ["simulate", "--law", "chinchilla", "--domains", "1", "--out",
            str(tmp_path / "x.csv"), *extra]
    if params is not None:
        (tmp_path / "p.json").write_text(json.dumps(params))
        argv += ["--params", str(tmp_path / "p.json")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.search(fragment, lines[0]), lines
    assert not (tmp_path / "x.csv").exists()
    # negative control: the sites a simulation wrote are taken back as they are
    good = ["simulate", "--law", "chinchilla", "--domains", "1", "--out",
            str(tmp_path / "y.csv"), "--truth-out", str(tmp_path / "t.json")]
    assert main(good) == 0
    assert main([*good[:-2], "--params", str(tmp_path / "t.json")]) == 0


def test_unknown_law_and_bad_law_file_exit_2(tmp_path, capsys):
    assert main(["simulate", "--law", "nope", "--out", str(tmp_path / "x.csv")]) == 2
    assert "unknown law 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("NAME = 'x'\n")
    assert main(["simulate", "--law", str(bad), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "does not define" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["runs"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_simulate_then_runs(tmp_path, capsys):
    out, truth = tmp_path / "sim.csv", tmp_path / "truth.json"
    assert main(["simulate", "--law", "joint", "--domains", "4", "--seed", "3", "--mixtures",
                 "5", "--sizes", "1e8,3e8", "--tokens-per-param", "5,20", "--noise", "0.01",
                 "--out", str(out), "--truth-out", str(truth)]) == 0
    capsys.readouterr()
    assert main(["runs", str(out), "--json"]) == 0
    import json
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 2 * 5 * 2 and summary["distinct_mixtures"] == 5
    assert summary["domains"] == ["d0", "d1", "d2", "d3"] == summary["targets"]
    assert summary["model_sizes"] == [1e8, 3e8]
    sites = json.loads(truth.read_text())
    # the same parameters give the same table (noise is part of the seed)
    out2 = tmp_path / "sim2.csv"
    params = tmp_path / "params.json"
    params.write_text(json.dumps(sites))
    assert main(["simulate", "--law", "joint", "--domains", "4", "--seed", "3", "--mixtures",
                 "5", "--sizes", "1e8,3e8", "--tokens-per-param", "5,20", "--noise", "0.01",
                 "--params", str(params), "--out", str(out2)]) == 0
    assert out.read_text() == out2.read_text()


def test_simulate_refuses_to_overwrite_on_failure(tmp_path, capsys):
    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    assert main(["simulate", "--law", "additive", "--min-weight", "0.5", "--out", str(out)]) == 2
    assert "min_weight 0.5 does not fit 3 domains" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
