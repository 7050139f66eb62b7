"""The NumPyro model of a fit saved by ``bayesmix fit``, with its arguments as the sampler
passed them (the speed spikes' shared loader).

The likelihood weight is ``1 / design effect`` and the stick order the one the sampler
used (the posterior's ``share_order`` attribute), so the potential is the one the fit
sampled. Laws that see all domains' weights only (``centred_inputs`` without a target
column).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix import load_fit
from bayesmix.laws import free_sites
from bayesmix.model import bound_model, centred_inputs


def saved_model(fit_dir: str, target: str | None = None) -> tuple[Any, Any, tuple, dict]:
    """``(target_fit, model, args, sites)`` of ``target`` (default: the fit's first)."""
    fit = load_fit(fit_dir)
    tf = fit.targets[target] if target is not None else next(iter(fit.targets.values()))
    cd = tf.idata.constant_data
    log_n, log_d, h = centred_inputs(tf.law, tf.scales, cd.N.values, cd.D.values,
                                     cd.weights.values, None)
    observed = np.asarray(tf.idata.observed_data.obs.values)
    loss = jnp.asarray(np.exp(observed) if tf.likelihood == "log" else observed)
    model = bound_model(tf.law, cd.weights.shape[1], tf.likelihood)
    args = (log_n, log_d, h, loss, jnp.asarray(tf.scales.loss_scale),
            jnp.asarray(1.0 / tf.diagnostics.design_effect))
    order = tf.idata.posterior.attrs.get("share_order")
    if order is not None:
        args = (*args, jnp.asarray([list(tf.domains).index(d) for d in order.split(",")]))
    return tf, model, args, free_sites(model, jax.random.PRNGKey(0), *args)
