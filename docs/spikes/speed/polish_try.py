"""Spike (issue 17, sixth study): the start search's polish, trust-region Newton on the
exact Hessian against L-BFGS-B to 2000 iterations.

``find_start`` runs twice with one key (so the same 20 scouts and the same best three):
once with its own polish (Newton) and once with ``bayesmix.start._polish`` swapped for
L-BFGS-B; every polish is recorded. Printed per law and target: the polishes' seconds,
iterations and final potentials.

Usage: python docs/spikes/speed/polish_try.py LAWS TARGETS   (each comma-separated)
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from _paper import TRAIN_WHERE, load_paper_runs, start_jax  # noqa: E402

jax = start_jax()
import jax.numpy as jnp  # noqa: E402
import scipy.optimize  # noqa: E402

import bayesmix.start as st  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import target_inputs  # noqa: E402

NEWTON = st._polish


def lbfgs(objective, hessian, args, x0, max_iter):
    return scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                   options={"maxiter": 2000})


def polishes(method, law, inputs) -> str:
    """``find_start`` with ``method`` as its polish; its polishes, summed and listed."""
    runs = []

    def recorded(*arguments):
        t = time.perf_counter()
        result = method(*arguments)
        runs.append((time.perf_counter() - t, result.nit, round(float(result.fun), 3)))
        return result

    st._polish = recorded
    st.find_start(jax.random.key(0), law, inputs.k, inputs.scales, inputs.log_n,
                  inputs.log_d, inputs.h, jnp.asarray(inputs.data.loss), n_starts=20)
    seconds, iterations, potentials = zip(*runs, strict=True)
    return f"{sum(seconds):5.2f} s, iterations {iterations}, potentials {potentials}"


def main() -> None:
    table = load_paper_runs(TRAIN_WHERE)
    for name in sys.argv[1].split(","):
        law = load_law(name)
        for target in sys.argv[2].split(","):
            inputs = target_inputs(law, table, target)
            polishes(NEWTON, law, inputs)  # compiles the law's programs
            print(f"{name} {target}: L-BFGS-B {polishes(lbfgs, law, inputs)} | Newton "
                  f"{polishes(NEWTON, law, inputs)}", flush=True)


if __name__ == "__main__":
    main()
