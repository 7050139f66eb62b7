"""Where a fit's warmup gradients go (issue 17, fifth study).

Fits one target of the paper split in-process with ``bayesmix.fit_target`` at default
settings (or ``--warmup``), with ``bayesmix.sampling._advance`` wrapped to keep every
phase's per-iteration leapfrog steps and step sizes, and prints them per window of 25
iterations: mean steps a chain-iteration and the chains' median step size.

Usage::

    python docs/spikes/speed/warmup_trace.py --law additive --target book [--warmup 600]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpyro

numpyro.set_host_device_count(4)

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _paper import TRAIN_WHERE, load_paper_runs  # noqa: E402

import bayesmix.sampling as sampling  # noqa: E402
from bayesmix import fit_target  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402

TRACE: list[tuple[str, np.ndarray, np.ndarray]] = []
_advance = sampling._advance


def traced(chains, args, n, *, label):
    out = _advance(chains, args, n, label=label)
    fields = out[2]
    TRACE.append((label, np.asarray(fields["num_steps"]),
                  np.asarray(fields["adapt_state.step_size"])))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--law", default="additive")
    parser.add_argument("--target", default="book")
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sampling._advance = traced
    table = load_paper_runs(TRAIN_WHERE)
    fit = fit_target(jax.random.key(args.seed), load_law(args.law), table, args.target,
                     warmup=args.warmup, draws=args.draws, max_draws=args.draws)
    total = 0
    for label, steps, size in TRACE:
        print(f"{label}: {steps.shape[1]} iterations, {steps.sum()} gradients (4 chains)")
        total += steps.sum()
        for i in range(0, steps.shape[1], 25):
            w = steps[:, i:i + 25]
            print(f"  {i:4d}-{i + w.shape[1] - 1:4d}  steps {w.mean():7.1f}  "
                  f"max {w.max():5d}  step size {np.median(size[:, i:i + 25]):.4f}")
    d = fit.diagnostics
    print(f"total {total} gradients; start search {fit.timings.start:.1f} s; "
          f"bulk/tail ESS {d.min_ess_bulk:.0f}/{d.min_ess_tail:.0f} at {args.draws} draws")
    return 0


if __name__ == "__main__":
    sys.exit(main())
