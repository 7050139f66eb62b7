"""Drive the ``bayesmix`` CLI from the law-comparison benchmarks and read what it writes.

Every fit goes through the command line (``python -m bayesmix fit/baseline/predict``), so
the benchmarks measure what a user gets and survive reorganisations of the library.
Predictions are read from ``bayesmix predict --out`` (column ``T_median``); convergence
from ``bayesmix.load_fit``'s per-target diagnostics (attribute or key access).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _paper import mre_percent


def run_cli(*args: str, quiet: bool = True, env: dict[str, str] | None = None) -> float:
    """``python -m bayesmix ARGS``; returns its wall seconds, raises with the command's
    stderr when it fails. ``env``: the command's environment (default: this one's)."""
    cmd = [sys.executable, "-m", "bayesmix", *map(str, args)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    if not quiet:
        sys.stdout.write(done.stdout)
    return wall


def fit_and_baseline(runs: Path, law: str, targets: list[str], out: Path, columns: list[str],
                     nuts: list[str], search: list[str], methods=("baseline", "posterior"),
                     reuse: bool = False):
    """Fit ``law`` to ``targets`` of ``runs``; return ``{method: directory}``.

    With ``reuse``, a directory that already holds a finished fit of the same command
    (``fit.json`` or ``baseline.json``, written last) is kept instead of refitted: a
    benchmark stopped half-way carries on where it was.
    """
    dirs = {}
    if "baseline" in methods:
        dirs["baseline"] = out / f"{law}_baseline"
        if not (reuse and (dirs["baseline"] / "baseline.json").is_file()):
            run_cli("baseline", runs, *columns, "--law", law, "--target", *targets,
                    "--out", dirs["baseline"], *search)
    if "posterior" in methods:
        dirs["posterior"] = out / f"{law}_fit"
        if not (reuse and (dirs["posterior"] / "fit.json").is_file()):
            run_cli("fit", runs, *columns, "--law", law, "--target", *targets,
                    "--out", dirs["posterior"], *nuts)
    return dirs


def predict_frame(fit_dir: Path, runs: Path, columns: list[str], out: Path) -> pd.DataFrame:
    """The table ``bayesmix predict FIT --runs RUNS --out OUT`` writes.

    ``columns`` are the run-table options (``--n-col ...``, ``--where ...``). The
    table is in canonical columns: ``loss_T`` observed, ``T_median`` predicted.
    """
    run_cli("predict", fit_dir, "--runs", runs, *columns, "--out", out)
    return pd.read_csv(out)


def target_mre(frame: pd.DataFrame, target: str) -> float:
    """MRE (%) of the ``T_median`` prediction against ``loss_T``."""
    return mre_percent(frame[f"{target}_median"], frame[f"loss_{target}"])


def convergence(fit_dir: Path) -> dict[str, tuple[float, float, int, list[str]]]:
    """Per target: (max R-hat, min bulk ESS, divergences, warnings) of a saved fit."""
    from bayesmix import load_fit

    fit = load_fit(fit_dir)
    out = {}
    for target, tf in fit.targets.items():
        d = tf.diagnostics
        out[target] = (float(d.max_rhat), float(d.min_ess_bulk),
                       int(d.divergences or 0), list(getattr(tf, "warnings", [])))
    return out


def format_convergence(conv) -> str:
    rhat, ess, div, warns = conv
    flag = "" if (rhat <= 1.01 and ess >= 400 and div == 0) else "  NOT CONVERGED"
    return f"R-hat {rhat:.3f}  ESS {ess:5.0f}  div {div}{flag}" + (
        f"  ({len(warns)} warnings)" if warns else "")
