"""The start search, timed per call on the demo's runs (issue 17; issue 21's demo time).

For 2 seeds of the demo's simulated study, both laws and the three targets: ``find_start``
with 4, 8 and 20 starts, one after the other in one process, printing the best potential
and the wall seconds of each call. The first call of a law compiles its programs; later
calls of the same law and shapes reuse them, so their time is the search itself.

With ``--paper``: the paper split instead (1534 rows; additive and joint, the 8
targets), ``find_start`` with the fit's 20 starts, each call twice (the first compiles
a law's programs); prints the best potential and the second
call's seconds. Reads ``../shared/data/dmsl_slimpajama`` (exits 0 when it is absent).

Usage::

    python bench/start_speed.py [--paper]
"""

from __future__ import annotations

import sys
import time

from _paper import TARGETS, TRAIN_WHERE, data_present, load_paper_runs, start_jax

jax = start_jax()

import jax.numpy as jnp  # noqa: E402

from bayesmix.demo import STUDY, simulate_study  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import target_inputs  # noqa: E402
from bayesmix.start import find_start  # noqa: E402


def paper() -> None:
    """The paper split: the fit's search (20 starts) per law and target."""
    if not data_present():
        print("../shared/data/dmsl_slimpajama is absent: nothing to measure")
        return
    table = load_paper_runs(TRAIN_WHERE)
    print(f"{'law':<9} {'target':<14} {'potential':>10} {'seconds':>8}")
    for name in ("additive", "joint"):
        law = load_law(name)
        for target in TARGETS:
            inputs = target_inputs(law, table, target)
            for _ in range(2):  # the first call of a law or row count compiles
                start = time.perf_counter()
                found = find_start(jax.random.key(5), law, inputs.k, inputs.scales,
                                   inputs.log_n, inputs.log_d, inputs.h,
                                   jnp.asarray(inputs.data.loss), n_starts=20)
                seconds = time.perf_counter() - start
            print(f"{name:<9} {target:<14} {found.potential:10.2f} {seconds:8.2f}", flush=True)


def main() -> None:
    if "--paper" in sys.argv[1:]:
        paper()
        return
    print(f"{'seed':>4} {'law':<9} {'target':<6}  potential / seconds at 4, 8, 20 starts")
    for seed in (0, 1):
        table, _, _ = simulate_study(jax.random.split(jax.random.key(seed), 6)[0])
        for name in STUDY.laws:
            law = load_law(name)
            for target in STUDY.domains:
                inputs = target_inputs(law, table, target)
                cells = []
                for n_starts in (4, 8, 20):
                    start = time.perf_counter()
                    found = find_start(jax.random.key(5), law, inputs.k, inputs.scales,
                                       inputs.log_n, inputs.log_d, inputs.h,
                                       jnp.asarray(inputs.data.loss), n_starts=n_starts)
                    cells.append(f"{found.potential:9.2f} / {time.perf_counter() - start:4.1f} s")
                print(f"{seed:>4} {name:<9} {target:<6}  " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
