"""Does the paper's own method, on its own runs, give its Table 16 h*? (Shukor et al. 2025)

Issue 5 asks that the paper's h*_avg lie inside the posterior's 90 % intervals. This
script asks the prior question: which h* does the paper's point method (the Huber
baseline, ``bayesmix.baseline``, additive law) give on the paper's runs, and does the
answer depend on which rows it is fitted on or on the search's seed?

For every row subset below (and every ``--seeds`` value) it fits the Huber baseline
to the 7 domains and OpenHermes, solves h*_avg (mean of the 7 domain losses) and
h*_OH (OpenHermes loss) by mirror descent (``bayesmix.decision.decide``; the additive
law's h* does not depend on N or D), and prints h* beside the paper's Table 16 with
the L1 distance.

Subsets: the paper split (../shared/data/README.md); the four fit sizes at every D;
every size but 2.718B; every row.

Usage::

    python bench/hstar_subsets.py [--seeds 0 1 2] [--json out.json]

Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from _paper import (
    DATA,
    DOMAINS,
    EVAL_D,
    EVAL_N,
    PAPER_AVG,
    PAPER_OH,
    TARGETS,
    TRAIN_WHERE,
    data_present,
    load_paper_runs,
    start_jax,
)

SUBSETS = {
    "paper split": TRAIN_WHERE,
    "fit sizes, every D": "N >= 310e6 and N <= 1235e6",
    "every size but 2.718B": "N <= 1235e6",
    "every row": None,
}
OBJECTIVES = {
    "h*_avg": ({d: 1 / 7 for d in DOMAINS}, PAPER_AVG),
    "h*_OH": ({"openhermes": 1.0}, PAPER_OH),
}


def baseline_optima(seed: int, where: str | None) -> tuple[int, dict[str, np.ndarray]]:
    """Rows used and the Huber baseline's h* per objective, fitted on ``where``."""
    import jax

    from bayesmix.baseline import baseline_fit
    from bayesmix.decision import decide
    from bayesmix.laws import load_law

    law = load_law("additive")
    table = load_paper_runs(where)
    results = baseline_fit(jax.random.key(seed), law, table, list(TARGETS))
    point = {target: result.to_posterior(law) for target, result in results.items()}
    optima = {name: decide(point, EVAL_N, EVAL_D, target_weights=weights).h_bayes
              for name, (weights, _) in OBJECTIVES.items()}
    return len(table.frame), optima


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)
    if not data_present():
        print(f"skipping: {DATA} not found (see ../shared/data/README.md)")
        return 0
    start_jax()
    fits = []
    for subset, where in SUBSETS.items():
        for seed in args.seeds:
            t0 = time.perf_counter()
            rows, optima = baseline_optima(seed, where)
            print(f"  {subset}, seed {seed}: {rows} rows, fitted and solved in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            fits.append((subset, seed, rows, optima))
    header = "subset                  seed  rows  " + " ".join(f"{d[:6]:>6}" for d in DOMAINS)
    out = []
    for name, (_, paper) in OBJECTIVES.items():
        print(f"\n{name} (%), the paper's Table 16 first; L1 = distance to the paper's h*")
        print(header + "     L1")
        print(f"{'paper (Table 16)':36s}" + " ".join(f"{100 * x:6.1f}" for x in paper))
        for subset, seed, rows, optima in fits:
            h = optima[name]
            l1 = float(np.abs(h - np.asarray(paper)).sum())
            print(f"{subset:22s} {seed:5d} {rows:5d}  "
                  + " ".join(f"{100 * x:6.1f}" for x in h) + f"  {l1:.3f}")
            out.append({"objective": name, "subset": subset, "seed": seed, "rows": rows,
                        "h_star": h.tolist(), "l1_to_paper": l1})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
