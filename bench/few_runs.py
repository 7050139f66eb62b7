"""Few runs (Shukor et al. 2025, Fig. 5): baseline against the posterior median.

For q in {3, 5, 10, 20, 40}: draw q mixtures at random from the fit split's mixtures
(the small sizes, see ../shared/data/README.md), fit on the fit-split rows of those
mixtures only, and evaluate the MRE on the 2.718B rows (D >= 20B). The Huber
baseline (``bayesmix.baseline``) is compared with the posterior median of the
Bayesian fit (``bayesmix.fit.fit_target``; skipped with a message if that module is
missing or with ``--no-bayes``). Every repetition uses the same mixtures for both
methods. Prints, per q, the median and quartiles over repetitions of the eval MRE
averaged over the chosen targets.

Issue 4 done-when: at q <= 5 the posterior median has a lower median eval MRE than
the baseline.

Usage::

    python bench/few_runs.py [--law additive] [--targets c4 book ...] [--qs 3 5 10 20 40]
        [--reps 10] [--keep 15] [--hops 4] [--chains 2 --warmup 300 --draws 300] [--no-bayes]
        [--json out.json]

Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _paper import (
    DATA,
    DOMAINS,
    EVAL_WHERE,
    TRAIN_WHERE,
    add_search_options,
    data_present,
    load_paper_runs,
    median_mre,
    start_jax,
)


def subset(train, mixtures):
    """Rows of ``train`` whose mixture is one of ``mixtures``."""
    import numpy as np

    weights = np.round(train.weights, 6)
    keep = (weights[:, None, :] == mixtures[None]).all(-1).any(-1)
    return train.select(keep)


def quartiles(values) -> str:
    import numpy as np

    values = np.asarray([v for v in values if np.isfinite(v)])
    if values.size == 0:
        return "       -        "
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:6.2f} [{q1:5.2f}, {q3:5.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--law", default="additive")
    parser.add_argument("--targets", nargs="+", default=list(DOMAINS))
    parser.add_argument("--qs", nargs="+", type=int, default=[3, 5, 10, 20, 40])
    parser.add_argument("--reps", type=int, default=10)
    add_search_options(parser)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--no-bayes", action="store_true", help="run the baseline only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write every fit's MRE here")
    args = parser.parse_args(argv)
    if not data_present():
        print(f"few_runs: {DATA} is absent; nothing to do")
        return 0

    jax = start_jax(args.chains)
    import numpy as np

    from bayesmix._errors import BayesmixError
    from bayesmix.baseline import fit_target_baseline
    from bayesmix.laws import load_law

    fit_target = None
    if not args.no_bayes:
        try:
            from bayesmix.fit import fit_target
        except ImportError as exc:
            print(f"few_runs: no Bayesian fit available ({exc}); running the baseline only")

    law = load_law(args.law)
    train = load_paper_runs(TRAIN_WHERE)
    test = load_paper_runs(EVAL_WHERE)
    pool = np.unique(np.round(train.weights, 6), axis=0)
    rng = np.random.default_rng(args.seed)
    print(f"law {law.name}; targets {', '.join(args.targets)}; {len(pool)} fit-split mixtures; "
          f"{args.reps} repetitions; baseline keep {args.keep}, hops {args.hops}"
          + ("" if fit_target is None else
             f"; NUTS {args.chains} chains x {args.warmup}+{args.draws}"))
    records = []
    summary = {}
    for q in args.qs:
        if q > len(pool):
            print(f"q = {q}: only {len(pool)} mixtures in the fit split; skipped")
            continue
        per_rep = {"baseline": [], "posterior median": []}
        for rep in range(args.reps):
            chosen = pool[rng.choice(len(pool), size=q, replace=False)]
            table = subset(train, chosen)
            scores = {"baseline": [], "posterior median": []}
            for t_index, target in enumerate(args.targets):
                key = jax.random.fold_in(jax.random.key(args.seed), 1000 * q + 10 * rep + t_index)
                row = {"q": q, "rep": rep, "target": target, "rows": len(table.frame)}
                try:
                    start = time.perf_counter()
                    base = fit_target_baseline(key, law, table, target, n_random=args.starts,
                                               n_starts=args.keep, n_hops=args.hops)
                    row["baseline"] = median_mre(base.to_posterior(law), test, target)
                    row["baseline_seconds"] = time.perf_counter() - start
                    if fit_target is not None:
                        start = time.perf_counter()
                        fitted = fit_target(key, law, table, target, chains=args.chains,
                                            warmup=args.warmup, draws=args.draws)
                        row["posterior median"] = median_mre(fitted.posterior, test, target)
                        row["bayes_seconds"] = time.perf_counter() - start
                except BayesmixError as exc:  # e.g. fewer rows than parameters
                    row["error"] = str(exc)
                records.append(row)
                for method in scores:
                    if method in row:
                        scores[method].append(row[method])
            for method, values in scores.items():
                if len(values) == len(args.targets):
                    per_rep[method].append(float(np.mean(values)))
            print(f"q = {q:2d}, rep {rep}: {len(table.frame)} rows; eval MRE % "
                  + ", ".join(f"{m} {np.mean(v):.3f}" for m, v in scores.items() if v),
                  flush=True)
        summary[q] = per_rep
    print("\neval MRE (%) on 2.718B, mean over targets; median [25 %, 75 %] over repetitions")
    print(f"{'q':>4}  {'baseline':<22}{'posterior median':<22}")
    for q, per_rep in summary.items():
        print(f"{q:>4}  {quartiles(per_rep['baseline']):<22}"
              f"{quartiles(per_rep['posterior median']):<22}")
    small = [q for q in summary if q <= 5]
    if fit_target is not None and small:
        wins = [
            np.median(summary[q]["posterior median"]) < np.median(summary[q]["baseline"])
            for q in small if summary[q]["posterior median"] and summary[q]["baseline"]
        ]
        print(f"posterior median better at q <= 5: {'yes' if wins and all(wins) else 'no'}")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
