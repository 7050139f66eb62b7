"""The Chinchilla law on Epoch AI's extraction of Hoffmann et al.'s points (issue 3).

As Epoch did it: ``D = FLOP / (6 N)``, the 5 highest-loss points dropped (240 left).
Prints posterior medians and 95 % intervals of E, A, alpha, B, beta (via the law
file's ``natural()``) beside Epoch's point estimates and 95 % bootstrap intervals.

Usage::

    python bench/chinchilla.py [--chains 4 --warmup 700 --draws 600]

Reads ``../shared/data/chinchilla_epoch`` relative to the repository root; exits 0
with a message when it is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _paper import add_nuts_options, start_jax

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
# Epoch AI (Besiroglu et al. 2024), SOURCE.md: point estimate and 95 % bootstrap CI.
EPOCH = {
    "E": (1.8169, 1.769, 1.871),
    "A": (482.01, 285.2, 743.6),
    "alpha": (0.3478, 0.317, 0.373),
    "B": (2085.43, 1042.4, 5810.3),
    "beta": (0.3658, 0.331, 0.415),
}


def canonical_table(out: Path) -> Path:
    """Write the 240 points as a canonical run table (one dummy domain ``all``)."""
    import pandas as pd

    raw = pd.read_csv(DATA)
    raw = raw.sort_values("loss").iloc[:-5]
    frame = pd.DataFrame({
        "N": raw["Model Size"].to_numpy(float),
        "D": raw["Training FLOP"].to_numpy(float) / (6 * raw["Model Size"].to_numpy(float)),
        "h_all": 1.0,
        "loss_chinchilla": raw["loss"].to_numpy(float),
    })
    path = out / "chinchilla.csv"
    frame.to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_nuts_options(parser)
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (Epoch's points live in ../shared/data)")
        return 0
    jax = start_jax(args.chains)
    from bayesmix.fit import fit_target
    from bayesmix.laws import load_law
    from bayesmix.runs import load_runs

    law = load_law("chinchilla")
    with tempfile.TemporaryDirectory() as tmp:
        table = load_runs(canonical_table(Path(tmp)))
    start = time.perf_counter()
    result = fit_target(jax.random.key(args.seed), law, table, "chinchilla",
                        chains=args.chains, warmup=args.warmup, draws=args.draws)
    seconds = time.perf_counter() - start
    print(f"{len(table.frame)} points; fit in {seconds:.1f} s")
    print(result)
    posterior = result.posterior
    natural = law.module.natural(posterior.params, posterior.scales.n_ref,
                                 posterior.scales.d_ref, 1)
    print(f"\n{'param':<6} {'median':>9} {'95 % interval':>22} | {'Epoch':>9} "
          f"{'bootstrap 95 %':>22} | median inside")
    inside = {}
    for name, (point, lo, hi) in EPOCH.items():
        draws = np.asarray(natural[name])
        q = np.quantile(draws, [0.5, 0.025, 0.975])
        inside[name] = bool(lo <= q[0] <= hi)
        print(f"{name:<6} {q[0]:9.4g} {q[1]:10.4g} - {q[2]:<10.4g} | {point:9.4g} "
              f"{lo:10.4g} - {hi:<10.4g} | {'yes' if inside[name] else 'NO'}")
    ok = all(inside[n] for n in ("E", "alpha", "beta"))
    print(f"\nE, alpha and beta medians inside Epoch's bootstrap intervals: {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
