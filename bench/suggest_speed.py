"""Scoring candidate runs against one fit, in the same run (issue 19, bar 3).

For each law: simulate the default design (3 domains, 12 mixtures, sizes 100M-800M,
4 token counts; `bayesmix.simulate_runs`), fit one target with the default NUTS
settings (the reference: its wall time, compilation included), then score the default
candidates (the 4 sizes run and one size up, 4 token counts each, 50 mixtures: 1000
runs) for a batch of 4 with `bayesmix.suggest_runs` (threshold 0, so a batch is
always chosen), twice: the first call compiles, the second is what a user's next call
costs. Prints both times and their ratios to the fit.

Usage::

    python bench/suggest_speed.py [--laws additive,joint]

Bar (issue 19): scoring 1000 candidates for a batch of 4 takes at most the time of one
fit of the same law.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--laws", default="additive,joint")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    from bayesmix import DesignSettings, fit_target, load_law, simulate_runs, suggest_runs

    print(f"{'law':<10} {'fit s':>7} {'candidates':>10} {'score s (first)':>15} "
          f"{'score s (again)':>15} {'first/fit':>9} {'again/fit':>9}")
    for name in args.laws.split(","):
        law = load_law(name)
        table, _ = simulate_runs(jax.random.key(0), law, 3)
        target = table.targets[0]
        t0 = time.perf_counter()
        fitted = fit_target(jax.random.key(1), law, table, target)
        fit_seconds = time.perf_counter() - t0
        posteriors = {target: fitted.posterior}
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            s = suggest_runs(jax.random.key(2), posteriors, 7e9, 1.5e11,
                             train_n=table.frame["N"], train_d=table.frame["D"], batch=4,
                             likelihood_weights={target: 1 / fitted.diagnostics.design_effect},
                             settings=DesignSettings(threshold=0.0))
            times.append(time.perf_counter() - t0)
        print(f"{name:<10} {fit_seconds:7.1f} {len(s.candidates):10d} {times[0]:15.1f} "
              f"{times[1]:15.1f} {times[0] / fit_seconds:9.2f} {times[1] / fit_seconds:9.2f}"
              f"   (fit converged: {fitted.converged}; batch of {len(s.chosen)})", flush=True)


if __name__ == "__main__":
    main()
