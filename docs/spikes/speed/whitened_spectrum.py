"""Spike (issue 17, fourth study): how well a metric matches a fit's posterior.

Reads the metrics ``step_policy.py`` saved (``--save-metric``: NumPyro's averaged
estimate ``adapted`` and ``draws_metric``'s ``ours``, a pickle) and the fit's draws,
and prints the eigenvalues of ``M^-1/2 Cov M^-1/2`` for each (all 1 for a metric equal
to the posterior covariance ``Cov`` of the draws, unconstrained).

Usage: python docs/spikes/speed/whitened_spectrum.py FIT_DIR METRICS.pkl
"""
import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
from numpyro.distributions import biject_to  # noqa: E402

from bayesmix import load_fit  # noqa: E402
from bayesmix.laws import free_sites  # noqa: E402
from bayesmix.model import bound_model, centred_inputs  # noqa: E402

metrics = pickle.load(open(sys.argv[2], "rb"))
(sites_key,) = metrics["ours"]
tf = next(iter(load_fit(sys.argv[1]).targets.values()))
post, cd, law = tf.idata.posterior, tf.idata.constant_data, tf.law
log_n, log_d, h = centred_inputs(law, tf.scales, cd.N.values, cd.D.values, cd.weights.values,
                                 None)
loss = jnp.asarray(np.exp(tf.idata.observed_data.obs.values))
model = bound_model(law, cd.weights.shape[1], tf.likelihood)
args = (log_n, log_d, h, loss, jnp.asarray(tf.scales.loss_scale), jnp.asarray(1.0))
sites = free_sites(model, jax.random.PRNGKey(0), *args)
flat = []
for name in sites_key:
    v = np.asarray(biject_to(sites[name]["fn"].support).inv(jnp.asarray(post[name].values)))
    flat.append(v.reshape(v.shape[0], v.shape[1], -1))
flat = np.concatenate(flat, -1)
cov = np.cov(flat.reshape(-1, flat.shape[-1]).T)
for label in ("adapted", "ours"):
    inv_sqrt = np.linalg.inv(np.linalg.cholesky(metrics[label][sites_key]))
    print(label, np.round(np.linalg.eigvalsh(inv_sqrt @ cov @ inv_sqrt.T), 3))
