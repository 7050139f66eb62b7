"""Calibration beyond the training range on another study's real runs: Chinchilla (issue 22).

The paper split has one held-out size; Hoffmann et al.'s runs (Epoch AI's extraction,
``../shared/data/chinchilla_epoch``) span 44M-16B parameters at many sizes, so the
discrepancy term (docs/calibration.md) can be checked on real runs bayesmix was not
built on, at several distances beyond the training range. For each cut, the Chinchilla
law is fitted by ``bayesmix fit`` (default settings, the discrepancy learnt by nested
leave-one-size-out) on the runs with ``N`` below the cut, and ``bayesmix compare
--heldout`` scores the larger runs, binned by how far beyond the largest training size
they are, with and without ``--no-discrepancy``: 50 % and 90 % coverage, MRE of the
posterior median, signed error, median relative width of the 90 % interval, and its
ratio to the MRE (issue 22's bar 1 asks for at most 5x).

As :mod:`bench.chinchilla` (and Epoch): ``D = FLOP / (6 N)``, the 5 highest-loss points
dropped.

Usage::

    python bench/chinchilla_extrapolation.py [--cuts 5e8,1e9,2.5e9] [--keep DIR] [--seed 0]

Reads ``../shared/data/chinchilla_epoch`` relative to the repository root; exits 0
with a message when it is absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli_runs import run_cli
from chinchilla import DATA, canonical_table


def _bins(cut: float, sizes: np.ndarray) -> list[tuple[str, str]]:
    """Held-out bins beyond ``cut``: up to 1 unit of log N past the largest training
    size, and beyond that (empty bins dropped by the caller)."""
    largest = sizes[sizes < cut].max()
    edge = largest * np.e
    return [(f"{cut:.3g} < N <= {edge:.3g}", f"N >= {cut} and N <= {edge}"),
            (f"N > {edge:.3g}", f"N > {edge}")]


def _heldout(fit: Path, runs: Path, where: str, *flags: str) -> dict:
    cmd = [sys.executable, "-m", "bayesmix", "compare", str(fit), "--heldout", str(runs),
           "--where", where, "--json", *flags]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = json.loads(done.stdout)["heldout"]
    return next(r for r in rows if r["target"] == "chinchilla")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", default="5e8,1e9,2.5e9",
                        help="training runs have N below each cut (comma-separated)")
    parser.add_argument("--keep", type=Path, help="keep the fits in this directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (Epoch's points live in ../shared/data)")
        return 0
    import pandas as pd

    from bayesmix.store import load_fit

    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        runs = canonical_table(out)
        n = pd.read_csv(runs)["N"].to_numpy(float)
        print("| cut | fit s | folds | held out | rows | predictive | cov50 | cov90 | MRE % "
              "| signed % | width90 % | width / MRE |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for cut in (float(c) for c in args.cuts.split(",")):
            fit = out / f"fit_{cut:.3g}"
            t0 = time.perf_counter()
            run_cli("fit", runs, "--law", "chinchilla", "--target", "chinchilla",
                    "--where", f"N < {cut}", "--out", fit, "--seed", str(args.seed))
            seconds = time.perf_counter() - t0
            term = load_fit(fit).targets["chinchilla"].discrepancy
            folds = len(term.folds) if term is not None else 0
            for label, where in _bins(cut, np.unique(n)):
                if not np.any(pd.eval(where, local_dict={"N": n})):
                    continue
                for name, flags in (("with the term", ()), ("law only", ("--no-discrepancy",))):
                    s = _heldout(fit, runs, where, *flags)
                    cov = s["coverage"]
                    print(f"| {cut:.3g} | {seconds:.1f} | {folds} | {label} | {s['rows']} | {name} "
                          f"| {cov['0.5']:.0%} | {cov['0.9']:.0%} | {100 * s['mre']:.2f} "
                          f"| {100 * s['signed']:+.2f} | {100 * s['width90']:.2f} "
                          f"| {s['width90'] / s['mre']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
