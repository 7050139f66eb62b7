"""NUTS for one target: two-phase warmup with a shared metric, then draws until mixed.

The chains start where :mod:`bayesmix.start` put them, with its Laplace covariance as
the first metric; :func:`warmed_up` adapts the mass matrix per chain, averages it and
adapts the step size under the shared metric; :func:`sample` draws, and while the
chains fail the R-hat or bulk-ESS check (:func:`bayesmix.diagnostics.mixed`) they run
on from where they stopped, without a new warmup.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS

from bayesmix.diagnostics import mixed
from bayesmix.idata import posterior_sites

__all__ = [
    "EXTRA_FIELDS",
    "chain_method",
    "draws_by_chain",
    "joined",
    "sample",
    "smallest_step_size",
    "warmed_up",
]

EXTRA_FIELDS = ("diverging", "num_steps", "energy", "potential_energy", "accept_prob",
                "adapt_state.step_size")
"""Per-draw sampler statistics kept beside the draws."""


def chain_method(chains: int) -> str:
    """Parallel when every chain has a device, otherwise sequential.

    Measured on the additive law (1532 runs, float64): one gradient of 4 vectorized
    chains costs 4 times one chain's, and vectorized NUTS moves in lockstep (each
    iteration costs the longest of the chains' trajectories), so with too few
    devices chains run one after the other. The CLI sets one device per chain.
    """
    return "parallel" if jax.local_device_count() >= chains else "sequential"


def warmed_up(key: jax.Array, model: Any, args: tuple, init: dict, metric: jax.Array, *,
              chains: int, chain_method: str, warmup: int, draws: int, dense_mass: bool,
              target_accept: float, max_tree_depth: int, progress: bool) -> MCMC:
    """An MCMC whose chains have finished warmup with one shared metric and step size.

    With several chains, warmup has two phases. The first ``warmup - warmup // 4``
    iterations adapt each chain's mass matrix (windowed, as NumPyro does) from the
    start covariance ``metric``; the chains' adapted inverse mass matrices are then
    averaged (a covariance estimate from all chains' last windows, four times the
    draws of one) and the last ``warmup // 4`` iterations adapt only the step size
    under that shared metric, from where the chains stopped. Finally every chain takes
    the smallest step size any of them adapted (:func:`smallest_step_size`).

    On the paper's runs chains adapted separately ended with step sizes up to 2.5x
    apart, and the divergences (up to 15 of 4000 on additive arxiv) came from the
    chains with the larger steps; with the shared metric and step size, the 32 fits of
    ``bench/paper_fit.py`` (two laws, eight targets, two seeds) had none.
    """
    def mcmc_for(metric: Any, num_warmup: int, adapt_mass_matrix: bool) -> MCMC:
        kernel = NUTS(model, dense_mass=dense_mass, target_accept_prob=target_accept,
                      max_tree_depth=max_tree_depth, inverse_mass_matrix=metric,
                      adapt_mass_matrix=adapt_mass_matrix)
        return MCMC(kernel, num_warmup=num_warmup, num_samples=draws, num_chains=chains,
                    chain_method=chain_method, progress_bar=progress)

    tune = warmup // 4 if chains > 1 else 0
    if tune:
        key_metric, key = jax.random.split(key)
        first = mcmc_for(metric, warmup - tune, True)
        first.warmup(key_metric, *args, init_params=init)
        state = first.post_warmup_state
        metric = jax.tree.map(lambda m: jnp.mean(m, axis=0),
                              state.adapt_state.inverse_mass_matrix)
        init = state.z
    mcmc = mcmc_for(metric, tune or warmup, not tune)
    mcmc.warmup(key, *args, init_params=init)
    mcmc.post_warmup_state = smallest_step_size(mcmc.post_warmup_state)
    return mcmc


def smallest_step_size(state: Any) -> Any:
    """Every chain samples with the smallest step size adapted by any chain.

    Chains adapt their step sizes separately, and the ones with the larger steps are
    the ones that diverge where the posterior stiffens. The floor, half the median,
    keeps one chain whose adaptation collapsed from slowing all of them.
    """
    step = state.adapt_state.step_size
    common = jnp.maximum(jnp.min(step), 0.5 * jnp.median(step))
    return state._replace(adapt_state=state.adapt_state._replace(
        step_size=jnp.full_like(step, common)))


def sample(mcmc: MCMC, args: tuple, *, draws: int, max_draws: int
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Draws of a warmed-up MCMC, run on in blocks of ``draws // 2`` until mixed.

    Returns
    -------
    samples, extra : dict of name -> ndarray, shape ``(chains, kept, ...)``
        The draws and the sampler statistics :data:`EXTRA_FIELDS`, floats as float64.
    """
    mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=EXTRA_FIELDS)
    samples, extra = draws_by_chain(mcmc)
    # not mixed yet: the chains run on from where they stopped (no new warmup)
    while extra["diverging"].shape[1] < max_draws and not mixed(posterior_sites(samples)):
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.num_samples = min(max(draws // 2, 1), max_draws - extra["diverging"].shape[1])
        mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=EXTRA_FIELDS)
        more_samples, more_extra = draws_by_chain(mcmc)
        samples, extra = joined(samples, more_samples), joined(extra, more_extra)
    return samples, extra


def joined(first: dict[str, np.ndarray], then: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Draws grouped by chain, ``then`` appended to ``first`` along the draw axis."""
    return {name: np.concatenate([v, then[name]], axis=1) for name, v in first.items()}


def draws_by_chain(mcmc: MCMC) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The last run's samples and extra fields as NumPy, floats widened to float64."""
    def numpy64(x: jax.Array) -> np.ndarray:
        x = np.asarray(x)
        return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x

    return ({name: numpy64(v) for name, v in mcmc.get_samples(group_by_chain=True).items()},
            {name: numpy64(v) for name, v in mcmc.get_extra_fields(group_by_chain=True).items()})
