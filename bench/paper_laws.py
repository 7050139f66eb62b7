"""The paper's law comparison (Shukor et al. 2025, Tables 4 and 8) on the paper's split.

Fits the simple (eq. 9), additive (eq. 4), joint (eq. 5) and full (eqs. 10-11) laws to
each domain's loss through the CLI (``bayesmix baseline``: the Huber fit the paper
uses; ``bayesmix fit``: NUTS, posterior median), on N in {310M, 680M, 937M, 1.235B}
(``bench/_paper.py``'s split), and predicts the 2.718B eval runs with
``bayesmix predict``.

Prints, per domain and law: train and eval MRE (%) of the baseline and of the
posterior median beside Table 8's train / 3B figures, the fit's convergence (max
R-hat, min bulk ESS, divergences), then each method's mean eval MRE per law beside
Table 4 (LLM row) and the ranking of the laws (the paper's: full < joint < additive
< simple).

Usage::

    python bench/paper_laws.py [--laws simple,additive,joint,full]
        [--targets arxiv,github] [--methods baseline,posterior]
        [--chains 4 --warmup 600 --draws 1000] [--starts N --hops H] [--keep DIR]
        [--reuse]

Quick run: ``--laws additive --targets github --methods baseline``. Reads
``../shared/data/dmsl_slimpajama`` relative to the repository root; exits 0 with a
message when it is absent. ``--reuse`` (with ``--keep``) keeps the finished fits
already in DIR, so a stopped run carries on.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _cli_runs import (
    convergence,
    fit_and_baseline,
    format_convergence,
    predict_frame,
    target_mre,
)
from _paper import CLI_COLUMNS, DATA, DOMAINS, EVAL_WHERE, PAPER_MRE, TRAIN_WHERE

LAWS = ("simple", "additive", "joint", "full")
# Table 8 (LLM, train / 3B eval MRE %) for the simple and full laws, read from the paper's
# text; additive and joint are _paper.PAPER_MRE (the same table).
PAPER_TABLE8 = {
    **PAPER_MRE,
    "simple": {
        "arxiv": (0.55, 2.40), "book": (0.38, 1.11), "c4": (0.35, 0.47),
        "github": (0.81, 2.05), "commoncrawl": (0.34, 0.65), "stackexchange": (0.57, 0.68),
        "wikipedia": (0.97, 4.53),
    },
    "full": {
        "arxiv": (0.39, 1.83), "book": (0.24, 1.14), "c4": (0.23, 0.41),
        "github": (0.52, 1.97), "commoncrawl": (0.23, 0.74), "stackexchange": (0.36, 0.42),
        "wikipedia": (0.56, 1.98),
    },
}
PAPER_TABLE4_LLM = {"simple": 1.70, "additive": 1.39, "joint": 1.30, "full": 1.21}


def _options(args) -> tuple[list[str], list[str]]:
    nuts = ["--chains", args.chains, "--warmup", args.warmup, "--draws", args.draws,
            "--seed", args.seed]
    search = ["--seed", str(args.seed)]
    if args.starts is not None:
        search += ["--starts", str(args.starts)]
    if args.hops is not None:
        search += ["--hops", str(args.hops)]
    return [str(x) for x in nuts], search


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default=",".join(LAWS))
    parser.add_argument("--targets", default=",".join(DOMAINS))
    parser.add_argument("--methods", default="baseline,posterior")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=None)
    parser.add_argument("--hops", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep fit directories here")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: keep the finished fits already there")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is absent (the paper's runs live in ../shared/data)")
        return 0
    laws, targets = args.laws.split(","), args.targets.split(",")
    methods = tuple(args.methods.split(","))
    nuts, search = _options(args)
    work = Path(args.keep or tempfile.mkdtemp(prefix="paper_laws_"))
    work.mkdir(parents=True, exist_ok=True)
    train = [*CLI_COLUMNS, "--where", TRAIN_WHERE]
    evaluate = [*CLI_COLUMNS, "--where", EVAL_WHERE]
    results = {}  # (law, method, target) -> (train, eval)
    conv = {}
    for law in laws:
        dirs = fit_and_baseline(DATA, law, targets, work, train, nuts, search, methods,
                                reuse=args.reuse and bool(args.keep))
        if "posterior" in dirs:
            conv[law] = convergence(dirs["posterior"])
        for method, fit_dir in dirs.items():
            tr = predict_frame(fit_dir, DATA, train, work / f"{law}_{method}_train.csv")
            ev = predict_frame(fit_dir, DATA, evaluate, work / f"{law}_{method}_eval.csv")
            n_rows = (len(tr), len(ev))
            for target in targets:
                results[law, method, target] = (target_mre(tr, target), target_mre(ev, target))
    print(f"train {n_rows[0]} rows, eval {n_rows[1]} rows (N = 2.718B); MRE %")
    print(f"{'target':<14}{'law':<10}" + "".join(f"{m + ' tr/ev':>18}" for m in methods)
          + f"{'paper tr/ev':>16}  convergence")
    for target in targets:
        for law in laws:
            cells = "".join(f"{results[law, m, target][0]:>9.2f}{results[law, m, target][1]:>9.2f}"
                            for m in methods)
            paper = PAPER_TABLE8.get(law, {}).get(target)
            ptxt = f"{paper[0]:>8.2f}{paper[1]:>8.2f}" if paper else f"{'-':>16}"
            ctxt = format_convergence(conv[law][target]) if law in conv else ""
            print(f"{target:<14}{law:<10}{cells}{ptxt}  {ctxt}")
    print("\nmean eval MRE % over the targets (Table 4, LLM, averages the 7 domains)")
    for method in methods:
        means = {law: float(np.mean([results[law, method, t][1] for t in targets]))
                 for law in laws}
        ranking = " < ".join(sorted(means, key=means.get))
        row = "  ".join(f"{law} {v:.2f} (paper {PAPER_TABLE4_LLM.get(law, float('nan')):.2f})"
                        for law, v in means.items())
        print(f"{method:<10} {row}")
        print(f"{'':<10} ranking: {ranking}   (paper: full < joint < additive < simple)")
    print(f"\nfit directories in {work}" if args.keep else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
