"""The posterior of the folds' correlation length on Hoffmann et al.'s runs, per cut.

Reads the fits of ``bench/chinchilla_extrapolation.py --keep DIR`` (the Chinchilla law
below 0.5B, 1B and 2.5B), refits each fit's nested size folds once as ``bayesmix fit
--seed SEED`` does (cached beside the fits), and prints, for a few grids of the length
``ell``, its posterior and the 5/50/95 % quantiles of ``tau_N`` (in % of the loss per
unit of ``d_N^p``) and the posterior mean of the bias ``m``. A grid whose top value
holds most of the posterior truncates it.

Usage::

    python docs/spikes/calibration/chinchilla_length.py DIR [--seed 0]
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

from bayesmix import calibrate, foldposterior, load_runs  # noqa: E402
from bayesmix.store import load_fit  # noqa: E402

GRIDS = ([0.0, 0.15, 0.5, 1.5, 5.0], [0.0, 0.15, 0.5, 1.5, 5.0, 50.0],
         [0.0, 0.15, 0.5, 1.5, 5.0, 15.0, 50.0, 500.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)  # as the CLI computes (bayesmix/cli.py)
    runs = canonical_table(args.dir)
    shipped = foldposterior.LENGTH_GRID
    for fit_dir in sorted(args.dir.glob("fit_*")):
        cut = float(fit_dir.name.removeprefix("fit_"))
        cache = args.dir / f"residuals_{fit_dir.name}.pkl"
        if cache.is_file():
            residuals = pickle.loads(cache.read_bytes())
        else:
            key_fit, _ = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), 1))
            residuals = calibrate.fold_residuals(key_fit, load_fit(fit_dir),
                                                 load_runs(runs, where=f"N < {cut}"))
            cache.write_bytes(pickle.dumps(residuals))
        for grid in GRIDS:
            foldposterior.LENGTH_GRID = np.array(grid)
            post = next(iter(foldposterior.hyper_posterior(residuals).values()))
            ell = post.sum(axis=(0, 1, 3, 4))
            tau = np.cumsum(post.sum(axis=(0, 1, 2, 4)))
            q = [100 * foldposterior.TAU_GRID[np.searchsorted(tau, x)] for x in (.05, .5, .95)]
            m = post.sum(axis=(1, 2, 3, 4)) @ foldposterior.BIAS_GRID
            said = " ".join(f"{g:g}:{w:.2f}" for g, w in zip(grid, ell, strict=True))
            print(f"cut {cut:.3g}, {len(residuals)} folds; ell {said}; tau_N 5/50/95 % "
                  f"{q[0]:.3f} {q[1]:.3f} {q[2]:.3f}; m {m:+.2f}", flush=True)
    foldposterior.LENGTH_GRID = shipped


if __name__ == "__main__":
    main()
