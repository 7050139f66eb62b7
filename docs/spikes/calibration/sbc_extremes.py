"""The SBC of tests/test_fit.py with its extreme ranks counted, the divergences per
dataset, and the target acceptance and the runs as options (docs/calibration.md,
"What the SBC shows").

Usage::

    python docs/spikes/calibration/sbc_extremes.py [--accept 0.8] [--rows 4|9]

200 datasets, warmup 400, 500 draws thinned by 5, seed 1: the slow test's settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402

jax.config.update("jax_enable_x64", True)  # as tests/conftest.py

from test_fit import _sbc_ranks  # noqa: E402

ROWS = {4: ((1e8, 4e8), (5.0, 20.0)), 9: ((1e8, 2e8, 4e8), (5.0, 10.0, 20.0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accept", type=float, default=0.8)
    parser.add_argument("--rows", type=int, choices=sorted(ROWS), default=4)
    args = parser.parse_args()
    sizes, ratios = ROWS[args.rows]
    sbc = _sbc_ranks(200, 400, 500, 5, seed=1, shift_sd=0.5, target_accept=args.accept,
                     sizes=sizes, tokens_per_param=ratios)
    n = sbc.n_ranks
    print(f"{args.rows} rows, target acceptance {args.accept}: "
          f"{int(np.sum(sbc.diverged > 0))} of 200 chains diverged at least once")
    for site, r in sbc.ranks.items():
        low, high = int(np.sum(r == 0)), int(np.sum(r == n - 1))
        p = scipy.stats.binom.sf(low + high - 1, r.size, 2 / n)
        print(f"{site:9s} truth below every draw {low:3d}, above every draw {high:3d} "
              f"(expected {r.size / n:.1f} each; p of the sum {p:.2g})")
    small = sbc.truth["sigma"] < 0.005
    print(f"datasets with sigma < 0.005: {int(small.sum())}; of them, the truth below "
          f"every draw of sigma: {int(np.sum(sbc.ranks['sigma'][small] == 0))}")


if __name__ == "__main__":
    main()
