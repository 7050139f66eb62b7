"""What explains a fold's residuals: noise, the refit's own uncertainty, or neither.

For each law and target of the paper split, the nested size folds of
``bayesmix.calibrate`` (fit at the posterior mode on the smaller sizes, predict the
larger training sizes) and, per fold, the held-out log residuals against the three
terms of their covariance before the discrepancy: the rms residual, its mean, the
noise ``sigma`` and the rms of ``sqrt(diag(J C J'))`` (the refit's Laplace
uncertainty carried to the held-out rows), and ``r' S^-1 r / n`` for ``S = sigma^2 I
+ J C J'`` (near 1 or below: the residuals need no discrepancy). Where ``J C J'`` is as large as the
residuals, the learnt discrepancy scale is small whatever the residuals are: the
question for the joint law's low coverage (docs/calibration.md).

Usage (from the repository root, ../shared/data beside it)::

    python docs/spikes/calibration/fold_terms.py [--laws additive,joint] [--targets ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from _paper import COLUMNS, DATA, TARGETS, TRAIN_WHERE  # noqa: E402

from bayesmix import load_law, load_runs  # noqa: E402
from bayesmix.calibrate import fold_residual, size_folds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    table = load_runs(DATA, **COLUMNS, where=TRAIN_WHERE)
    folds = size_folds(table, np.ones(len(table.frame), bool))
    print(f"{'law':<9} {'target':<14} {'fold':<28} {'rms r':>7} {'mean r':>7} "
          f"{'sigma':>7} {'rms JCJ':>8} {'chi2/n':>8}  (log-loss, %; chi2/n: the "
          f"residuals whitened by sigma^2 I + J C J', per row)")
    for law_name in args.laws.split(","):
        law = load_law(law_name)
        for target in args.targets.split(","):
            for i, fold in enumerate(folds):
                r = fold_residual(jax.random.key(i), law, table, fold, target)
                cov = r.covariance
                # J C J' has rank at most the parameter count, below the held-out rows'
                # count, so the covariance's smallest eigenvalue is sigma^2
                sigma2 = float(np.linalg.eigvalsh(cov)[0])
                jcj = np.sqrt(np.maximum(np.diag(cov) - sigma2, 0.0))
                chi2 = float(r.residual @ np.linalg.solve(cov, r.residual)) / r.residual.size
                print(f"{law_name:<9} {target:<14} {fold.name:<28} "
                      f"{100 * np.sqrt(np.mean(r.residual**2)):7.3f} "
                      f"{100 * np.mean(r.residual):7.3f} {100 * np.sqrt(sigma2):7.3f} "
                      f"{100 * np.sqrt(np.mean(jcj**2)):8.3f} {chi2:8.2f}", flush=True)


if __name__ == "__main__":
    main()
