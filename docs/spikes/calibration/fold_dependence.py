"""How much the nested folds' shared rows move the discrepancy, on the paper split.

The shipped fold likelihood (``bayesmix.calibrate``) treats the (fold, target)
residuals as independent, yet the nested folds share held-out rows: the first fold
({310M, 680M}) predicts 937M and 1.235B, the second ({310M, 680M, 937M}) 1.235B again,
with the same noise draw and a correlated law error. This spike learns the term twice
from the same fold refits (``bias.py``'s ``load``, the key ``bayesmix fit --seed SEED``
uses) and scores each at the 2.718B eval rows as ``bayesmix compare`` does:

- shipped: every fold's rows, as ``bayesmix fit`` learns it;
- disjoint: each fold keeps only its next size (the first fold 937M, the second
  1.235B), so no row is counted twice; what is lost is the first fold's longer
  extrapolation (0.60 in log N), which is what tells the growth ``p``.

If the two agree, counting the shared rows twice is not what sets the bars; if
``disjoint`` is wider, the shipped term is too sure of its scales.

Usage (from the repository root, ../shared/data beside it)::

    python docs/spikes/calibration/fold_dependence.py FIT_DIR [--cache FILE] [--seed 0]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bias import arguments, load, score  # noqa: E402

from bayesmix import calibrate  # noqa: E402


def next_size_only(residuals):
    """Each (fold, target) with only its held-out rows at the fold's next size."""
    out = []
    for r in residuals:
        keep = r.d_n <= r.d_n.min() + 1e-9
        out.append(r._replace(residual=r.residual[keep], factor=r.factor[keep],
                              d_n=r.d_n[keep], d_d=r.d_d[keep]))
    return out


def main() -> None:
    args = arguments(__doc__)
    fit, table, heldout, residuals, key_draw = load(args.fit_dir, args.cache, args.seed)
    for name, used in (("shipped ", residuals), ("disjoint", next_size_only(residuals))):
        rows = sum(r.residual.size for r in used)
        learnt = calibrate.discrepancies(key_draw, fit, table, used)
        score(f"{name} ({rows} fold rows)", fit, learnt, heldout, args.seed)


if __name__ == "__main__":
    main()
