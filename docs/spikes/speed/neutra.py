"""Tenth study (issue 17): does a normalising flow as the metric (NeuTra) remove the wall?

Hoffman et al. 2019 ("NeuTra-lizing bad geometry in HMC with neural transport"): fit an
inverse autoregressive flow to the posterior by variational inference, then run NUTS in
the flow's base space, where a posterior the flow matches is a standard normal whatever
its curvature in the model's coordinates. NumPyro ships it (``AutoIAFNormal``,
``AutoBNAFNormal``, ``NeuTraReparam``).

For one (law, target) of the paper split, the same model, start point, design effect and
share order as ``bayesmix fit`` uses, this runs NumPyro's NUTS (dense metric, 4 chains
one after the other, target_accept 0.95, the start for every chain) on

- ``plain``: the model as ``bayesmix fit`` samples it (NumPyro's own warmup, not
  bayesmix's: a reference inside this script, not a copy of the product's numbers), and
- ``neutra``: the flow's base space, after ``--svi-steps`` of Adam on the ELBO,

and prints leapfrog steps a draw, divergences, min bulk / tail ESS and max R-hat over
the sampled sites in the model's coordinates, and ESS per 1000 gradients with and
without the SVI's gradients (one a step: one particle). Counts, not seconds, are the
comparison; seconds are printed as a guide.

Usage (from a checkout with ../shared/data)::

    python docs/spikes/speed/neutra.py --law additive --target book --svi-steps 4000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoIAFNormal
from numpyro.infer.initialization import init_to_value
from numpyro.infer.reparam import NeuTraReparam
from numpyro.infer.util import initialize_model

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

from _paper import TRAIN_WHERE, load_paper_runs  # noqa: E402

from bayesmix.fit import start_design_effect  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.metric import first_metric  # noqa: E402
from bayesmix.model import bound_model, model_args, target_inputs  # noqa: E402
from bayesmix.start import find_start, in_share_order  # noqa: E402


def summary(draws: np.ndarray) -> tuple[float, float, float]:
    """Min bulk ESS, min tail ESS, max R-hat over the coordinates (chains, draws, d)."""
    import arviz as az

    idata = az.from_dict(posterior={"theta": draws})
    s = az.summary(idata, kind="diagnostics")
    return float(s["ess_bulk"].min()), float(s["ess_tail"].min()), float(s["r_hat"].max())


def run_nuts(key, potential, init, chains, warmup, draws):
    """NumPyro's NUTS on a flat potential; the draws (chains, draws, d) and counts."""
    kernel = NUTS(potential_fn=potential, dense_mass=True, target_accept_prob=0.95)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method="sequential", progress_bar=False)
    t0 = time.perf_counter()
    inits = jnp.broadcast_to(init, (chains, init.shape[0]))
    mcmc.warmup(key, init_params=inits, collect_warmup=True, extra_fields=("num_steps",))
    warm = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    mcmc.run(mcmc.post_warmup_state.rng_key, init_params=inits,
             extra_fields=("num_steps", "diverging"))
    wall = time.perf_counter() - t0
    extra = mcmc.get_extra_fields(group_by_chain=True)
    z = np.asarray(mcmc.get_samples(group_by_chain=True))
    return z, warm, int(np.sum(extra["num_steps"])), int(np.sum(extra["diverging"])), wall


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--law", default="additive")
    p.add_argument("--target", default="book")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=600)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--svi-steps", type=int, default=4000)
    p.add_argument("--flows", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--particles", type=int, default=1)
    p.add_argument("--skip-plain", action="store_true")
    a = p.parse_args()
    jax.config.update("jax_enable_x64", True)
    law = load_law(a.law)
    table = load_paper_runs(TRAIN_WHERE)
    inputs = target_inputs(law, table, a.target)
    key = jax.random.PRNGKey(a.seed)
    k_start, k_plain, k_svi, k_neutra, k_init = jax.random.split(key, 5)
    start = find_start(k_start, law, inputs.k, inputs.scales, inputs.log_n, inputs.log_d,
                       inputs.h, jnp.asarray(inputs.data.loss), "log")
    deff = start_design_effect(inputs.data, start, "log")
    start, order = in_share_order(start)
    model = bound_model(law, inputs.k, "log")
    args = model_args(inputs, 1.0 / deff, dtype="float64", share_order=order)
    info = initialize_model(k_init, model, model_args=args)
    theta0, unravel = ravel_pytree({k: jnp.asarray(v, jnp.float64)
                                    for k, v in start.unconstrained.items()})

    def potential(theta):
        return info.potential_fn(unravel(theta))

    # whiten by the start's Laplace covariance (what bayesmix's first metric is)
    chol = jnp.asarray(np.linalg.cholesky(first_metric(start.covariance * deff)))
    d = theta0.shape[0]

    def white_potential(x):
        return potential(theta0 + chol @ x)

    def white_model(soft=True):
        x = numpyro.sample("x", dist.Normal(jnp.zeros(d), 1.0).to_event(1))
        with numpyro.handlers.block():  # the inner model's sites are not the guide's
            log_p = -white_potential(x) + 0.5 * jnp.sum(x**2)
        if soft:  # SVI: a draw beyond the positive-loss wall costs, not -inf
            log_p = jnp.where(jnp.isfinite(log_p), log_p, -1e4)
        numpyro.factor("log_p", log_p)

    print(f"{a.law} {a.target} seed {a.seed}: {len(inputs.data.loss)} rows, deff "
          f"{deff:.2f}, d {d}, U(start) {float(potential(theta0)):.1f}", flush=True)
    rows = []
    if not a.skip_plain:
        z, warm, draw, div, wall = run_nuts(k_plain, jax.jit(potential), theta0, a.chains,
                                            a.warmup, a.draws)
        rows.append(("plain", warm, draw, 0, div, *summary(z), wall))
        # the same, whitened by the start's metric: what the flow adds beyond it
        z, warm, draw, div, wall = run_nuts(k_plain, jax.jit(white_potential),
                                            jnp.zeros(d), a.chains, a.warmup, a.draws)
        theta = np.asarray(theta0 + z @ chol.T)
        rows.append(("white", warm, draw, 0, div, *summary(theta), wall))
    guide = AutoIAFNormal(white_model, num_flows=a.flows, hidden_dims=[a.hidden, a.hidden],
                          init_loc_fn=init_to_value(values={"x": jnp.zeros(d)}))
    svi = SVI(white_model, guide, numpyro.optim.ClippedAdam(a.lr, clip_norm=10.0),
              Trace_ELBO(num_particles=a.particles))
    t0 = time.perf_counter()
    result = svi.run(k_svi, a.svi_steps, progress_bar=False)
    svi_wall = time.perf_counter() - t0
    losses = np.asarray(result.losses)
    print(f"SVI: {a.svi_steps} steps {svi_wall:.1f} s, -ELBO first 200 / last 200 "
          f"{np.mean(losses[:200]):.1f} / {np.mean(losses[-200:]):.1f}", flush=True)
    neutra = NeuTraReparam(guide, result.params)
    base_model = neutra.reparam(white_model)
    base_info = initialize_model(k_init, base_model, model_args=(False,))

    def base_potential(flat):
        return base_info.potential_fn({f"{guide.prefix}_shared_latent": flat})

    zb, warm, draw, div, wall = run_nuts(k_neutra, jax.jit(base_potential),
                                         jnp.zeros(guide.latent_dim), a.chains, a.warmup,
                                         a.draws)
    x = jax.vmap(lambda b: neutra.transform_sample(b)["x"])(zb.reshape(-1, d))
    theta = np.asarray(theta0 + x @ chol.T).reshape(a.chains, a.draws, d)
    rows.append(("neutra", warm, draw, a.svi_steps * a.particles, div, *summary(theta),
                 wall + svi_wall))
    print(f"{'sampler':<8}{'steps':>7}{'warm grad':>10}{'draw grad':>10}{'svi grad':>9}"
          f"{'div':>5}{'bulk':>7}{'tail':>7}{'R-hat':>7}{'ESS/1k':>8}{'ESS/1k+svi':>11}"
          f"{'wall':>7}")
    for name, warm, draw, svi_g, div, bulk, tail, rhat, wall in rows:
        per = 1e3 * bulk / (warm + draw)
        per_svi = 1e3 * bulk / (warm + draw + svi_g)
        print(f"{name:<8}{draw / (a.chains * a.draws):7.1f}{warm / 1e3:9.0f}k"
              f"{draw / 1e3:9.0f}k{svi_g / 1e3:8.0f}k{div:5d}{bulk:7.0f}{tail:7.0f}"
              f"{rhat:7.3f}{per:8.2f}{per_svi:11.2f}{wall:7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
