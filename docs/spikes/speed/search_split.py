"""Spike (issue 17, sixth study): where the start search's time goes.

``find_start`` on the paper split for one law and target, twice (the first call
compiles), with ``scipy.optimize.minimize`` counted: the scouts' (``maxiter`` 100) and
the polish's evaluations and seconds. Then the cost of one objective call through
SciPy's wrapper, of one value-and-gradient inside a ``lax.scan`` (no dispatch), and of
20 of them vmapped in one call. The figures in docs/speed.md are of the L-BFGS-B
polish (``e4d57d3``'s parent); on later code the polish is Newton's.

Usage: python docs/spikes/speed/search_split.py LAW TARGET
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
from bayesmix._jaxutil import scipy_objective  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import target_inputs  # noqa: E402

calls = []
minimize = scipy.optimize.minimize


def counted(fun, x0, **options):
    t = time.perf_counter()
    result = minimize(fun, x0, **options)
    calls.append((options["options"]["maxiter"], result.nfev, result.nit,
                  time.perf_counter() - t))
    return result


def per_call(function, *arguments, repeats: int) -> float:
    """Milliseconds a call, after one call that compiles."""
    jax.block_until_ready(function(*arguments))
    t = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(function(*arguments))
    return (time.perf_counter() - t) / repeats * 1e3


def main() -> None:
    st.scipy.optimize.minimize = counted
    law = load_law(sys.argv[1])
    inputs = target_inputs(law, load_paper_runs(TRAIN_WHERE), sys.argv[2])
    loss = jnp.asarray(inputs.data.loss)
    args = (inputs.log_n, inputs.log_d, inputs.h, loss,
            jnp.asarray(inputs.scales.loss_scale, float), jnp.ones(loss.shape))
    for rep in range(2):
        calls.clear()
        t = time.perf_counter()
        found = st.find_start(jax.random.key(0), law, inputs.k, inputs.scales,
                              inputs.log_n, inputs.log_d, inputs.h, loss, "log",
                              n_starts=20)
        total = time.perf_counter() - t
        c = np.array(calls)
        scout, polish = c[c[:, 0] == 100], c[c[:, 0] != 100]
        print(f"call {rep + 1}: {total:.2f} s; scouts {len(scout)} runs, "
              f"{scout[:, 1].sum():.0f} evaluations, {scout[:, 3].sum():.2f} s; polish "
              f"{len(polish)} runs, {polish[:, 1].sum():.0f} evaluations, "
              f"{polish[:, 2].sum():.0f} iterations, {polish[:, 3].sum():.2f} s; "
              f"best potential {found.potential:.2f}")
    draw_starts, _ = st._prior_program(law, inputs.k, "log")
    with numpyro.validation_enabled(False):
        z = jax.tree.map(lambda x: x[0], draw_starts(jax.random.split(jax.random.key(0), 20),
                                                     args))
    leaves, tree = jax.tree.flatten(z)
    programs = st._potential_programs(law, inputs.k, "log", tree,
                                      tuple((x.shape, str(x.dtype)) for x in leaves))
    x = ravel_pytree(z)[0]
    objective = scipy_objective(programs.value_and_grad, args)
    print(f"objective call through SciPy's wrapper: "
          f"{per_call(objective, np.asarray(x), repeats=500):.3f} ms")
    value_and_grad = programs.value_and_grad.__wrapped__

    def scanned(x0, a):
        def body(c, _):
            value, grad = value_and_grad(c, a)
            return c + 1e-12 * grad, value
        return jax.lax.scan(body, x0, None, length=500)[0]

    print(f"value and gradient inside a scan: "
          f"{per_call(jax.jit(scanned), x, args, repeats=1) / 500:.3f} ms")
    batch = jax.jit(jax.vmap(value_and_grad, in_axes=(0, None)))
    print(f"20 values and gradients vmapped, one call: "
          f"{per_call(batch, jnp.stack([x] * 20), args, repeats=50):.3f} ms")


if __name__ == "__main__":
    main()
