"""Spike (issue 17, fourth study): NumPyro NUTS's cost a leapfrog step on a trivial potential.

A 21-dimensional standard normal (the additive law's sampled coordinates at k = 7),
step size fixed at 0.063 (the additive book fit's), no adaptation: what a leapfrog step
costs besides the model's gradient. Prints the steps a draw too (the trees' depth
depends on the step against the posterior's scale, here 1).

Usage: python docs/spikes/speed/nuts_overhead.py {32,64} DRAWS
"""
import sys
import time

import jax
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

jax.config.update("jax_enable_x64", sys.argv[1] == "64")


def model():
    numpyro.sample("x", dist.Normal(0, 1).expand((21,)).to_event(1))


for dense in (True, False):
    kernel = NUTS(model, step_size=0.063, adapt_step_size=False, adapt_mass_matrix=False,
                  dense_mass=dense)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=int(sys.argv[2]), progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), extra_fields=("num_steps",))
    t = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(1), extra_fields=("num_steps",))
    mcmc.get_samples()["x"].block_until_ready()
    seconds = time.perf_counter() - t
    steps = int(mcmc.get_extra_fields()["num_steps"].sum())
    print(f"dense={dense}: {steps / int(sys.argv[2]):.0f} steps a draw, "
          f"{seconds / steps * 1e6:.1f} us a leapfrog step")
