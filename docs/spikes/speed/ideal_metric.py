"""Spike (issue 17, fourth study): NUTS with the posterior's own covariance as the metric.

For a fit saved by ``bayesmix fit``: NumPyro NUTS on the same posterior (the sampler's
stick order), the inverse mass matrix fixed at the covariance of the fit's draws
(unconstrained) plus ``EPS * I`` (``EPS`` 0 by default; 2.4e-5 is what NumPyro's
regularisation adds after a 200-draw window), the step size adapted over 300
iterations per chain, then 500 draws of 2 chains. Prints steps a draw, each chain's
step size, divergences and the minimum bulk ESS.

Usage: python docs/spikes/speed/ideal_metric.py FIT_DIR TARGET TARGET_ACCEPT [EPS]
"""
import sys

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
from jax.flatten_util import ravel_pytree  # noqa: E402
from numpyro.distributions import biject_to  # noqa: E402
from numpyro.infer import MCMC, NUTS, init_to_value  # noqa: E402
from saved_fit import saved_model  # noqa: E402

path, target, accept = sys.argv[1], sys.argv[2], float(sys.argv[3])
eps = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
tf, model, args, sites = saved_model(path, target)
post = tf.idata.posterior
names = sorted(sites)
unc = {n: np.asarray(biject_to(sites[n]["fn"].support).inv(jnp.asarray(post[n].values)))
       for n in names}
chains, draws = post[names[0]].shape[:2]
flat = np.stack([ravel_pytree({n: unc[n][c, s] for n in names})[0]
                 for c in range(chains) for s in range(0, draws, 5)])
metric = np.cov(flat.T) + eps * np.eye(flat.shape[1])
kernel = NUTS(model, inverse_mass_matrix=metric, adapt_mass_matrix=False, dense_mass=True,
              target_accept_prob=accept,
              init_strategy=init_to_value(values={n: jnp.asarray(post[n].values[0, -1])
                                                  for n in names}))
mcmc = MCMC(kernel, num_warmup=300, num_samples=500, num_chains=2,
            chain_method="sequential", progress_bar=False)
mcmc.run(jax.random.PRNGKey(3), *args,
         extra_fields=("num_steps", "adapt_state.step_size", "diverging"))
extra = mcmc.get_extra_fields(group_by_chain=True)
samples = mcmc.get_samples(group_by_chain=True)
ess = az.ess(az.convert_to_dataset({n: np.asarray(samples[n]) for n in names}))
print(f"metric = draws' covariance + {eps} I, target_accept {accept}: "
      f"{float(extra['num_steps'].mean()):.1f} steps a draw, step sizes "
      f"{np.asarray(extra['adapt_state.step_size'])[:, -1]}, "
      f"{int(extra['diverging'].sum())} divergences, "
      f"min bulk ESS {min(float(ess[v].min()) for v in ess.data_vars):.0f} of 1000")
