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
from saved_fit import saved_model  # noqa: E402

metrics = pickle.load(open(sys.argv[2], "rb"))
(sites_key,) = metrics["ours"]
tf, _, _, sites = saved_model(sys.argv[1])
post = tf.idata.posterior
flat = []
for name in sites_key:
    v = np.asarray(biject_to(sites[name]["fn"].support).inv(jnp.asarray(post[name].values)))
    flat.append(v.reshape(v.shape[0], v.shape[1], -1))
flat = np.concatenate(flat, -1)
cov = np.cov(flat.reshape(-1, flat.shape[-1]).T)
for label in ("adapted", "ours"):
    inv_sqrt = np.linalg.inv(np.linalg.cholesky(metrics[label][sites_key]))
    print(label, np.round(np.linalg.eigvalsh(inv_sqrt @ cov @ inv_sqrt.T), 3))
