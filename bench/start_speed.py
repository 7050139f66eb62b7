"""The start search, timed per call on the demo's runs (issue 17; issue 21's demo time).

For 2 seeds of the demo's simulated study, both laws and the three targets: ``find_start``
with 4, 8 and 20 starts, one after the other in one process, printing the best potential
and the wall seconds of each call. The first call of a law compiles its programs; later
calls of the same law and shapes reuse them, so their time is the search itself.

Usage::

    python bench/start_speed.py
"""

from __future__ import annotations

import time

from _paper import start_jax

jax = start_jax()

import jax.numpy as jnp  # noqa: E402

from bayesmix.demo import STUDY, simulate_study  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import target_inputs  # noqa: E402
from bayesmix.start import find_start  # noqa: E402


def main() -> None:
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
