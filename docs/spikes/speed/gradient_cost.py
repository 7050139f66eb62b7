"""Spike (issue 17, fourth study): what one gradient of the additive potential costs.

Times ``value_and_grad`` of the potential 2000 times inside one ``lax.scan`` (as inside
NUTS: no dispatch), at a draw of a saved fit, as shipped and with ``log(k h)``
precomputed (the law's ``mixture_term`` patched to read it). The second potential
differs (``with_irreducible_loss`` also evaluates the law at the uniform mixture, which
the patch misreads); only its cost is of interest.

Usage: python docs/spikes/speed/gradient_cost.py FIT_DIR TARGET {32,64}
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", sys.argv[3] == "64")
from jax.flatten_util import ravel_pytree  # noqa: E402
from numpyro.distributions import biject_to  # noqa: E402
from numpyro.infer.util import potential_energy  # noqa: E402
from saved_fit import saved_model  # noqa: E402

tf, model, saved_args, sites = saved_model(sys.argv[1], sys.argv[2])
law, h = tf.law, saved_args[2]
k = h.shape[-1]


def run(label, weights):
    args = (*saved_args[:2], weights, *saved_args[3:])
    post = tf.idata.posterior
    start = {n: biject_to(sites[n]["fn"].support).inv(jnp.asarray(post[n].values[0, 0]))
             for n in sorted(sites)}
    x0, unravel = ravel_pytree(start)

    def many(x, a):
        def body(c, _):
            v, g = jax.value_and_grad(lambda y: potential_energy(model, a, {}, unravel(y)))(c)
            return c + 1e-9 * g, v
        return jax.lax.scan(body, x, None, length=2000)

    program = jax.jit(many)
    program(x0, args)[1].block_until_ready()
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        program(x0, args)[0].block_until_ready()
        best = min(best, time.perf_counter() - t)
    print(f"{label}: {best / 2 * 1e3:.1f} us a gradient")


run("shipped", h)


def mixture_term(u, gamma, log_kh):
    seen = log_kh > -1e30
    power = jnp.where(seen, jnp.exp(gamma * jnp.where(seen, log_kh, 0.0)), 0.0)
    return jnp.sum(jax.nn.softmax(u) * power, axis=-1)


law.module.mixture_term = mixture_term
run("log(k h) precomputed", jnp.where(h > 0, jnp.log(jnp.where(h > 0, h * k, 1.0)), -jnp.inf))
