"""The paper's fixed-scale comparisons (Shukor et al. 2025, appendix B, Tables 13 and 14).

Table 13 setup: one (N, D), 25 training mixtures, every other mixture held out;
``additive_fixed_nd`` (appendix B.1, "Additive, fixed (N, D)") against Ye et al.'s
M1-M4. Table 14 setup: one N, every D, 25 training mixtures; ``additive_fixed_n``
(appendix B.2, "Additive, fixed N") against BiMix ("Ge 24"). Runs come from
``../shared/data/dmsl_slimpajama``; the slices are those with the most mixtures (ties
go to the one nearest the paper's N = 200M, D = 8B) and are printed. The 25 training
mixtures are drawn with ``--seed``.

Each law is fitted through the CLI (``bayesmix baseline``, the Huber fit; ``bayesmix
fit``, NUTS, posterior median) and scored with ``bayesmix predict``. Prints, per
target and law: train and test MRE (%) of the baseline and the posterior beside the
paper's Table 13 / 14 figures, and the fit's convergence (max R-hat, min bulk ESS,
divergences; NOT CONVERGED when R-hat > 1.01, ESS < 400 or any divergence: the paper
reports that M3 was hard to fit).

Usage::

    python bench/fixed_scale.py [--tables 13,14] [--laws ye_m1,additive_fixed_nd]
        [--targets wikipedia,github,stackexchange,book] [--methods baseline,posterior]
        [--chains 4 --warmup 600 --draws 1000] [--seed 0] [--keep DIR]

Quick run: ``--tables 13 --laws ye_m1 --targets github --methods baseline``. The
paper's PG-19 column is compared with this data's ``book`` loss. Exits 0 with a
message when the data are absent.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _cli_runs import (
    convergence,
    fit_and_baseline,
    format_convergence,
    predict_frame,
    target_mre,
)
from _paper import CLI_COLUMNS, DATA

LAWS = {13: ("additive_fixed_nd", "ye_m1", "ye_m2", "ye_m3", "ye_m4"),
        14: ("additive_fixed_n", "bimix")}
TARGETS = ("wikipedia", "github", "stackexchange", "book")
N_TRAIN_MIXTURES = 25
PAPER_N, PAPER_D = 200e6, 8e9
# Train / test MRE % from the paper's text (Tables 13 and 14); "book" stands for PG-19.
PAPER = {
    13: {
        "additive_fixed_nd": {"wikipedia": (0.07, 0.18), "github": (0.10, 0.19),
                              "stackexchange": (0.07, 0.18), "book": (0.08, 0.12)},
        "ye_m1": {"wikipedia": (0.08, 0.14), "github": (0.20, 0.61),
                  "stackexchange": (0.14, 0.32), "book": (0.09, 0.17)},
        "ye_m2": {"wikipedia": (0.09, 0.17), "github": (0.22, 0.40),
                  "stackexchange": (0.14, 0.21), "book": (0.13, 0.18)},
        "ye_m3": {"wikipedia": (2.54, 4.20), "github": (5.45, 5.26),
                  "stackexchange": (4.11, 3.20), "book": (2.21, 3.14)},
        "ye_m4": {"wikipedia": (0.17, 0.31), "github": (0.36, 0.44),
                  "stackexchange": (0.22, 0.34), "book": (0.16, 0.21)},
    },
    14: {
        "additive_fixed_n": {"wikipedia": (0.13, 0.17), "github": (0.20, 0.26),
                             "stackexchange": (0.14, 0.19), "book": (0.13, 0.15)},
        "bimix": {"wikipedia": (0.51, 0.62), "github": (1.99, 2.26),
                  "stackexchange": (0.94, 1.21), "book": (0.49, 0.54)},
    },
}


def _mixture_ids(frame: pd.DataFrame) -> pd.Series:
    weights = [c for c in frame.columns if c.startswith("weight_")]
    return frame[weights].round(4).astype(str).agg("|".join, axis=1)


def _nearest(keys, n_mix, target):
    """The key with the most mixtures; ties to the one nearest ``target`` in log scale."""
    best = max(n_mix.values())
    tied = [key for key in keys if n_mix[key] == best]
    return min(tied, key=lambda key: float(np.sum(np.abs(np.log(np.asarray(key) / target)))))


def _split(frame: pd.DataFrame, rows: pd.Series, rng, work: Path, name: str):
    """Write the slice's train (25 mixtures) and test (the rest) files."""
    part = frame[rows].copy()
    ids = _mixture_ids(part)
    mixtures = np.array(sorted(ids.unique()))
    train_mix = set(rng.choice(mixtures, size=N_TRAIN_MIXTURES, replace=False))
    is_train = ids.isin(train_mix)
    train, test = work / f"{name}_train.csv", work / f"{name}_test.csv"
    part[is_train].to_csv(train, index=False)
    part[~is_train].to_csv(test, index=False)
    return train, test, len(mixtures), int(is_train.sum()), int((~is_train).sum())


def _options(args):
    nuts = [str(x) for x in ("--chains", args.chains, "--warmup", args.warmup,
                             "--draws", args.draws, "--seed", args.seed)]
    return nuts, ["--seed", str(args.seed)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="13,14")
    parser.add_argument("--laws", default=None, help="restrict to these laws")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--methods", default="baseline,posterior")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep split files and fits here")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is absent (the paper's runs live in ../shared/data)")
        return 0
    tables = [int(t) for t in args.tables.split(",")]
    only = set(args.laws.split(",")) if args.laws else None
    targets = args.targets.split(",")
    methods = tuple(args.methods.split(","))
    nuts, search = _options(args)
    work = Path(args.keep or tempfile.mkdtemp(prefix="fixed_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(DATA)
    ids = _mixture_ids(frame)
    for table in tables:
        if table == 13:
            n_mix = frame.assign(mix=ids).groupby(["model_size", "n_tokens"])["mix"].nunique()
            key = _nearest(list(n_mix.index), n_mix.to_dict(), np.array([PAPER_N, PAPER_D]))
            rows = (frame["model_size"] == key[0]) & (frame["n_tokens"] == key[1])
            where = f"N = {key[0]:.4g}, D = {key[1]:.4g}"
        else:
            n_mix = frame.assign(mix=ids).groupby("model_size")["mix"].nunique()
            key = _nearest([(k,) for k in n_mix.index], {(k,): v for k, v in n_mix.items()},
                           np.array([PAPER_N]))
            rows = frame["model_size"] == key[0]
            where = f"N = {key[0]:.4g}, every D ({frame[rows]['n_tokens'].nunique()} values)"
        rng = np.random.default_rng([args.seed, table])  # a table's split is its own
        train, test, n_all, n_train, n_test = _split(frame, rows, rng, work, f"table{table}")
        print(f"\nTable {table} setup: {where}; {n_all} mixtures, {N_TRAIN_MIXTURES} to fit "
              f"({n_train} rows), {n_all - N_TRAIN_MIXTURES} held out ({n_test} rows); MRE %")
        print(f"{'target':<14}{'law':<19}" + "".join(f"{m + ' tr/te':>18}" for m in methods)
              + f"{'paper tr/te':>16}  convergence")
        laws = [law for law in LAWS[table] if only is None or law in only]
        results, conv = {}, {}
        for law in laws:
            dirs = fit_and_baseline(train, law, targets, work / f"table{table}", CLI_COLUMNS,
                                    nuts, search, methods)
            if "posterior" in dirs:
                conv[law] = convergence(dirs["posterior"])
            for method, fit_dir in dirs.items():
                tr = predict_frame(fit_dir, train, CLI_COLUMNS,
                                   work / f"t{table}_{law}_{method}_train.csv")
                te = predict_frame(fit_dir, test, CLI_COLUMNS,
                                   work / f"t{table}_{law}_{method}_test.csv")
                for target in targets:
                    results[law, method, target] = (target_mre(tr, target),
                                                    target_mre(te, target))
        for target in targets:
            for law in laws:
                cells = "".join(f"{results[law, m, target][0]:>9.2f}"
                                f"{results[law, m, target][1]:>9.2f}" for m in methods)
                paper = PAPER[table].get(law, {}).get(target)
                ptxt = f"{paper[0]:>8.2f}{paper[1]:>8.2f}" if paper else f"{'-':>16}"
                ctxt = format_convergence(conv[law][target]) if law in conv else ""
                print(f"{target:<14}{law:<19}{cells}{ptxt}  {ctxt}")
        for method in methods:
            means = {law: float(np.mean([results[law, method, t][1] for t in targets]))
                     for law in laws}
            print(f"mean test MRE ({method}): "
                  + ", ".join(f"{law} {v:.2f}" for law, v in sorted(means.items(),
                                                                      key=lambda kv: kv[1])))
    if args.keep:
        print(f"\nsplit files and fits in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
