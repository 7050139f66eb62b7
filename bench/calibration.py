"""Calibration on simulated runs: the law right, and the law wrong (issue 22, bar 3).

For each scenario and seed: ``bayesmix simulate`` six model sizes (100M to 3.2B, the
default design otherwise: 3 domains, 12 mixtures, 4 token counts per size, 0.3 %
row noise), ``bayesmix fit`` the additive law (default settings, discrepancy learnt)
on the four smallest sizes, ``bayesmix predict`` every row with and without the
discrepancy, and report the 50 % and 90 % posterior predictive coverage and the
median relative 90 % width inside the training range, one size beyond (1.6B) and two
sizes beyond (3.2B), pooled over the 3 targets.

Scenarios: ``right`` simulates from the additive law's prior (seeded), ``wrong``
simulates from the joint law's prior (interaction between scale and mixture that the
additive law lacks) and fits additive.

Usage::

    python bench/calibration.py [--seeds 0,1] [--scenarios right,wrong] [--keep DIR]
        [--tokens-per-param 20]

``--tokens-per-param`` replaces the 4 token counts per size by its own (one value: a
Chinchilla-style design, one token count per size, so that ``N`` and ``D`` grow
together and the folds cannot tell the law's error in one from the other).

Bars (issue 22): right law 85-95 % at one and two sizes beyond; wrong law >= 80 %.
Last, per scenario and size beyond, the pooled coverage with the discrepancy beside
the range it would take by chance alone over these seeds were the predictive right.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _cli_runs import run_cli

from bayesmix.scoring import LEVELS, chance_range, pool_scores, score_heldout

SIZES = "1e8,2e8,4e8,8e8,1.6e9,3.2e9"
TRAIN = "N < 1e9"
SCENARIOS = {"right": "additive", "wrong": "joint"}
BEYOND = {"one beyond": 1.6e9, "two beyond": 3.2e9}
"""The sizes beyond the training range (the last two of :data:`SIZES`)."""
GROUPS = {"inside": lambda n: n < 1e9,
          **{group: (lambda n, size=size: n == size) for group, size in BEYOND.items()}}


def scores(frame: pd.DataFrame, targets: list[str]) -> dict[str, tuple[float, float, float]]:
    """``{group: (cover50, cover90, median width90)}`` pooled over ``targets``."""
    out = {}
    for group, select in GROUPS.items():
        rows = frame[select(frame["N"].to_numpy(float))]
        c50, c90, width = [], [], []
        for t in targets:
            y = rows[f"loss_{t}"]
            c90 += list((y >= rows[f"{t}_pp_q05"]) & (y <= rows[f"{t}_pp_q95"]))
            c50 += list((y >= rows[f"{t}_pp_q25"]) & (y <= rows[f"{t}_pp_q75"]))
            width += list((rows[f"{t}_pp_q95"] - rows[f"{t}_pp_q05"]) / rows[f"{t}_median"])
        out[group] = (float(np.mean(c50)), float(np.mean(c90)), float(np.median(width)))
    return out


def _relearn(fit_dir: Path, runs: Path, seed: int) -> None:
    import jax

    from bayesmix import load_runs
    from bayesmix.calibrate import learn_discrepancy
    from bayesmix.store import load_fit, save_fit

    jax.config.update("jax_enable_x64", True)  # as the CLI computes (bayesmix/cli.py)
    fit = load_fit(fit_dir)
    learnt = learn_discrepancy(jax.random.fold_in(jax.random.key(seed), 1), fit,
                               load_runs(runs, where=TRAIN))
    save_fit(fit.with_discrepancy(learnt), fit_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--scenarios", default="right,wrong")
    parser.add_argument("--keep", default=None)
    parser.add_argument("--tokens-per-param", default=None,
                        help="checkpoints D/N of every size (simulate's option; its "
                             "default design when not given)")
    parser.add_argument("--relearn", action="store_true",
                        help="learn the discrepancy of kept fits again, as `bayesmix fit "
                             "--seed SEED` would (after a change to bayesmix/calibrate.py)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="calibration_"))
    work.mkdir(parents=True, exist_ok=True)
    targets = ["d0", "d1", "d2"]
    table = []
    for scenario in args.scenarios.split(","):
        for seed in args.seeds.split(","):
            base = work / f"{scenario}_{seed}"
            base.mkdir(exist_ok=True)
            runs = base / "runs.csv"
            design = ([] if args.tokens_per_param is None
                      else ["--tokens-per-param", args.tokens_per_param])
            run_cli("simulate", "--law", SCENARIOS[scenario], "--domains", 3, "--seed", seed,
                    "--sizes", SIZES, *design, "--out", runs)
            if not (base / "fit" / "fit.json").is_file():
                run_cli("fit", runs, "--law", "additive", "--all-targets", "--where", TRAIN,
                        "--seed", seed, "--out", base / "fit", quiet=False)
            elif args.relearn:
                _relearn(base / "fit", runs, int(seed))
            for variant, extra in (("discrepancy", []), ("law only", ["--no-discrepancy"])):
                out = base / f"pred_{variant.replace(' ', '_')}.csv"
                run_cli("predict", base / "fit", "--runs", runs, "--out", out, *extra)
                for group, (c50, c90, w) in scores(pd.read_csv(out), targets).items():
                    table.append((scenario, seed, variant, group, c50, c90, w))
    print(f"\n{'scenario':<8} {'seed':>4} {'predictive':<12} {'rows':<11} {'50 %':>6} "
          f"{'90 %':>6} {'width90':>8}")
    for scenario, seed, variant, group, c50, c90, w in table:
        print(f"{scenario:<8} {seed:>4} {variant:<12} {group:<11} {100 * c50:5.1f}% "
              f"{100 * c90:5.1f}% {100 * w:7.2f}%")
    print("\npooled over seeds:")
    frame = pd.DataFrame(table, columns=["scenario", "seed", "variant", "group", "c50", "c90",
                                         "width"])
    pooled = frame.groupby(["scenario", "variant", "group"], sort=False)[
        ["c50", "c90", "width"]].mean()
    print((100 * pooled).round(1).to_string())
    print("\nbars: right law 85-95 % at one and two sizes beyond; wrong law >= 80 %")
    for scenario in args.scenarios.split(","):
        _by_chance(work, scenario, args.seeds.split(","))
    return 0


def _by_chance(work: Path, scenario: str, seeds: list[str]) -> None:
    """The pooled coverage beyond the training range with the discrepancy, as
    :func:`bayesmix.scoring.score_heldout` scores it, beside its 5-95 % range when
    each fit's own predictive draws are taken for the truth (pseudo-truth ``r`` of
    every seed pooled, as the observed rows are): how far the pooled figure moves by
    chance alone over these seeds were the predictive right."""
    import jax

    from bayesmix import load_runs
    from bayesmix.store import load_fit

    jax.config.update("jax_enable_x64", True)
    for group, size in BEYOND.items():
        observed, truths = [], []
        for seed in seeds:
            base = work / f"{scenario}_{seed}"
            where = f"N == {size}"
            result = score_heldout(jax.random.key(int(seed)),
                                   {"fit": load_fit(base / "fit").posteriors},
                                   load_runs(base / "runs.csv", where=where))
            observed += result.scores
            truths = (result.pseudo["fit"] if not truths else
                      [a + b for a, b in zip(truths, result.pseudo["fit"], strict=False)])
        pooled = pool_scores(observed, "fit", "all")
        for level, name in ((0.9, "90 %"), (0.5, "50 %")):
            sims = np.array([pool_scores(t, "fit", "all").coverage[LEVELS.index(level)]
                             for t in truths])
            seen = pooled.coverage[LEVELS.index(level)]
            lo, hi, p = chance_range(sims, seen)
            print(f"{scenario} {group}, {name} coverage pooled over {len(seeds)} seeds: "
                  f"{100 * seen:.1f} %; by chance {100 * lo:.1f} to {100 * hi:.1f} % (median "
                  f"{100 * np.median(sims):.1f} %), p {p:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
