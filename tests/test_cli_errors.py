"""Bad options and arguments of the CLI: one line naming the problem, exit 2, nothing
written. Each case fails before any fit; a negative control runs the command with the
option corrected where that is cheap."""

import re
import threading

import numpy as np
import pytest

from bayesmix import BayesmixError
from bayesmix.cli import main
from bayesmix.path import compute_grid


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A simulated run table (3 sizes, 2 domains)."""
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    assert main(["simulate", "--law", "additive", "--domains", "2", "--seed", "1",
                 "--sizes", "1e8,2e8,4e8", "--tokens-per-param", "4,8,16",
                 "--mixtures", "5", "--out", str(path)]) == 0
    return path


def _one_line_error(capsys, argv, fragment):
    with pytest.raises(SystemExit) as info:  # argparse's errors leave through SystemExit
        raise SystemExit(main(argv))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert info.value.code == 2, err
    assert len(lines) == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(fragment, lines[0]), lines[0]
    return lines[0]


CASES = {
    "seed beyond 64 bits": (["simulate", "--seed", str(2 ** 64), "--out", "{tmp}/s.csv"],
                            "--seed: .* out of range"),
    "huge --domains": (["laws", "--domains", "1000000000"],
                       "--domains: must be a whole number from 1 to 10000"),
    "negative --prior-draws": (["fit", "{runs}", "--law", "additive", "--target", "d0",
                                "--out", "{tmp}/o", "--prior-only", "--prior-draws=-3"],
                               "--prior-draws: must be a positive whole number"),
    "two outputs one file": (["simulate", "--out", "{tmp}/s.csv", "--truth-out",
                              "{tmp}/s.csv"], "--out and --truth-out are the same file"),
    "undecodable --params": (["simulate", "--out", "{tmp}/s.csv", "--params",
                              "{tmp}/garbage.json"], "cannot read --params .*utf-8"),
    "scheduler not an address": (["fit", "{runs}", "--law", "additive", "--target", "d0",
                                  "--out", "{tmp}/o", "--scheduler", "nonsense"],
                                 "--scheduler 'nonsense' is not a scheduler address"),
    "negative --patience": (["baseline", "{runs}", "--law", "additive", "--target", "d0",
                             "--out", "{tmp}/o", "--patience", "-1"],
                            "patience must be at least 1, got -1"),
    "--min-weight nan": (["simulate", "--out", "{tmp}/s.csv", "--min-weight", "nan"],
                         r"min_weight nan does not fit 3 domains"),
    "a bad path before the fits load": (["optimize", "{tmp}/nofit", "--N", "1e9", "--D",
                                         "2e10", "--path-flops", "0"],
                                        "--path-flops 0 with --tokens-per-param 20.0: "),
    "a line break in a name": (["fit", "{runs}", "--law", "foo\nbar", "--target", "d0",
                                "--out", "{tmp}/o"], r"unknown law 'foo\\nbar'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_option_one_line_exit_2(case, runs, tmp_path, capsys):
    argv, fragment = CASES[case]
    (tmp_path / "garbage.json").write_bytes(b"\xff\xfe\x00garbage")
    argv = [a.format(runs=runs, tmp=tmp_path) for a in argv]
    _one_line_error(capsys, argv, fragment)
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "o").exists()


def test_corrected_options_run(runs, tmp_path, capsys):
    """Negative control: the cases above with the option made valid do not fail there."""
    assert main(["simulate", "--seed", str(2 ** 63 - 1), "--out", str(tmp_path / "a.csv"),
                 "--truth-out", str(tmp_path / "a.json")]) == 0
    assert main(["laws", "--domains", "10000"]) == 0
    assert main(["fit", str(runs), "--law", "additive", "--target", "d0", "--out",
                 str(tmp_path / "o"), "--prior-only", "--prior-draws", "3"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("flops", [[1e20, np.nan], [1e20, np.inf], [0.0], [-1e20]])
def test_compute_budgets_must_be_positive_and_finite(flops):
    with pytest.raises(BayesmixError, match="positive, finite"):
        compute_grid(flops)
    assert np.all(np.isfinite(compute_grid([1e20, 1e21])[0]))


@pytest.mark.parametrize("how", ["signal", "dropped"])
def test_an_interrupt_leaves_the_output_as_it_was(how, monkeypatch, tmp_path, capsys):
    """Ctrl-C during a command: exit 130 and the old output kept, also when Python
    dropped the KeyboardInterrupt (raised inside a garbage-collection callback, as JAX
    registers one) and the command ran on to its end."""
    import os
    import signal

    import bayesmix.commands.simulate as command
    from bayesmix._io import INTERRUPTED

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    real = command.simulate_runs

    def interrupted(*args, **kwargs):
        if how == "signal":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            INTERRUPTED.set()  # what the handler does before its exception is dropped
        return real(*args, **kwargs)

    out = tmp_path / "runs.csv"
    out.write_text("precious\n")
    monkeypatch.setattr(command, "simulate_runs", interrupted)
    # as at a terminal (pytest-xdist's workers ignore SIGINT, which the CLI then leaves)
    original = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.default_int_handler)
    assert main(["simulate", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert out.read_text() == "precious\n" and os.listdir(tmp_path) == ["runs.csv"]
    assert signal.signal(signal.SIGINT, original) == original  # the caller's is back
    monkeypatch.setattr(command, "simulate_runs", real)  # negative control
    assert main(["simulate", "--out", str(out)]) == 0
    assert out.read_text() != "precious\n"


def test_after_an_interrupted_command_the_library_writes_again(monkeypatch, tmp_path):
    """The flag is the command's: a later write in the same process is not stopped; and
    where SIGINT is ignored (a script's background job) the command leaves it so."""
    import signal

    import bayesmix.commands.simulate as command
    from bayesmix._io import INTERRUPTED, atomic_file

    real = command.simulate_runs

    def dropped(*args, **kwargs):
        INTERRUPTED.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(command, "simulate_runs", dropped)
    assert main(["simulate", "--out", str(tmp_path / "a.csv")]) == 130
    assert not INTERRUPTED.is_set()
    with atomic_file(tmp_path / "notes.txt") as handle:
        handle.write("mine")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    if threading.current_thread() is threading.main_thread():
        during = []

        def watched(*args, **kwargs):
            during.append(signal.getsignal(signal.SIGINT))
            return real(*args, **kwargs)

        monkeypatch.setattr(command, "simulate_runs", watched)
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            assert main(["simulate", "--out", str(tmp_path / "b.csv")]) == 0
            assert during == [signal.SIG_IGN]  # ignored while the command ran, too
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        finally:
            signal.signal(signal.SIGINT, before)
