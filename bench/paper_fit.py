"""Bayesian fits of the paper's runs: convergence, speed and accuracy (issue 3).

Fits each law to each target with the whole ``bayesmix fit`` command (so import,
compilation and diagnostics are timed) on the paper's split (fit on N in {310M,
680M, 937M, 1.235B} with D >= {4, 7, 7, 13}B; evaluate on N = 2.718B with D >= 20B)
and prints: target, law, max R-hat, min bulk ESS, divergences, wall seconds, train
and eval MRE (%) of the posterior-median prediction beside the paper's, and the
share of eval rows inside the 90 % posterior-predictive interval.

Usage::

    python bench/paper_fit.py [--laws additive,joint] [--targets arxiv,github] [--keep DIR]

Reads ``../shared/data/dmsl_slimpajama`` relative to the repository root; exits 0
with a message when it is absent.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _paper import (
    CLI_COLUMNS,
    DATA,
    EVAL_WHERE,
    PAPER_MRE,
    ROOT,
    TARGETS,
    TRAIN_WHERE,
    coverage_90,
    data_present,
    law_mean_draws,
    load_paper_runs,
    mre_percent,
    start_jax,
)


def evaluate(fit_dir: Path, target: str) -> dict[str, float]:
    """Train/eval MRE of the posterior median and eval coverage of the 90 % PP interval."""
    from bayesmix.store import load_fit

    result = load_fit(fit_dir)
    posterior = result.targets[target].posterior
    out = {}
    for name, where in (("train", TRAIN_WHERE), ("eval", EVAL_WHERE)):
        mean, loss = law_mean_draws(posterior, load_paper_runs(where), target)
        out[f"{name}_mre"] = mre_percent(np.median(mean, axis=0), loss)
        if name == "eval":
            out["coverage"] = coverage_90(posterior, mean, loss)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--keep", default=None, help="keep fit directories here")
    parser.add_argument("--extra", default="", help="extra options for bayesmix fit")
    args = parser.parse_args(argv)
    if not data_present():
        print(f"skipped: {DATA} not found (the paper's runs live in ../shared/data)")
        return 0
    start_jax()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="paper_fit_"))
    exe = [sys.executable, "-m", "bayesmix"]
    rows = []
    header = (f"{'target':<14} {'law':<9} {'R-hat':>6} {'ESS':>6} {'div':>4} {'sec':>6} "
              f"{'train':>6} {'(paper)':>7} {'eval':>6} {'(paper)':>7} {'cov90':>6}")
    print(header, flush=True)
    for law in args.laws.split(","):
        for target in args.targets.split(","):
            out = work / f"{law}_{target}"
            env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
            start = time.perf_counter()
            proc = subprocess.run(
                [*exe, "fit", str(DATA), *CLI_COLUMNS, "--where", TRAIN_WHERE, "--law", law,
                 "--target", target, "--out", str(out), *args.extra.split()],
                capture_output=True, text=True, env=env, cwd=ROOT,
            )
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{target:<14} {law:<9} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            from bayesmix.store import load_fit

            d = load_fit(out).targets[target].diagnostics.to_dict()
            ev = evaluate(out, target)
            paper = PAPER_MRE.get(law, {}).get(target, (float("nan"), float("nan")))
            rows.append({"law": law, "target": target, "seconds": seconds, **d, **ev})
            print(f"{target:<14} {law:<9} {d['max_rhat']:6.3f} {d['min_ess_bulk']:6.0f} "
                  f"{d['divergences']:4d} {seconds:6.1f} {ev['train_mre']:6.2f} "
                  f"{paper[0]:7.2f} {ev['eval_mre']:6.2f} {paper[1]:7.2f} "
                  f"{100 * ev['coverage']:5.0f}%", flush=True)
    for law in args.laws.split(","):
        domain_rows = [r for r in rows if r["law"] == law and r["target"] != "openhermes"]
        if domain_rows:
            mean_eval = np.mean([r["eval_mre"] for r in domain_rows])
            paper = np.mean([PAPER_MRE[law][r["target"]][1] for r in domain_rows]) \
                if law in PAPER_MRE else float("nan")
            converged = all(r["max_rhat"] <= 1.01 and r["min_ess_bulk"] >= 400
                            and r["divergences"] <= 0.001 * r["draws"]
                            for r in rows if r["law"] == law)
            print(f"{law}: mean eval MRE over {len(domain_rows)} domains {mean_eval:.2f} % "
                  f"(paper {paper:.2f} %); max seconds "
                  f"{max(r['seconds'] for r in domain_rows):.0f}; all converged: {converged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
