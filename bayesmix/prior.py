"""Draws from a law's prior, its factors included (sampling-importance-resampling).

A law's ``numpyro.factor`` terms (such as the prior on a derived ``E``, see
:func:`bayesmix.lawkit.irreducible_loss`) are ignored by forward sampling. Every prior
draw in bayesmix therefore traces the model seeded, sums its factors' log-densities
(:func:`traced_with_factors`) and resamples the forward draws in proportion to
``exp(factors)``: :func:`prior_predictive` here, the simulated truths of
:mod:`bayesmix.simulate` and ``bench/mirror_descent.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.laws import Law
from bayesmix.model import bound_model, model_args, target_inputs
from bayesmix.runs import RunTable

__all__ = ["prior_predictive", "sampled_values", "traced_with_factors"]


def traced_with_factors(
    fn: Callable[..., Any], key: jax.Array, *args: Any, exclude: Collection[str] = ()
) -> tuple[dict[str, Any], jax.Array]:
    """Trace ``fn(*args)`` seeded with ``key``; sum the log-densities of its factors.

    Parameters
    ----------
    fn : callable
        A NumPyro model or a law's ``sample_params``.
    key : jax.Array
        PRNG key of the forward draw.
    *args
        ``fn``'s arguments.
    exclude : collection of str
        Observed sites that are not factors (e.g. a likelihood's ``"obs"``).

    Returns
    -------
    trace : dict
        NumPyro's trace of the draw.
    log_factor : Array, shape ``()``
        Sum over the observed sample sites (``numpyro.factor`` terms) not in
        ``exclude`` of their log-densities: the draw's log importance weight.

    Examples
    --------
    A law's sampled sites and their weight, vmapped over keys:

    >>> def proposal(key):  # doctest: +SKIP
    ...     trace, log_w = traced_with_factors(law.sample_params, key, k, loss_scale)
    ...     return sampled_values(trace), log_w
    >>> sites, log_w = jax.vmap(proposal)(jax.random.split(key, 4000))  # doctest: +SKIP
    """
    tr = handlers.trace(handlers.seed(fn, key)).get_trace(*args)
    log_factor = sum(
        (jnp.sum(site["fn"].log_prob(site["value"])) for name, site in tr.items()
         if site["type"] == "sample" and site["is_observed"] and name not in exclude),
        start=jnp.zeros(()),
    )
    return tr, log_factor


def sampled_values(trace: dict[str, Any]) -> dict[str, Any]:
    """The values of a trace's sampled (not observed) sites."""
    return {name: site["value"] for name, site in trace.items()
            if site["type"] == "sample" and not site["is_observed"]}


def prior_predictive(
    key: jax.Array,
    law: Law,
    table: RunTable,
    target: str,
    n_draws: int = 500,
    likelihood: str = "log",
) -> dict[str, np.ndarray]:
    """Draws of the loss at the target's training runs under the prior alone.

    Forward draws of the model are importance-resampled by its factors
    (sampling-importance-resampling from ``4 * n_draws`` proposals).

    Parameters
    ----------
    key : jax.Array
    law : Law
    table : RunTable
    target : str
    n_draws : int
    likelihood : {"log", "raw"}

    Returns
    -------
    dict
        ``loss`` (prior predictive losses, shape ``(n_draws, n)``), ``mean`` (the law's
        mean, same shape), ``observed`` (shape ``(n,)``) and ``rows``.
    """
    if not (isinstance(n_draws, int | np.integer) and n_draws >= 1):
        raise BayesmixError(f"the number of prior draws must be a positive whole number, "
                            f"got {n_draws!r}")
    inputs = target_inputs(law, table, target)
    model = bound_model(law, inputs.k, likelihood)
    args = model_args(inputs, observed=False)
    key_prop, key_pick = jax.random.split(key)

    def proposal(k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        tr, log_factor = traced_with_factors(model, k, *args, exclude=("obs",))
        return tr["mu"]["value"], tr["obs"]["value"], log_factor

    mean, obs, log_w = jax.jit(jax.vmap(proposal))(jax.random.split(key_prop, 4 * n_draws))
    mean, obs, log_w = np.asarray(mean), np.asarray(obs), np.asarray(log_w)
    ok = np.isfinite(log_w) & np.all(np.isfinite(mean) & (mean > 0), axis=-1)
    if not ok.any():
        raise BayesmixError(f"no prior draw of law '{law.name}' gives positive losses")
    # the law's factors (such as the prior on a derived E) as importance weights
    weights = np.where(ok, np.exp(np.where(ok, log_w, -np.inf) - log_w[ok].max()), 0.0)
    pick = numpy_rng(key_pick).choice(len(weights), size=n_draws, p=weights / weights.sum())
    mean, obs = mean[pick], obs[pick]
    with np.errstate(over="ignore"):  # heavy-tailed draws may overflow to inf
        loss = np.exp(obs) if likelihood == "log" else obs
    return {"loss": loss, "mean": mean,
            "observed": np.asarray(inputs.data.loss), "rows": np.asarray(inputs.data.rows)}
