"""The paper's Huber baseline on the paper's LLM runs (Shukor et al. 2025, Table 8).

Fit split (see ../shared/data/README.md): N in {310M, 680M, 937M, 1.235B} with
D >= {4, 7, 7, 13} B tokens (1534 rows); evaluation on N = 2.718B with D >= 20B
(40 rows). For the additive and joint laws and all 8 targets, prints the train and
eval MRE beside the paper's, and the seconds per target (to the best Huber value and
in total, compile and random search included).

Done-when checks (issue 4): train MRE per domain <= 1.2 x paper; eval MRE averaged
over the 7 domains <= 1.39 % (additive) / 1.30 % (joint); <= 30 s per target to the
best value. They are judged on the first seed's fits.

With several ``--seeds`` the whole fit is repeated per seed (random search and
basin-hopping steps differ) and a spread table follows each law: per target and
seed, the Huber value's excess over the best of all seeds (%) and the eval MRE; the
mean eval MRE per seed; and the mean eval MRE of the best-Huber fit per target over
all seeds (what a multi-restart fit would report). It measures how much the eval
figure depends on where the optimiser stops rather than on the training objective.

Usage::

    python bench/paper_baseline.py [--laws additive joint] [--targets c4 ...]
        [--starts 4000] [--keep 15] [--hops 4] [--seeds 0 [1 2 ...]] [--json out.json]

Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _paper import (
    DATA,
    DOMAINS,
    EVAL_TARGET,
    EVAL_WHERE,
    PAPER_MRE,
    TRAIN_WHERE,
    add_search_options,
    data_present,
    load_paper_runs,
    median_mre,
    start_jax,
)

from bayesmix.baseline import STEP_SIZE, TEMPERATURE

SECONDS_TARGET = 30.0


def seed_spread(rows: list[dict], targets: list[str], seeds: list[int], bar: float) -> None:
    """Print one law's fits across seeds: Huber excess over the best seed / eval MRE."""
    import numpy as np

    by = {(r["target"], r["seed"]): r for r in rows}
    print("\nspread over seeds: Huber excess over the best seed (%) / eval MRE (%)")
    print(f"{'target':<14}" + "".join(f"{'seed ' + str(s):>15}" for s in seeds)
          + f"{'eval range':>14}")
    best_evals = []
    for target in targets:
        fits = [by[target, s] for s in seeds]
        best = min(fits, key=lambda r: r["huber"])
        if target in DOMAINS:
            best_evals.append(best["eval_mre"])
        evals = [r["eval_mre"] for r in fits]
        print(f"{target:<14}" + "".join(
            f"{100 * (r['huber'] / best['huber'] - 1):>8.2f}/{r['eval_mre']:<6.2f}"
            for r in fits) + f"{min(evals):>7.2f}-{max(evals):<6.2f}")
    means = [np.mean([by[t, s]["eval_mre"] for t in targets if t in DOMAINS]) for s in seeds]
    print(f"{'mean eval':<14}" + "".join(f"{m:>15.3f}" for m in means))
    if len(best_evals) == len(DOMAINS):
        print(f"mean eval of the best-Huber fit per target over {len(seeds)} seeds: "
              f"{np.mean(best_evals):.3f} % (Table 4: {bar:.2f} %); per-seed means "
              f"{min(means):.3f}-{max(means):.3f} %")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="+", default=["additive", "joint"])
    parser.add_argument("--targets", nargs="+", default=None)
    add_search_options(parser)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--step-size", type=float, default=STEP_SIZE)
    parser.add_argument("--temperature", type=float, default=TEMPERATURE)
    parser.add_argument("--residuals", choices=("log", "raw"), default="log",
                        help="Huber on log-loss (default) or raw-loss residuals")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="one fit per seed; checks use the first, a spread table the rest")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if not data_present():
        print(f"paper_baseline: {DATA} is absent; nothing to do")
        return 0

    jax = start_jax()
    import numpy as np

    from bayesmix.baseline import fit_target_baseline
    from bayesmix.laws import load_law

    train = load_paper_runs(TRAIN_WHERE)
    test = load_paper_runs(EVAL_WHERE)
    targets = args.targets or list(train.targets)
    print(f"train rows {len(train.frame)}, eval rows {len(test.frame)}; "
          f"starts {args.starts}, keep {args.keep}, hops {args.hops}, "
          f"seeds {' '.join(map(str, args.seeds))}, {args.residuals} residuals")
    rows = []
    ok = True
    for law_name in args.laws:
        law = load_law(law_name)
        paper = PAPER_MRE.get(law_name, {})
        for seed in args.seeds:
            print(f"\n== {law_name}, seed {seed} ==")
            print(f"{'target':<14}{'train %':>9}{'paper':>7}{'eval %':>9}{'paper':>7}"
                  f"{'huber':>11}{'L-BFGS':>8}{'s best':>8}{'s total':>9}  status")
            for index, target in enumerate(targets):
                result = fit_target_baseline(
                    jax.random.fold_in(jax.random.key(seed), index), law, train, target,
                    n_random=args.starts, n_starts=args.keep, n_hops=args.hops,
                    step_size=args.step_size, temperature=args.temperature,
                    patience=args.patience, residuals=args.residuals,
                )
                posterior = result.to_posterior(law)
                train_mre = median_mre(posterior, train, target)
                eval_mre = median_mre(posterior, test, target)
                p_train, p_eval = paper.get(target, (float("nan"), float("nan")))
                rows.append({"law": law_name, "seed": seed, "target": target,
                             "train_mre": train_mre, "eval_mre": eval_mre,
                             "paper_train": p_train, "paper_eval": p_eval,
                             "huber": result.huber, "n_lbfgs_calls": result.n_lbfgs_calls,
                             "seconds_to_best": result.seconds_to_best,
                             "seconds": result.seconds, "success": result.success})
                flags = []
                if np.isfinite(p_train) and train_mre > 1.2 * p_train:
                    flags.append("train > 1.2x paper")
                if result.seconds_to_best > SECONDS_TARGET:
                    flags.append("slow")
                print(f"{target:<14}{train_mre:>9.3f}{p_train:>7.2f}{eval_mre:>9.3f}"
                      f"{p_eval:>7.2f}{result.huber:>11.3e}{result.n_lbfgs_calls:>8d}"
                      f"{result.seconds_to_best:>8.1f}{result.seconds:>9.1f}  "
                      f"{'ok' if result.success else result.message}"
                      f"{'  <-- ' + ', '.join(flags) if flags else ''}", flush=True)
                ok &= not flags or seed != args.seeds[0]
            law_rows = [r for r in rows if r["law"] == law_name and r["seed"] == seed
                        and r["target"] in paper]
            if law_rows:
                mean_eval = float(np.mean([r["eval_mre"] for r in law_rows]))
                mean_paper = float(np.mean([r["paper_eval"] for r in law_rows]))
                mean_train = float(np.mean([r["train_mre"] for r in law_rows]))
                target_eval = EVAL_TARGET.get(law_name, float("inf"))
                met = mean_eval <= target_eval
                if seed == args.seeds[0]:
                    ok &= met or len(law_rows) < 7
                print(f"mean over {len(law_rows)} domains: train {mean_train:.3f} %, eval "
                      f"{mean_eval:.3f} % (paper table mean {mean_paper:.2f} %, Table 4 "
                      f"{target_eval:.2f} %) -> {'met' if met else 'NOT met'}")
        if len(args.seeds) > 1:
            seed_spread([r for r in rows if r["law"] == law_name], targets, args.seeds,
                        EVAL_TARGET.get(law_name, float("nan")))
    print(f"\nall done-when checks {'met' if ok else 'NOT all met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
