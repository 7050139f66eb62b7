"""From NUTS draws to an ArviZ InferenceData (posterior, statistics, likelihood, data)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from bayesmix.model import TargetInputs, TrainingRows, noise, noise_draws, on_likelihood_scale

__all__ = ["inference_data", "posterior_sites", "row_log_likelihood", "training_rows"]


@jax.jit
def row_log_likelihood(y: jax.Array, loc: jax.Array, sigma: jax.Array,
                       nu: jax.Array) -> jax.Array:
    """Each row's log-likelihood ``log p(y | loc, sigma, nu)`` under
    :func:`bayesmix.model.noise` (the fit's Student-t).

    Parameters
    ----------
    y, loc, sigma, nu : Array
        Broadcast together: ``y`` the observed values on the likelihood's scale
        ``(n,)``, ``loc`` ``(S, n)``, ``sigma`` and ``nu`` ``(S, 1)``.

    Returns
    -------
    Array
        The broadcast shape (jitted: eager JAX would compile every operation).
    """
    return noise(nu, loc, sigma).log_prob(y)


def inference_data(
    key: jax.Array,
    inputs: TargetInputs,
    domains: tuple[str, ...],
    param_domains: tuple[str, ...],
    samples: dict[str, np.ndarray],
    extra: dict[str, np.ndarray],
    likelihood: str,
) -> Any:
    """The InferenceData of a fit from draws grouped by chain.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the posterior predictive noise.
    inputs : TargetInputs
    domains : tuple of str
        The run table's domains (the weights' columns).
    param_domains : tuple of str
        Coordinates of the law's per-domain parameters.
    samples, extra : dict of name -> ndarray, shape ``(chains, draws, ...)``
        Draws (with the deterministic ``mu``) and sampler statistics
        (:data:`bayesmix.sampling.EXTRA_FIELDS`).
    likelihood : {"log", "raw"}

    Returns
    -------
    arviz.InferenceData
        Groups posterior, sample_stats, log_likelihood, posterior_predictive,
        observed_data, constant_data.
    """
    import arviz as az

    data = inputs.data
    mu = samples["mu"]  # (C, S, n)
    y = on_likelihood_scale(data.loss, likelihood)
    loc = on_likelihood_scale(mu, likelihood)
    sigma, nu = samples["sigma"][..., None], samples["nu"][..., None]
    log_lik = np.asarray(row_log_likelihood(y, loc, sigma, nu))
    pp = noise_draws(key, nu, loc, sigma)
    y = np.asarray(y)
    posterior = posterior_sites(samples)
    coords = {"run": data.rows, "domain": list(param_domains)}
    dims = {"obs": ["run"]}
    for name, value in posterior.items():
        if value.ndim == 3 and value.shape[-1] == len(param_domains):
            dims[name] = ["domain"]
    steps = np.asarray(extra["num_steps"])
    sample_stats = {
        "diverging": np.asarray(extra["diverging"], bool),
        "n_steps": steps,
        "tree_depth": np.ceil(np.log2(steps + 1)).astype(int),
        "energy": np.asarray(extra["energy"]),
        "lp": -np.asarray(extra["potential_energy"]),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
    }
    weights = np.asarray(data.weights)
    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        log_likelihood={"obs": log_lik.astype(np.float32)},
        posterior_predictive={"obs": pp.astype(np.float32)},
        observed_data={"obs": y},
        constant_data={"N": data.n_params, "D": data.n_tokens, "weights": weights,
                       "rows": data.rows},
        coords={**coords, "weight_domain": list(domains)},
        dims={**dims, "N": ["run"], "D": ["run"], "weights": ["run", "weight_domain"],
              "rows": ["run"]},
    )


def posterior_sites(samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sampled sites and the law's derived parameters; not "mu" (one value per run)."""
    return {name: value for name, value in samples.items() if name != "mu"}


def training_rows(idata: Any, weight: float) -> TrainingRows | None:
    """A fit's rows as its likelihood read them (``weight``: the rows' likelihood
    weight), or None when the constant or observed data were not read."""
    groups = idata.groups()
    if "constant_data" not in groups or "observed_data" not in groups:
        return None
    data = idata.constant_data
    return TrainingRows(n_params=np.asarray(data["N"].values, float),
                        n_tokens=np.asarray(data["D"].values, float),
                        weights=np.asarray(data["weights"].values, float),
                        observed=np.asarray(idata.observed_data["obs"].values, float),
                        weight=weight)
