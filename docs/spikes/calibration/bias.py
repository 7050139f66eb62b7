"""The discrepancy with and without its learnt bias, on the paper split.

Takes a fit of the paper split (``bayesmix fit ... --out DIR``), refits its nested size
folds once (``bayesmix.calibrate.fold_residuals``, with the key ``bayesmix fit --seed
SEED`` uses; cached in ``--cache``; a cache written before ``b580f6e`` holds residuals
without their fold's cut and does not load), then learns the discrepancy from them twice: with
the bias ``m`` fixed at zero (the term before the bias) and with the bias learnt, and
scores each at the 2.718B eval rows as ``bayesmix compare`` does (pooled over the
fit's targets: 90 % and 50 % coverage, median relative 90 % width, eval MRE of the
predictive median, mean signed error, CRPS), beside the posterior of ``m``.

Usage (from the repository root, ../shared/data beside it)::

    python docs/spikes/calibration/bias.py FIT_DIR [--cache FILE] [--seed 0]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from _paper import COLUMNS, DATA, DOMAINS, EVAL_WHERE, TRAIN_WHERE  # noqa: E402

from bayesmix import calibrate, foldposterior, load_runs  # noqa: E402
from bayesmix.scoring import heldout_scores, pool_scores  # noqa: E402
from bayesmix.store import load_fit  # noqa: E402


def arguments(doc: str) -> argparse.Namespace:
    """``FIT_DIR [--cache FILE] [--seed 0]`` (the spikes' common command line)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("fit_dir")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__)
    fit, table, heldout, residuals, key_draw = load(args.fit_dir, args.cache, args.seed)
    grid = foldposterior.BIAS_GRID
    for name, bias_grid in (("zero-mean", np.zeros(1)), ("learnt bias", grid)):
        foldposterior.BIAS_GRID = bias_grid
        learnt = calibrate.discrepancies(key_draw, fit, table, residuals)
        marginal = next(iter(foldposterior.hyper_posterior(residuals).values())).sum(
            axis=(1, 2, 3, 4))
        mean_m = float(marginal @ bias_grid)
        sd_m = float(np.sqrt(marginal @ (bias_grid - mean_m) ** 2))
        score(f"{name:<12} m {mean_m:+.2f} +- {sd_m:.2f}", fit, learnt, heldout, args.seed)
    foldposterior.BIAS_GRID = grid


def load(fit_dir: str, cache: str | None, seed: int):
    """The fit, its training and eval tables, the fold residuals (refitted as ``bayesmix
    fit --seed SEED`` refits them, or read from ``cache``) and the key of the draws."""
    jax.config.update("jax_enable_x64", True)  # as the CLI computes (bayesmix/cli.py)
    fit = load_fit(Path(fit_dir))
    table = load_runs(DATA, **COLUMNS, where=TRAIN_WHERE)
    heldout = load_runs(DATA, **COLUMNS, where=EVAL_WHERE)
    key_fit, key_draw = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1))
    path = Path(cache) if cache else None
    if path and path.is_file():
        residuals = pickle.loads(path.read_bytes())
    else:
        residuals = calibrate.fold_residuals(key_fit, fit, table)
        if path:
            path.write_bytes(pickle.dumps(residuals))
    print(f"{fit.law.name}: {len(residuals)} (fold, target) residuals")
    return fit, table, heldout, residuals, key_draw


def score(label: str, fit, learnt: dict, heldout, seed: int) -> None:
    """Print the pooled and per-target scores of ``fit`` with the terms ``learnt``."""
    posteriors = fit.with_discrepancy(learnt).posteriors
    scores = heldout_scores(jax.random.key(seed), {"fit": posteriors}, heldout)
    pooled = pool_scores(scores, "fit", "all")
    mre7 = np.mean([s.mre for s in scores if s.target in DOMAINS])
    print(f"  {label}  90 % {100 * pooled.cover90:5.1f}  50 % {100 * pooled.cover50:5.1f}  "
          f"width {100 * pooled.width90:5.2f} %  MRE(7) {100 * mre7:5.2f} %  "
          f"signed {100 * pooled.signed:+5.2f} %  CRPS {pooled.crps:.4f}")
    for s in scores:
        summary = learnt[s.target].summary() if s.target in learnt else {}
        print(f"    {s.target:<20} 90 % {100 * s.cover90:5.1f}  MRE {100 * s.mre:5.2f} %  "
              f"signed {100 * s.signed:+5.2f} %  tau_N {100 * summary.get('tau_n', 0):.2f}"
              f"  bias_N {100 * summary.get('bias_n', 0):+.2f}")


if __name__ == "__main__":
    main()
