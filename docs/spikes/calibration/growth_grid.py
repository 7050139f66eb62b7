"""The growth exponent's support: ``p`` on [1, 2] (shipped) against [0.5, 2], on
Hoffmann et al.'s runs, per cut and per held-out bin.

Reads the fits of ``bench/chinchilla_extrapolation.py --keep DIR`` (the Chinchilla law
below 0.5B, 1B and 2.5B), refits each fit's nested size folds once as ``bayesmix fit
--seed SEED`` does (cached beside the fits as ``residuals_fit_*.pkl``, shared with
``chinchilla_length.py``), then for each grid of ``p`` learns the term from the same
residuals, draws it as ``bayesmix fit`` does, and scores the larger runs in the
benchmark's bins as ``bayesmix compare --heldout`` does: the posterior of ``p``, 50 %
and 90 % coverage, MRE, median 90 % width and its ratio to the MRE.

Usage::

    python docs/spikes/calibration/growth_grid.py DIR [--seed 0] [--paper DIR2]

``--paper DIR2`` also scores ``bench/paper_compare.py --keep DIR2``'s two fits at
2.718B (their residuals cached as ``DIR2/residuals_LAW.pkl``).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from chinchilla import canonical_table  # noqa: E402
from chinchilla_extrapolation import _bins  # noqa: E402

from bayesmix import calibrate, foldposterior, load_runs  # noqa: E402
from bayesmix.scoring import LEVELS, heldout_scores  # noqa: E402
from bayesmix.store import load_fit  # noqa: E402

GRIDS = {"[1, 2] (shipped)": np.linspace(1.0, 2.0, 5),
         "[0.5, 2]": np.linspace(0.5, 2.0, 7)}


def _residuals(cache: Path, key: jax.Array, fit, table):
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    residuals = calibrate.fold_residuals(key, fit, table)
    cache.write_bytes(pickle.dumps(residuals))
    return residuals


def _scored(key_draw, fit, table, residuals, heldout) -> list[str]:
    """The posterior of ``p`` (first target's; the grid's ``p`` is shared) and every
    target's scores per held-out bin, then the rows' pooled coverage."""
    post = foldposterior.hyper_posterior(residuals)
    p = next(iter(post.values())).sum(axis=(0, 2, 3, 4))
    grid = foldposterior.GROWTH_GRID
    said = [f"p {' '.join(f'{g:.2f}:{w:.2f}' for g, w in zip(grid, p, strict=True))}"]
    learnt = calibrate.discrepancies(key_draw, fit, table, residuals)
    posteriors = {"fit": fit.with_discrepancy(learnt).posteriors}
    i50, i90 = LEVELS.index(0.5), LEVELS.index(0.9)
    for name, where in heldout:
        scores = heldout_scores(jax.random.key(0), posteriors, where)
        for s in scores:
            said.append(f"  {name} {s.target}: {s.rows} rows, cov50 "
                        f"{100 * s.coverage[i50]:.0f} %, cov90 {100 * s.coverage[i90]:.0f} %,"
                        f" MRE {100 * s.mre:.2f} %, width90 {100 * s.width90:.2f} % "
                        f"({s.width90 / s.mre:.1f}x)")
        if len(scores) > 1:
            rows = np.array([s.rows for s in scores])
            cov = np.array([[s.coverage[i50], s.coverage[i90]] for s in scores])
            pooled = rows @ cov / rows.sum()
            said.append(f"  {name} pooled: cov50 {100 * pooled[0]:.1f} %, cov90 "
                        f"{100 * pooled[1]:.1f} %, median width90 "
                        f"{100 * np.median([s.width90 for s in scores]):.2f} % (median of "
                        f"the targets'), mean MRE {100 * np.mean([s.mre for s in scores]):.2f} %")
    return said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper", type=Path)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)  # as the CLI computes (bayesmix/cli.py)
    key_fit, key_draw = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), 1))
    shipped = foldposterior.GROWTH_GRID
    runs = canonical_table(args.dir)
    every = load_runs(runs)
    sizes = np.unique(every.frame["N"].to_numpy())
    cases = []
    for fit_dir in sorted(args.dir.glob("fit_*")):
        cut = float(fit_dir.name.removeprefix("fit_"))
        fit = load_fit(fit_dir)
        table = every.select(f"N < {cut}")
        residuals = _residuals(args.dir / f"residuals_{fit_dir.name}.pkl", key_fit, fit,
                               table)
        heldout = [(name, every.select(where)) for name, where in _bins(cut, sizes)
                   if every.frame.eval(where).any()]
        cases.append((f"cut {cut:.3g} ({len(residuals)} folds)", fit, table, residuals,
                      heldout))
    if args.paper is not None:
        from _paper import COLUMNS, DATA, EVAL_WHERE, TRAIN_WHERE

        for law in ("additive", "joint"):
            fit = load_fit(args.paper / f"{law}_fit")
            table = load_runs(DATA, **COLUMNS, where=TRAIN_WHERE)
            residuals = _residuals(args.paper / f"residuals_{law}.pkl", key_fit, fit, table)
            heldout = [("2.718B", load_runs(DATA, **COLUMNS, where=EVAL_WHERE))]
            cases.append((f"paper {law}", fit, table, residuals, heldout))
    for name, grid in GRIDS.items():
        foldposterior.GROWTH_GRID = grid
        print(f"=== p on {name}", flush=True)
        for label, fit, table, residuals, heldout in cases:
            print(label, *_scored(key_draw, fit, table, residuals, heldout),
                  sep="\n", flush=True)
    foldposterior.GROWTH_GRID = shipped


if __name__ == "__main__":
    main()
