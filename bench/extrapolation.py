"""Extrapolation error by step: are the 2.718B runs on the trend of the smaller sizes?

The paper split trains on N in {310M, 680M, 937M, 1.235B} and evaluates at 2.718B.
This script asks whether the error there could have been foreseen from the training
sizes alone, by holding out the largest training size. For every target it fits the
law (Bayesian, default NUTS settings, in process; and the Huber baseline) on two
training sets and evaluates each fit one size up:

- ``3 -> 1.2B``: fit on {310M, 680M, 937M} (the paper split's rows at those sizes),
  evaluate on N = 1.235B with D >= 13B (the paper split's 1.235B rows);
- ``3 -> 2.7B``: the same fit, evaluated on N = 2.718B with D >= 20B;
- ``4 -> 2.7B``: the paper split's fit, evaluated on N = 2.718B with D >= 20B.

Per target and step it prints the bias (mean of ``(pred - obs) / obs``, %) and the
MRE (%) of the posterior-median prediction, the share of rows inside the 90 %
posterior-predictive interval, and the baseline's bias; then the mean over the 7
domains, and that mean bias per unit of log N beyond the largest fitted size
(``ln(N_eval / N_max)``). If the bias per unit of log N is about the same at every
step, the held-out step measures what a discrepancy term for the error at 2.718B
would need; if the 2.718B steps are far off it, no training size could have.

Usage::

    python bench/extrapolation.py [--law additive] [--targets arxiv github ...]
        [--chains 4 --warmup W --draws S] [--seed 0]

Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import sys
import time

from _paper import (
    DATA,
    DOMAINS,
    EVAL_WHERE,
    TARGETS,
    TRAIN_WHERE,
    add_nuts_options,
    coverage_90,
    data_present,
    law_mean_draws,
    load_paper_runs,
    start_jax,
)

TRAIN_3 = "(N == 310e6 and D >= 3.99e9) or (N == 680e6 and D >= 7e9) or (N == 937e6 and D >= 7e9)"
HELD_OUT = "N == 1235e6 and D >= 13e9"
STEPS = (("3 -> 1.2B", "3", "1.2B"), ("3 -> 2.7B", "3", "2.7B"), ("4 -> 2.7B", "4", "2.7B"))
N_MAX = {"3": 937e6, "4": 1235e6}  # largest fitted size of each training set
N_EVAL = {"1.2B": 1235e6, "2.7B": 2718e6}


def errors(posterior, table, target, coverage: bool = False) -> dict[str, float]:
    """Bias and MRE (%) of the median prediction; with ``coverage``, the share (%) of
    rows inside the 90 % PP interval."""
    import numpy as np

    mean, loss = law_mean_draws(posterior, table, target)
    relative = (np.median(mean, axis=0) - loss) / loss
    out = {"bias": float(100 * np.mean(relative)), "mre": float(100 * np.mean(np.abs(relative)))}
    if coverage:
        out["coverage"] = 100 * coverage_90(posterior, mean, loss)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--law", default="additive")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    add_nuts_options(parser)
    args = parser.parse_args(argv)
    if not data_present():
        print(f"extrapolation: {DATA} is absent; nothing to do")
        return 0
    jax = start_jax(args.chains)
    import numpy as np

    from bayesmix.baseline import fit_target_baseline
    from bayesmix.fit import fit
    from bayesmix.laws import load_law

    law = load_law(args.law)
    train = {"3": load_paper_runs(TRAIN_3), "4": load_paper_runs(TRAIN_WHERE)}
    evaluate = {"1.2B": load_paper_runs(HELD_OUT), "2.7B": load_paper_runs(EVAL_WHERE)}
    print(f"law {args.law}; fit rows: 3 sizes {len(train['3'].frame)}, 4 sizes "
          f"{len(train['4'].frame)}; eval rows: 1.235B {len(evaluate['1.2B'].frame)}, 2.718B "
          f"{len(evaluate['2.7B'].frame)}; {args.chains} chains x {args.draws} draws")
    print("each cell: bias % / MRE % / 90 % coverage % (posterior median and predictive), "
          "then the Huber baseline's bias %")
    print(f"{'target':<14}" + "".join(f"{name:>30}" for name, _, _ in STEPS) + f"{'s':>6}")
    table = np.full((len(args.targets), len(STEPS), 4), np.nan)
    for row, target in enumerate(args.targets):
        t0 = time.perf_counter()
        key = jax.random.fold_in(jax.random.key(args.seed), row)
        posterior, point = {}, {}
        for fit_set, runs in train.items():
            result = fit(key, law, runs, [target], seed=args.seed, chains=args.chains,
                         warmup=args.warmup, draws=args.draws)
            for warning in result.targets[target].warnings:
                print(f"  ({target}, {fit_set} sizes: {warning})")
            posterior[fit_set] = result.posteriors[target]
            point[fit_set] = fit_target_baseline(key, law, runs, target).to_posterior(law)
        cells = []
        for col, (_, fit_set, size) in enumerate(STEPS):
            bayes = errors(posterior[fit_set], evaluate[size], target, coverage=True)
            huber = errors(point[fit_set], evaluate[size], target)
            table[row, col] = bayes["bias"], bayes["mre"], bayes["coverage"], huber["bias"]
            cells.append(f"{bayes['bias']:+6.2f}/{bayes['mre']:5.2f}/{bayes['coverage']:4.0f}"
                         f" {huber['bias']:+6.2f}")
        print(f"{target:<14}" + "".join(f"{c:>30}" for c in cells)
              + f"{time.perf_counter() - t0:>6.0f}", flush=True)
    domains = [i for i, t in enumerate(args.targets) if t in DOMAINS]
    if domains:
        mean = table[domains].mean(axis=0)
        print(f"{'mean (domains)':<14}" + "".join(
            f"{f'{m[0]:+6.2f}/{m[1]:5.2f}/{m[2]:4.0f} {m[3]:+6.2f}':>30}" for m in mean))
        per_log_n = [m[0] / np.log(N_EVAL[size] / N_MAX[fit_set])
                     for m, (_, fit_set, size) in zip(mean, STEPS, strict=True)]
        print(f"{'bias / ln N':<14}" + "".join(f"{f'{b:+6.2f}':>30}" for b in per_log_n)
              + "   (mean bias per unit of log N beyond the largest fitted size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
