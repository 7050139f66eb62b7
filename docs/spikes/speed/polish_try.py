"""Spike (issue 17, sixth study): the start search's polish, trust-region Newton on the
exact Hessian against L-BFGS-B to 2000 iterations.

From the same three best scouts (20 prior draws, 100 L-BFGS-B iterations each) on the
paper split: seconds, iterations and the final potential of each polish, and the
largest gradient component where Newton stopped.

Usage: python docs/spikes/speed/polish_try.py LAWS TARGETS   (each comma-separated)
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from _paper import TRAIN_WHERE, load_paper_runs, start_jax  # noqa: E402

jax = start_jax()
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import scipy.optimize  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import bayesmix.start as st  # noqa: E402
from bayesmix._jaxutil import NOT_FINITE, one_blas_thread, scipy_objective  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import target_inputs  # noqa: E402


def compare(law, inputs) -> str:
    loss = jnp.asarray(inputs.data.loss)
    args = (inputs.log_n, inputs.log_d, inputs.h, loss,
            jnp.asarray(inputs.scales.loss_scale, float), jnp.ones(loss.shape))
    draw_starts, _ = st._prior_program(law, inputs.k, "log")
    with numpyro.validation_enabled(False):
        z0 = draw_starts(jax.random.split(jax.random.key(0), 20), args)
    leaves, tree = jax.tree.flatten(jax.tree.map(lambda x: x[0], z0))
    programs = st._potential_programs(law, inputs.k, "log", tree,
                                      tuple((x.shape, str(x.dtype)) for x in leaves))
    objective = scipy_objective(programs.value_and_grad, args)

    def hessian(x):
        value = np.asarray(programs.hessian(jnp.asarray(x), args), float)
        return 0.5 * (value + value.T)

    flats = [np.asarray(ravel_pytree(jax.tree.map(lambda x, i=i: x[i], z0))[0])
             for i in range(20)]
    with one_blas_thread():
        scouts = [scipy.optimize.minimize(objective, x, jac=True, method="L-BFGS-B",
                                          options={"maxiter": 100}) for x in flats]
        values = np.array([r.fun if r.fun < NOT_FINITE else np.inf for r in scouts])
        best = np.argsort(values)[:3]
        hessian(scouts[best[0]].x)  # compiles
        t = time.perf_counter()
        old = [scipy.optimize.minimize(objective, scouts[i].x, jac=True, method="L-BFGS-B",
                                       options={"maxiter": 2000}) for i in best]
        t_old = time.perf_counter() - t
        t = time.perf_counter()
        new = [scipy.optimize.minimize(objective, scouts[i].x, jac=True, hess=hessian,
                                       method="trust-exact",
                                       options={"maxiter": 200, "gtol": 1e-6})
               for i in best]
        t_new = time.perf_counter() - t
    return (f"L-BFGS-B {t_old:5.2f} s, iterations {[r.nit for r in old]}, "
            f"potentials {[round(float(r.fun), 3) for r in old]} | Newton {t_new:5.2f} s, "
            f"iterations {[r.nit for r in new]}, potentials "
            f"{[round(float(r.fun), 3) for r in new]}, largest gradient "
            f"{[f'{np.max(np.abs(r.jac)):.0e}' for r in new]}")


def main() -> None:
    table = load_paper_runs(TRAIN_WHERE)
    for name in sys.argv[1].split(","):
        law = load_law(name)
        for target in sys.argv[2].split(","):
            print(f"{name} {target}: {compare(law, target_inputs(law, table, target))}",
                  flush=True)


if __name__ == "__main__":
    main()
