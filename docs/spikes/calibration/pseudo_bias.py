"""Spike: the folds' estimator bias, measured on pseudo-runs where the law is right.

The discrepancy's folds refit the law at its posterior mode on the smaller sizes and
take the residuals at the larger ones (``bayesmix.calibrate``). On a design whose
sizes each have one token count, those residuals are biased though the law is right
(bench/RESULTS.md, "The training range as a staircase, and a Chinchilla-style
design"): the mode of a refit on two or three sizes extrapolates off the law. This
script measures that estimator bias and subtracts it:

1. for every target, the mode of the law on all the fit's rows (``find_start``, as
   the fit starts from) and its predicted losses at those rows: pseudo-runs on which
   the law at that mode is exactly right;
2. the same fold refits on the pseudo-runs: their residuals are the estimator's own
   error (no noise, no law error);
3. the observed fold residuals less the pseudo ones, and the discrepancy learnt from
   those ("corrected") beside the one learnt from the observed ones ("shipped", as
   ``bayesmix fit --seed SEED`` learns it) and the law alone, scored at held-out rows.

Usage::

    python docs/spikes/calibration/pseudo_bias.py FIT_DIR RUNS --train-where W
        --heldout-where W [--paper] [--seed 0]

``--paper`` reads RUNS with the paper CSV's columns (bench/_paper.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # as the CLI computes


def _load(runs: str, where: str, paper: bool):
    from bayesmix import load_runs

    if paper:
        sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
        from _paper import COLUMNS

        return load_runs(runs, where=where, **COLUMNS)
    return load_runs(runs, where=where)


def pseudo_runs(key, fit, table):
    """``table`` with each fitted target's losses replaced by the law at its mode."""
    import dataclasses

    from bayesmix.model import target_inputs
    from bayesmix.start import find_start

    frame = table.frame.copy()
    for i, (target, tf) in enumerate(fit.targets.items()):
        inputs = target_inputs(fit.law, table, target)
        start = find_start(jax.random.fold_in(key, i), fit.law, inputs.k, inputs.scales,
                           inputs.log_n, inputs.log_d, inputs.h,
                           jax.numpy.asarray(inputs.data.loss), tf.likelihood,
                           n_starts=tf.settings.n_starts if tf.settings else 20)
        mu = np.asarray(start.constrained["mu"], float)
        frame.loc[inputs.data.rows, f"loss_{target}"] = mu
    return dataclasses.replace(table, frame=frame)


def main() -> int:
    from bayesmix import calibrate
    from bayesmix.scoring import pooled_per_label, score_heldout
    from bayesmix.store import load_fit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit")
    parser.add_argument("runs")
    parser.add_argument("--train-where", required=True)
    parser.add_argument("--heldout-where", required=True)
    parser.add_argument("--paper", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fit = load_fit(args.fit)
    train = _load(args.runs, args.train_where, args.paper)
    held = _load(args.runs, args.heldout_where, args.paper)
    key_fit, key_draw = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), 1))
    observed = calibrate.fold_residuals(key_fit, fit, train)
    pseudo = calibrate.fold_residuals(key_fit, fit, pseudo_runs(key_fit, fit, train))
    by_key = {(r.fold, r.target): r for r in pseudo}
    corrected = []
    print(f"{'fold':<40} {'target':<14} {'observed %':>10} {'pseudo %':>9} {'rows':>5}")
    for r in observed:
        p = by_key.get((r.fold, r.target))
        if p is None or p.residual.size != r.residual.size:
            print(f"{r.fold:<40} {r.target:<14} no pseudo fold: kept as observed")
            corrected.append(r)
            continue
        print(f"{r.fold:<40} {r.target:<14} {100 * r.residual.mean():10.3f} "
              f"{100 * p.residual.mean():9.3f} {r.residual.size:5d}")
        corrected.append(r._replace(residual=r.residual - p.residual))
    variants = {"law only": fit.with_discrepancy({}),
                "shipped": fit.with_discrepancy(
                    calibrate.discrepancies(key_draw, fit, train, observed)),
                "corrected": fit.with_discrepancy(
                    calibrate.discrepancies(key_draw, fit, train, corrected))}
    for label, result in variants.items():
        if label != "law only":
            terms = [tf.discrepancy for tf in result.targets.values() if tf.discrepancy]
            m = np.median(np.concatenate([t.bias_n / np.maximum(t.tau_n, 1e-12)
                                          for t in terms]))
            print(f"{label}: median bias m {m:+.2f}, median tau_N "
                  f"{100 * np.median([np.median(t.tau_n) for t in terms]):.3f} %")
    scored = score_heldout(jax.random.key(args.seed),
                           {label: r.posteriors for label, r in variants.items()},
                           held, truths=0)
    print(f"\n{'predictive':<10} {'rows':>5} {'90 %':>6} {'50 %':>6} {'width90':>8} "
          f"{'MRE':>6} {'signed':>7} {'CRPS':>7}")
    for s in pooled_per_label(scored.scores):
        print(f"{s.label:<10} {s.rows:5d} {100 * s.cover90:5.1f}% {100 * s.cover50:5.1f}% "
              f"{100 * s.width90:7.2f}% {100 * s.mre:5.2f}% {100 * s.signed:+6.2f}% "
              f"{s.crps:7.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
