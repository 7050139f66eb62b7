"""Nested folds correlated along their cuts, against independent folds, on the paper split.

The shipped posterior (``bayesmix.foldposterior``) lets the ``z`` of a target's folds
correlate as a Gauss-Markov sequence along the cuts, with the length ``ell`` learnt on
``LENGTH_GRID`` (0: independent), and gives the fit's own extrapolation a fresh ``z``.
This spike refits a fit's folds once (as ``bayesmix fit --seed SEED``; cached in
``--cache``), learns the term with ``LENGTH_GRID = [0]`` (the folds independent, the
model before it) and with the shipped grid, and scores both at the 2.718B eval rows
as ``bayesmix compare`` does, beside the posterior of ``ell``. At commit ``b580f6e``
(where ``foldposterior.CONDITION`` exists) it also scores the variant that draws the
fit's ``z`` given the last fold's ("correlated", kriged; "fresh z" is what shipped).

Usage (from the repository root, ../shared/data beside it)::

    python docs/spikes/calibration/fold_correlation.py FIT_DIR [--cache FILE] [--seed 0]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bias import arguments, load, score  # noqa: E402

from bayesmix import calibrate, foldposterior  # noqa: E402


def main() -> None:
    args = arguments(__doc__)
    fit, table, heldout, residuals, key_draw = load(args.fit_dir, args.cache, args.seed)
    grid = foldposterior.LENGTH_GRID
    variants = [("independent", np.zeros(1), 1.0), ("correlated", grid, 1.0),
                ("fresh z", grid, 0.0)]
    if not hasattr(foldposterior, "CONDITION"):  # after b580f6e: fresh z only
        variants = [("independent", np.zeros(1), 0.0), ("fresh z", grid, 0.0)]
    for name, lengths, condition in variants:
        foldposterior.LENGTH_GRID = lengths
        foldposterior.CONDITION = condition
        learnt = calibrate.discrepancies(key_draw, fit, table, residuals)
        post = next(iter(foldposterior.hyper_posterior(residuals).values()))
        marginal = post.sum(axis=(0, 1, 3, 4))
        said = " ".join(f"{ell:g}:{w:.2f}" for ell, w in zip(lengths, marginal, strict=True))
        score(f"{name:<12} ell {said}", fit, learnt, heldout, args.seed)
    foldposterior.LENGTH_GRID = grid


if __name__ == "__main__":
    main()
