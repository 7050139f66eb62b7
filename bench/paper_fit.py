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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dmsl_slimpajama" / "dmsl_llm_slimpajama.csv"
COLUMNS = ["--n-col", "model_size", "--d-col", "n_tokens", "--weight-cols", "weight_*",
           "--loss-cols", "*_loss"]
# Token counts in the file are like 3.998e9 for "4B": thresholds sit just below.
TRAIN = ("(N > 2e8 and N < 2e9) and ((N < 4e8 and D >= 3.9e9) or "
         "(N > 4e8 and N < 1e9 and D >= 6.9e9) or (N > 1e9 and D >= 12.9e9))")
EVAL = "N > 2.5e9 and D >= 19.9e9"
TARGETS = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia",
           "openhermes")
# Paper MRE % (train / 3B eval), README of the data.
PAPER = {
    "additive": {"arxiv": (0.50, 2.09), "book": (0.29, 0.80), "c4": (0.29, 0.31),
                 "github": (0.65, 1.17), "commoncrawl": (0.29, 0.58),
                 "stackexchange": (0.51, 0.36), "wikipedia": (0.92, 4.45)},
    "joint": {"arxiv": (0.39, 1.62), "book": (0.24, 1.19), "c4": (0.24, 0.34),
              "github": (0.54, 2.51), "commoncrawl": (0.24, 0.90),
              "stackexchange": (0.38, 0.47), "wikipedia": (0.57, 2.09)},
}


def _mre(pred: np.ndarray, obs: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(pred - obs) / obs))


def evaluate(fit_dir: Path, target: str) -> dict[str, float]:
    """Train/eval MRE of the posterior median and eval coverage of the 90 % PP interval."""
    import jax

    from bayesmix.fit import load_fit
    from bayesmix.predict import predict_draws, predictive_draws
    from bayesmix.runs import load_runs

    result = load_fit(fit_dir)
    posterior = result.targets[target].posterior
    out = {}
    for name, where in (("train", TRAIN), ("eval", EVAL)):
        table = load_runs(DATA, n_col="model_size", d_col="n_tokens", weight_cols="weight_*",
                          loss_cols="*_loss", where=where)
        data = table.target_data(target)
        mean = predict_draws(posterior, data.n_params, data.n_tokens, data.weights)
        out[f"{name}_mre"] = _mre(np.median(mean, axis=0), data.loss)
        if name == "eval":
            pp = predictive_draws(jax.random.key(0), posterior, mean)
            lo, hi = np.quantile(pp, [0.05, 0.95], axis=0)
            out["coverage"] = float(np.mean((data.loss >= lo) & (data.loss <= hi)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--keep", default=None, help="keep fit directories here")
    parser.add_argument("--extra", default="", help="extra options for bayesmix fit")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (the paper's runs live in ../shared/data)")
        return 0
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    import jax

    jax.config.update("jax_enable_x64", True)
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
                [*exe, "fit", str(DATA), *COLUMNS, "--where", TRAIN, "--law", law,
                 "--target", target, "--out", str(out), *args.extra.split()],
                capture_output=True, text=True, env=env, cwd=ROOT,
            )
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{target:<14} {law:<9} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            from bayesmix.fit import load_fit

            d = load_fit(out).targets[target].diagnostics
            ev = evaluate(out, target)
            paper = PAPER.get(law, {}).get(target, (float("nan"), float("nan")))
            rows.append({"law": law, "target": target, "seconds": seconds, **d, **ev})
            print(f"{target:<14} {law:<9} {d['max_rhat']:6.3f} {d['min_ess_bulk']:6.0f} "
                  f"{d['divergences']:4d} {seconds:6.1f} {ev['train_mre']:6.2f} "
                  f"{paper[0]:7.2f} {ev['eval_mre']:6.2f} {paper[1]:7.2f} "
                  f"{100 * ev['coverage']:5.0f}%", flush=True)
    for law in args.laws.split(","):
        domain_rows = [r for r in rows if r["law"] == law and r["target"] != "openhermes"]
        if domain_rows:
            mean_eval = np.mean([r["eval_mre"] for r in domain_rows])
            paper = np.mean([PAPER[law][r["target"]][1] for r in domain_rows]) \
                if law in PAPER else float("nan")
            converged = all(r["max_rhat"] <= 1.01 and r["min_ess_bulk"] >= 400
                            and r["divergences"] <= 0.001 * r["draws"]
                            for r in rows if r["law"] == law)
            print(f"{law}: mean eval MRE over {len(domain_rows)} domains {mean_eval:.2f} % "
                  f"(paper {paper:.2f} %); max seconds "
                  f"{max(r['seconds'] for r in domain_rows):.0f}; all converged: {converged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
