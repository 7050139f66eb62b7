"""Profile of the paper's Huber objective in E, and what it does to eval MRE at 2.718B.

The eval-MRE bars of issues 3 and 4 (Table 4: 1.39 % additive, 1.30 % joint) compare
our fits with the paper's point fit of the same runs. This script measures how well
the runs pin the irreducible loss ``E``: for every domain target it fits the Huber
baseline once freely (``E >= 0``, as ``bench/paper_baseline.py`` does) and then with
``E`` held at each value of a grid (``fit_target_baseline(..., fixed={"E": e})``;
negative values allowed; each point of the grid also starts from its neighbour's
optimum), and prints, per target and ``E``, the Huber value's excess
over the free fit (%) and the eval MRE (%) on the 2.718B rows. The last lines give
the mean eval MRE over the 7 domains at each ``E`` beside the paper's Table 4 figure,
and how many targets' law predicts a negative loss at N, D -> infinity (uniform
mixture), which no real loss can reach.

Split as in ../shared/data/README.md (fit on N in {310M, 680M, 937M, 1.235B} with
D >= {4, 7, 7, 13}B; evaluate on N = 2.718B with D >= 20B).

Usage::

    python bench/profile_e.py [--laws additive joint] [--grid 0,-0.5,-1,-2,-4,-8,-16]
        [--targets arxiv ...] [--starts 4000] [--keep 15] [--hops 4] [--seed 0]

Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import sys

from _paper import (
    DATA,
    DOMAINS,
    EVAL_TARGET,
    EVAL_WHERE,
    TRAIN_WHERE,
    add_search_options,
    data_present,
    load_paper_runs,
    median_mre,
    start_jax,
)

FAR = 1e40  # N and D "at infinity": every power-law term has vanished


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="+", default=["additive", "joint"])
    parser.add_argument("--grid", default="0,-0.5,-1,-2,-4,-8,-16",
                        help="values of E to hold (comma-separated)")
    parser.add_argument("--targets", nargs="+", default=list(DOMAINS))
    add_search_options(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not data_present():
        print(f"profile_e: {DATA} is absent; nothing to do")
        return 0
    jax = start_jax()
    import numpy as np

    from bayesmix.baseline import fit_target_baseline
    from bayesmix.laws import load_law
    from bayesmix.predict import predict_draws

    grid = [float(v) for v in args.grid.split(",")]
    train = load_paper_runs(TRAIN_WHERE)
    test = load_paper_runs(EVAL_WHERE)
    k = len(train.domains)
    uniform = np.full((1, k), 1.0 / k)
    columns = ["free", *(f"E={e:g}" for e in grid)]
    options = {"n_random": args.starts, "n_starts": args.keep, "n_hops": args.hops}
    print(f"train rows {len(train.frame)}, eval rows {len(test.frame)}; starts {args.starts}, "
          f"keep {args.keep}, hops {args.hops}, seed {args.seed}")
    print("each cell: Huber excess over the free fit (%) / eval MRE at 2.718B (%)")
    for law_name in args.laws:
        law = load_law(law_name)
        evals = np.zeros((len(args.targets), len(columns)))
        negative = np.zeros(len(columns), int)
        print(f"\n== {law_name} ==")
        print(f"{'target':<14}" + "".join(f"{c:>14}" for c in columns) + f"{'free E':>9}")
        for row, target in enumerate(args.targets):
            key = jax.random.fold_in(jax.random.key(args.seed), row)
            results = [fit_target_baseline(key, law, train, target, **options)]
            for e in grid:  # continuation: each point starts from its neighbour's optimum
                results.append(fit_target_baseline(key, law, train, target, fixed={"E": e},
                                                   init=results[-1].sites, **options))
            cells = []
            for col, result in enumerate(results):
                posterior = result.to_posterior(law)
                evals[row, col] = median_mre(posterior, test, target)
                far = predict_draws(posterior, [FAR], [FAR], uniform)[0, 0]
                negative[col] += far < 0
                excess = 100 * (result.huber / results[0].huber - 1)
                cells.append(f"{excess:+6.2f}/{evals[row, col]:5.2f}")
            print(f"{target:<14}" + "".join(f"{c:>14}" for c in cells)
                  + f"{float(results[0].params['E']):>9.3f}", flush=True)
        print(f"{'mean eval':<14}" + "".join(f"{m:>14.2f}" for m in evals.mean(axis=0))
              + f"   (paper, Table 4: {EVAL_TARGET.get(law_name, float('nan')):.2f})")
        print(f"{'L(inf) < 0':<14}" + "".join(f"{n:>14d}" for n in negative)
              + f"   (of {len(args.targets)} targets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
