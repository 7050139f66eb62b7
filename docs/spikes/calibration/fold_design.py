"""Which nested size folds teach the discrepancy, on a study with many model sizes.

The paper split has four training sizes and so two folds; Hoffmann et al.'s runs
(Chinchilla, Epoch AI's extraction) have 41 sizes, and ``bayesmix fit`` makes a fold
at every one (13-31 folds below a cut of 0.5-2.5B). Every fold's residuals enter the
grid posterior as independent evidence, though nested folds share held-out rows; the
smallest folds refit the law on two or three sizes and reach far. This spike refits
every fold once (as ``bayesmix fit --seed SEED`` does), then learns the term from
subsets of them and scores each at the held-out runs beyond the cut, in two bins (up
to one unit of log N beyond the largest training size, and beyond that):

- all: every fold (what ``bayesmix fit`` does);
- top 3: the three largest cuts (the largest training size predicted from the
  smaller ones, then the next, then the next);
- spread 3: three cuts at 1/2, 2/3 and 5/6 of the training span in log N (the
  nearest size at or below), reaching about as far as the query;
- small 3: the three smallest cuts (refits on the fewest sizes);
- all, rows once: every fold, each fold's log density weighted by the mean over its
  held-out rows of one over the number of folds holding the row out (a composite
  likelihood in which every row counts once).

Usage (the fits of ``bench/chinchilla_extrapolation.py --keep DIR``)::

    python docs/spikes/calibration/fold_design.py DIR [--cuts 5e8,1e9,2.5e9] [--seed 0]

Run it at ``ec1ddec``: it reads the per-fold grid of ``bayesmix.calibrate`` from before
the folds were correlated (``b580f6e`` moved it to ``bayesmix.foldposterior``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from chinchilla import canonical_table  # noqa: E402

from bayesmix import calibrate, load_runs  # noqa: E402
from bayesmix.runs import model_sizes  # noqa: E402
from bayesmix.scoring import heldout_scores  # noqa: E402
from bayesmix.store import load_fit  # noqa: E402


def designs(table, rows) -> dict[str, list[str]]:
    """Fold names of each design."""
    folds = calibrate.size_folds(table, rows)
    sizes = model_sizes(table.frame["N"].to_numpy(float)[rows])
    cuts = np.log(sizes[1:-1])  # fold m's training sizes end at sizes[m - 1], m >= 2
    lo, hi = np.log(sizes[0]), np.log(sizes[-1])
    spread = {int(np.searchsorted(cuts, lo + f * (hi - lo), side="right") - 1)
              for f in (1 / 2, 2 / 3, 5 / 6)}
    names = [f.name for f in folds]
    return {"all": names, "top 3": names[-3:],
            "spread 3": [names[i] for i in sorted(spread) if i >= 0],
            "small 3": names[:3]}


def row_count_weights(table, residuals) -> dict[tuple[str, str], float]:
    """Each (fold, target)'s weight: the mean over its held-out rows of one over the
    number of that target's folds holding the row out, so every row counts once."""
    rows = np.ones(len(table.frame), bool)
    cut = {f.name: table.frame["N"].to_numpy(float)[f.train].max()
           for f in calibrate.size_folds(table, rows)}
    out = {}
    for r in residuals:
        cuts = np.array([cut[q.fold] for q in residuals if q.target == r.target])
        n_row = cut[r.fold] * np.exp(r.d_n)
        count = (cuts[None, :] < n_row[:, None] * (1 - 1e-9)).sum(axis=1)
        out[(r.fold, r.target)] = float(np.mean(1.0 / count))
    return out


def weighted(weights):
    """``calibrate._log_marginal`` scaled by each (fold, target)'s weight (a patch)."""
    plain = calibrate._log_marginal

    def log_marginal(residual):
        return weights[(residual.fold, residual.target)] * plain(residual)
    return plain, log_marginal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--cuts", default="5e8,1e9,2.5e9")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)  # as the CLI computes (bayesmix/cli.py)
    runs = canonical_table(args.dir)
    for cut in (float(c) for c in args.cuts.split(",")):
        fit = load_fit(args.dir / f"fit_{cut:.3g}")
        table = load_runs(runs, where=f"N < {cut}")
        largest = table.frame["N"].max()
        bins = {"<= 1 beyond": f"N >= {cut} and N <= {largest * np.e}",
                "> 1 beyond": f"N > {largest * np.e}"}
        key_fit, key_draw = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), 1))
        residuals = calibrate.fold_residuals(key_fit, fit, table)
        rows = np.ones(len(table.frame), bool)
        print(f"cut {cut:.3g}: {len(residuals)} folds refitted")
        weights = row_count_weights(table, residuals)
        plain, patched = weighted(weights)
        print(f"  row-count weights sum to {sum(weights.values()):.2f}")
        for name, chosen in [*designs(table, rows).items(), ("all, rows once", None)]:
            used = [r for r in residuals if chosen is None or r.fold in chosen]
            calibrate._log_marginal = patched if chosen is None else plain
            learnt = calibrate.discrepancies(key_draw, fit, table, used)
            calibrate._log_marginal = plain
            s = learnt["chinchilla"].summary()
            line = (f"  {name:<9} folds {len(used):>2}  tau_N {100 * s['tau_n']:.2f} %  "
                    f"tau_D {100 * s['tau_d']:.2f} %  p {s['growth']:.2f}  "
                    f"bias_N {100 * s['bias_n']:+.2f} %")
            posteriors = fit.with_discrepancy(learnt).posteriors
            for label, where in bins.items():
                heldout = load_runs(runs, where=where)
                score = heldout_scores(jax.random.key(args.seed), {"fit": posteriors},
                                       heldout)[0]
                line += (f" | {label}: {len(heldout.frame)} rows 50 % {score.cover50:.0%}"
                         f" 90 % {score.cover90:.0%} width/MRE "
                         f"{score.width90 / score.mre:.1f}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
