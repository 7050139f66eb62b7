"""RegMix (Liu et al. 2025): rank 17-domain mixtures by Pile-CC loss from 512 small runs.

Fits each law to the 512 training runs of ``../shared/data/regmix`` (1M-parameter
models, 1B tokens, k = 17 domains, many weights exactly 0) through the CLI
(``bayesmix fit``: NUTS, posterior median; optionally ``bayesmix baseline``), predicts
the 256 test mixtures with ``bayesmix predict`` and prints, per law: the Spearman rank
correlation of predicted and observed Pile-CC loss on the 1M test runs, the same
ranking carried to the 60M-parameter runs on those mixtures and to the 64
1B-parameter runs (25B tokens; other mixtures), the MRE (%) on the 1M test runs, and
the fit's convergence (max R-hat, min bulk ESS, divergences; NOT CONVERGED when
R-hat > 1.01, ESS < 400 or any divergence). The laws are fixed-(N, D) laws: the
transfer scores only the ranking, not the loss level.

Usage::

    python bench/regmix.py [--laws additive_fixed_nd,ye_m1,ye_m2,ye_m3,ye_m4]
        [--target pile_cc] [--methods posterior,baseline]
        [--chains 4 --warmup 600 --draws 1000] [--seed 0] [--keep DIR]

Quick run: ``--laws ye_m4 --methods baseline``. Weights in the files are rounded to 3
decimals, so the runs are read with ``--renormalize``. Exits 0 with a message when
the data are absent.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
from _cli_runs import (
    convergence,
    fit_and_baseline,
    format_convergence,
    predict_frame,
    target_mre,
)
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
REGMIX = ROOT.parent / "shared" / "data" / "regmix"
LAWS = ("additive_fixed_nd", "ye_m1", "ye_m2", "ye_m3", "ye_m4")
# (mixture file, loss file, N, D) per split; N and D are not columns (SOURCE.md)
SPLITS = {
    "train_1m": ("train_mixture_1m.csv", "train_pile_loss_1m.csv", 1e6, 1e9),
    "test_1m": ("test_mixture_1m.csv", "test_pile_loss_1m.csv", 1e6, 1e9),
    "test_60m": ("test_mixture_60m.csv", "test_pile_loss_60m.csv", 60e6, 1e9),
    "test_1b": ("test_mixture_1B.csv", "test_pile_loss_1B.csv", 1e9, 25e9),
}
COLUMNS = ["--renormalize"]  # the written files are in canonical columns N, D, h_*, loss_*
WEIGHT_PREFIX, LOSS_PREFIX, LOSS_SUFFIX = "train_the_pile_", "metric/the_pile_", "_val_loss"


def _canonical(split: str, target: str, out: Path) -> Path:
    """One split as a canonical run table: N, D, h_<domain> (17), loss_<target>."""
    mix_file, loss_file, n, d = SPLITS[split]
    mix = pd.read_csv(REGMIX / mix_file)
    loss = pd.read_csv(REGMIX / loss_file)
    frame = mix.merge(loss, on="index", validate="one_to_one")
    table = pd.DataFrame({"run": frame["index"], "N": n, "D": d})
    for col in mix.columns:
        if col.startswith(WEIGHT_PREFIX):
            table[f"h_{col[len(WEIGHT_PREFIX):]}"] = frame[col]
    table[f"loss_{target}"] = frame[f"{LOSS_PREFIX}{target}{LOSS_SUFFIX}"]
    path = out / f"{split}.csv"
    table.to_csv(path, index=False)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default=",".join(LAWS))
    parser.add_argument("--target", default="pile_cc")
    parser.add_argument("--methods", default="posterior")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep run tables and fits here")
    args = parser.parse_args()
    if not (REGMIX / "train_mixture_1m.csv").is_file():
        print(f"skipped: {REGMIX} is absent (the RegMix runs live in ../shared/data)")
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="regmix_"))
    work.mkdir(parents=True, exist_ok=True)
    target = args.target
    files = {split: _canonical(split, target, work) for split in SPLITS}
    nuts = [str(x) for x in ("--chains", args.chains, "--warmup", args.warmup,
                             "--draws", args.draws, "--seed", args.seed)]
    search = ["--seed", str(args.seed)]
    methods = tuple(args.methods.split(","))
    print(f"RegMix, target {target}: fit on 512 runs (1M params, 1B tokens, k = 17); "
          "Spearman of predicted vs observed loss")
    print(f"{'law':<19}{'method':<10}{'1M test':>9}{'60M':>8}{'1B':>8}{'MRE 1M %':>10}  "
          "convergence")
    for law in args.laws.split(","):
        dirs = fit_and_baseline(files["train_1m"], law, [target], work, COLUMNS, nuts,
                                search, methods)
        conv = convergence(dirs["posterior"])[target] if "posterior" in dirs else None
        for method, fit_dir in dirs.items():
            rho, mre = {}, None
            for split in ("test_1m", "test_60m", "test_1b"):
                frame = predict_frame(fit_dir, files[split], COLUMNS,
                                      work / f"{law}_{method}_{split}.csv")
                rho[split] = spearmanr(frame[f"{target}_median"],
                                       frame[f"loss_{target}"]).statistic
                if split == "test_1m":
                    mre = target_mre(frame, target)
            ctxt = format_convergence(conv) if method == "posterior" and conv else ""
            print(f"{law:<19}{method:<10}{rho['test_1m']:>9.3f}{rho['test_60m']:>8.3f}"
                  f"{rho['test_1b']:>8.3f}{mre:>10.2f}  {ctxt}")
    if args.keep:
        print(f"\nrun tables and fits in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
