"""``bayesmix compare`` on the paper's split: which law the runs prefer, and how the
posterior predictive intervals hold at the 2.718B eval runs.

Fits each law (default additive and joint) to every target with ``bayesmix fit``
(default settings) on N in {310M, 680M, 937M, 1.235B} (``bench/_paper.py``'s split),
then runs ``bayesmix compare FITS --heldout DATA --where EVAL`` twice, with
``--no-discrepancy`` (the law's own predictive) and with the learnt discrepancy (the
default; a fit made before ``bayesmix fit`` learnt it gets it added exactly as the
command would), and prints its tables:
PSIS-LOO per target with the ranking and stacking weights, then per target and pooled
over the 8 targets the eval MRE, signed error, 50 % and 90 % coverage, median relative
width of the 90 % interval and CRPS. Beside them: the paper's Table 4 ranking and the
calibration bars of issue 22 (90 % coverage 80-97 %, 50 % coverage 35-65 %, width at
most 5x the law's mean eval MRE), and last how far bar 1's figures would move by
chance alone were each predictive right (its own joint draws taken for the truth), and
how often a right predictive would meet the whole bar at this one held-out size.

Usage::

    python bench/paper_compare.py [--laws additive,joint] [--targets arxiv,book,...]
        [--keep DIR] [--reuse]

Reads ``../shared/data/dmsl_slimpajama``; exits 0 with a message when it is absent.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli_runs import convergence, fit_and_baseline, format_convergence, run_cli
from _paper import CLI_COLUMNS, COLUMNS, DATA, DOMAINS, EVAL_WHERE, TARGETS, TRAIN_WHERE

from bayesmix.scoring import HeldoutScore, chance_range, pool_scores, score_heldout

PAPER_TABLE4_LLM = {"simple": 1.70, "additive": 1.39, "joint": 1.30, "full": 1.21}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep fit directories here")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: keep the finished fits already there")
    parser.add_argument("--relearn", action="store_true",
                        help="learn the discrepancy of kept fits again (after a change "
                             "to bayesmix/calibrate.py)")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is absent (the paper's runs live in ../shared/data)")
        return 0
    laws, targets = args.laws.split(","), args.targets.split(",")
    work = Path(args.keep or tempfile.mkdtemp(prefix="paper_compare_"))
    work.mkdir(parents=True, exist_ok=True)
    train = [*CLI_COLUMNS, "--where", TRAIN_WHERE]
    dirs, seconds = {}, {}
    for law in laws:
        done = (work / f"{law}_fit" / "fit.json").is_file()
        t0 = time.perf_counter()
        dirs[law] = fit_and_baseline(DATA, law, targets, work, train,
                                     ["--seed", str(args.seed)], [], ("posterior",),
                                     reuse=args.reuse and bool(args.keep))["posterior"]
        seconds[law] = None if done and args.reuse else time.perf_counter() - t0
    for law in laws:
        took = "reused" if seconds[law] is None else f"{seconds[law]:.0f} s"
        print(f"{law} fit ({took}):")
        for target, conv in convergence(dirs[law]).items():
            print(f"  {target:<14} {format_convergence(conv)}")
    for law in laws:
        _ensure_discrepancy(dirs[law], args.seed, args.relearn)
    fits = [str(dirs[law]) for law in laws]
    print("\nthe paper's Table 4 (LLM, mean eval MRE % of 7 domains): "
          + " < ".join(f"{law} {v:.2f}" for law, v in sorted(PAPER_TABLE4_LLM.items(),
                                                               key=lambda kv: kv[1])))
    for variant, extra in (("law only (--no-discrepancy)", ["--no-discrepancy"]),
                           ("with the learnt discrepancy (default)", [])):
        out = work / ("compare" if extra else "compare_discrepancy")
        print(f"\n=== {variant}")
        run_cli("compare", *fits, "--heldout", DATA, *CLI_COLUMNS, "--where", EVAL_WHERE,
                "--seed", str(args.seed), "--out", out, *extra, quiet=False)
        _print_bars(json.loads((out / "comparison.json").read_text()))
    _bar1_by_chance([dirs[law] for law in laws], args.seed)
    print(f"fits and comparison in {work}")
    return 0


def _ensure_discrepancy(fit_dir: Path, seed: int, relearn: bool = False) -> None:
    """Add the discrepancy to a fit made before ``bayesmix fit`` learnt it, exactly as
    ``bayesmix fit --seed SEED`` does (same key, same training rows)."""
    import jax

    from bayesmix import load_runs
    from bayesmix.calibrate import learn_discrepancy
    from bayesmix.store import load_fit, save_fit

    jax.config.update("jax_enable_x64", True)  # as the CLI computes (bayesmix/cli.py)
    fit = load_fit(fit_dir)
    if not relearn and all(tf.discrepancy is not None for tf in fit.targets.values()):
        return
    table = load_runs(DATA, **COLUMNS, where=TRAIN_WHERE)
    t0 = time.perf_counter()
    learnt = learn_discrepancy(jax.random.fold_in(jax.random.key(seed), 1), fit, table)
    save_fit(fit.with_discrepancy(learnt), fit_dir)
    first = next(iter(learnt.values()))
    print(f"{fit_dir.name}: discrepancy learnt in {time.perf_counter() - t0:.0f} s "
          f"({'; '.join(first.folds)}): {first.summary()}")


BAR1 = {"90 % coverage": (0.80, 0.97), "50 % coverage": (0.35, 0.65),
        "width / MRE(7)": (0.0, 5.0)}
"""Issue 22's bar 1: each figure's allowed range."""


def _mre7(scores: list[HeldoutScore]) -> float:
    """The mean eval MRE of the 7 domains (the paper's Table 4 figure)."""
    return float(np.mean([s.mre for s in scores if s.target in DOMAINS]))


def _bar1(scores: list[HeldoutScore]) -> tuple[float, float, float]:
    """Bar 1's figures of one fit's targets: pooled 90 % and 50 % coverage, and the
    pooled median 90 % width over the mean MRE of the 7 domains (:data:`BAR1`'s order)."""
    pooled = pool_scores(scores, scores[0].label, "all")
    return pooled.cover90, pooled.cover50, pooled.width90 / _mre7(scores)


def _bar1_by_chance(fit_dirs: list[Path], seed: int) -> None:
    """Bar 1's figures as ``bayesmix compare --seed SEED`` scores them (with the
    discrepancy), beside their range when the predictive's own joint draws are taken
    for the truth (:func:`bayesmix.scoring.score_heldout`, :func:`chance_range`): how
    far each figure moves by chance alone at one held-out size were the predictive
    right, and on what share of those pseudo-truths a right predictive meets the
    whole bar."""
    import jax

    from bayesmix import load_runs
    from bayesmix.store import load_fit

    jax.config.update("jax_enable_x64", True)
    heldout = load_runs(DATA, **COLUMNS, where=EVAL_WHERE)
    fits = {d.name: load_fit(d).posteriors for d in fit_dirs}
    result = score_heldout(jax.random.key(seed), fits, heldout)
    print("\n=== bar 1 by chance alone (the predictive's own joint draws as the truth)")
    for label, truths in result.pseudo.items():
        observed = _bar1([s for s in result.scores if s.label == label])
        sims = np.array([_bar1(truth) for truth in truths])
        meets = np.all([(sims[:, i] >= lo) & (sims[:, i] <= hi)
                        for i, (lo, hi) in enumerate(BAR1.values())], axis=0)
        for i, name in enumerate(BAR1):
            lo, hi, p = chance_range(sims[:, i], observed[i])
            print(f"{label:<14} {name:<15} observed {observed[i]:6.3f}; by chance "
                  f"{lo:6.3f} to {hi:6.3f} (median {np.median(sims[:, i]):6.3f}), p {p:.2f}")
        print(f"{label:<14} a right predictive meets all of bar 1 on "
              f"{100 * np.mean(meets):.0f} % of {len(truths)} pseudo-truths")


def _print_bars(result: dict) -> None:
    """Bar 1's figures of each fit in ``bayesmix compare``'s JSON, and the LOO ranking."""
    pooled = [r for r in result["heldout"] if r["target"] == "all"]
    for row in pooled:
        scores = [HeldoutScore(**{**r, "coverage": tuple(r["coverage"].values())})
                  for r in result["heldout"]
                  if r["label"] == row["label"] and r["target"] != "all"]
        cov90, cov50, ratio = _bar1(scores)
        print(f"{row['law']}: mean eval MRE of the 7 domains {100 * _mre7(scores):.2f} %; "
              f"pooled over {row['rows']} rows 90 % coverage {100 * cov90:.0f} % (bar "
              f"80-97), 50 % {100 * cov50:.0f} % (bar 35-65), width "
              f"{100 * row['width90']:.2f} % = {ratio:.1f}x the MRE (bar <= 5)")
    ranked = [r for r in result["ranking"] if r["target"] == "all"]
    if ranked:
        print("LOO over all targets: " + " > ".join(
            f"{r['label']} ({r['elpd_diff']:.0f} ± {r['dse']:.0f} below the best)"
            if r["rank"] else r["label"] for r in ranked))


if __name__ == "__main__":
    raise SystemExit(main())
