"""Measurement harness for issue 17 (scratch; not project code).

python spike/harness.py TAG target law [key=value ...]
Options: ta, step (smallest|own), scheme (two|single|fixed), warmup, draws, max_draws,
method (parallel|sequential|vectorized), precision, nu (free|fixed:X|inv|log_gamma),
sigma (halfnormal|lognormal), init_metric (laplace|identity), seed.
Writes spike/out/TAG.json (+ .npz with metric and unconstrained draws).
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import scipy.optimize  # noqa: E402
from numpyro import handlers  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

sys.path.insert(0, "/work/scratch_speed/bench")
from _paper import TRAIN_WHERE, load_paper_runs  # noqa: E402

import importlib; F = importlib.import_module("bayesmix.fit")  # noqa: E402
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import noise, on_likelihood_scale  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
os.makedirs(OUT, exist_ok=True)
os.makedirs(os.path.join(HERE, "cache"), exist_ok=True)

# ---- count L-BFGS evaluations of the start search
_NFEV = [0]
_orig_minimize = scipy.optimize.minimize


def _counting_minimize(*a, **kw):
    r = _orig_minimize(*a, **kw)
    _NFEV[0] += int(r.nfev)
    return r


scipy.optimize.minimize = _counting_minimize


def variant_model(law, k, scales, log_n, log_d, h, loss=None, likelihood="log", weight=1.0,
                  nu_mode="free", sigma_mode="halfnormal"):
    params = law.sample_params(k, scales.loss_scale)
    mu = law.mean(params, log_n, log_d, h)
    numpyro.deterministic("mu", mu)
    if sigma_mode == "halfnormal":
        sigma = numpyro.sample("sigma", dist.HalfNormal(0.02))
    elif sigma_mode == "lognormal":  # proper prior on log sigma, same median region
        log_sigma = numpyro.sample("log_sigma", dist.Normal(jnp.log(0.005), 1.5))
        sigma = numpyro.deterministic("sigma", jnp.exp(log_sigma))
    if nu_mode == "free":
        nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
    elif nu_mode.startswith("fixed:"):
        nu = numpyro.deterministic("nu", jnp.asarray(float(nu_mode[6:])))
    elif nu_mode == "inv":  # sample 1/nu with prior transformed from Gamma(2,0.1)
        inv = numpyro.sample("inv_nu", dist.TransformedDistribution(
            dist.Gamma(2.0, 0.1), dist.transforms.PowerTransform(-1.0)))
        nu = numpyro.deterministic("nu", 1.0 / inv)
    positive = mu > 0
    numpyro.factor("positive_loss", jnp.where(jnp.all(positive), 0.0, -jnp.inf))
    loc = on_likelihood_scale(jnp.where(positive, mu, 1.0), likelihood)
    observed = None if loss is None else on_likelihood_scale(loss, likelihood)
    with numpyro.plate("runs", log_n.shape[0]), handlers.scale(scale=weight):
        numpyro.sample("obs", noise(nu, loc, sigma), obs=observed)


def get_start(law, target, nu_mode, sigma_mode, seed=0):
    """find_start of fit.py on the (variant) model; cached on disk."""
    path = os.path.join(HERE, "cache", f"start_{law.name}_{target}_{nu_mode}_{sigma_mode}_{seed}.pkl")
    table = load_paper_runs(TRAIN_WHERE)
    inputs = F._inputs(law, table, target)
    if os.path.exists(path):
        with open(path, "rb") as f:
            return inputs, pickle.load(f)
    base = os.path.join(HERE, "cache", f"start_{law.name}_{target}_free_halfnormal_{seed}.pkl")
    if os.path.exists(base) and (nu_mode != "free" or sigma_mode != "halfnormal"):
        return inputs, derived_start(base, nu_mode, sigma_mode)
    key_start = jax.random.split(jax.random.key(seed), 3)[0]
    orig = F.loss_model
    if nu_mode != "free" or sigma_mode != "halfnormal":
        F.loss_model = lambda *a, **kw: variant_model(*a, nu_mode=nu_mode, sigma_mode=sigma_mode, **kw)
    _NFEV[0] = 0
    t = time.perf_counter()
    start = F.find_start(key_start, law, inputs.k, inputs.scales, inputs.log_n, inputs.log_d,
                         inputs.h, jnp.asarray(inputs.data.loss), "log")
    sec = time.perf_counter() - t
    F.loss_model = orig
    rec = {"start": start, "nfev": _NFEV[0], "seconds": sec}
    with open(path, "wb") as f:
        pickle.dump(rec, f)
    return inputs, rec


def derived_start(base, nu_mode, sigma_mode):
    """The free model's start mapped to a variant's sites (no new search): log_sigma has
    the same unconstrained value; inv_nu = -log nu; fixed nu drops the site."""
    import copy
    with open(base, "rb") as f:
        rec = pickle.load(f)
    st = rec["start"]
    unc = dict(st.unconstrained)
    names = sorted(unc)
    sizes = [int(np.size(unc[n])) for n in names]
    idx, o = {}, 0
    for n, sz in zip(names, sizes):
        idx[n] = list(range(o, o + sz)); o += sz
    cov = np.array(st.covariance)
    sign = np.ones(o)
    if nu_mode == "inv":
        unc["inv_nu"] = -unc.pop("nu"); sign[idx["nu"]] = -1; idx["inv_nu"] = idx.pop("nu")
    elif nu_mode.startswith("fixed"):
        unc.pop("nu"); idx.pop("nu")
    if sigma_mode == "lognormal":
        unc["log_sigma"] = unc.pop("sigma"); idx["log_sigma"] = idx.pop("sigma")
    cov = cov * np.outer(sign, sign)
    order = [i for n in sorted(unc) for i in idx[n]]
    cov = cov[np.ix_(order, order)]
    new = F.StartPoint(unc, st.constrained, st.potential, st.potentials, st.seconds, cov)
    return {"start": new, "nfev": rec["nfev"], "seconds": rec["seconds"]}


def main(tag, target, lawname, **o):
    ta = float(o.get("ta", 0.95))
    step = o.get("step", "smallest")
    scheme = o.get("scheme", "two")
    warmup = int(o.get("warmup", 600))
    draws = int(o.get("draws", 1000))
    max_draws = int(o.get("max_draws", 2 * draws))
    method = o.get("method", "parallel")
    precision = o.get("precision", "float32")
    nu_mode = o.get("nu", "free")
    sigma_mode = o.get("sigma", "halfnormal")
    init_metric = o.get("init_metric", "laplace")
    seed = int(o.get("seed", 0))
    chains = int(o.get("chains", 4))
    law = load_law(lawname)
    if o.get("lr", "0") == "1":  # loss_ref sampled as z: loss_ref = s (1 + 1e-3 z)
        import bayesmix.lawkit as LK
        def irreducible_loss(red, loss_scale):
            z = numpyro.sample("lr_z", dist.Normal(0.0, 250.0))
            loss_ref = numpyro.deterministic("loss_ref", loss_scale * (1 + 1e-3 * z))
            e = numpyro.deterministic("E", loss_ref - red)
            eps = LK._E_FLOOR * loss_scale
            soft = eps * jax.nn.softplus(e / eps)
            numpyro.factor("E_prior", dist.Gamma(2.0, 4.0 / loss_scale).log_prob(soft))
            return e
        law.module.irreducible_loss = irreducible_loss
    t0 = time.perf_counter()
    inputs, rec = get_start(law, target, nu_mode, sigma_mode)
    start = rec["start"]
    if o.get("lr", "0") == "1":
        ls = inputs.scales.loss_scale
        unc = dict(start.unconstrained)
        unc["lr_z"] = (unc.pop("loss_ref") / ls - 1) * 1e3
        names_ = sorted(start.unconstrained); o_ = 0; sc = []
        for n in names_:
            sz = int(np.size(start.unconstrained[n]))
            sc += [1e3 / ls if n == "loss_ref" else 1.0] * sz
        sc = np.asarray(sc)
        start = F.StartPoint(unc, start.constrained, start.potential, start.potentials,
                             start.seconds, start.covariance * np.outer(sc, sc))
    deff = F._start_design_effect(inputs, start, "log")
    model = lambda *a, **kw: variant_model(law, inputs.k, inputs.scales, *a, weight=1.0 / deff,
                                           nu_mode=nu_mode, sigma_mode=sigma_mode, **kw)
    cov = start.covariance * deff
    if init_metric == "identity":
        cov = np.eye(cov.shape[0])
    key_mcmc = jax.random.split(jax.random.key(seed), 3)[1]
    fields = ("diverging", "num_steps", "accept_prob", "adapt_state.step_size")
    warm_steps = []
    with jax.enable_x64(precision == "float64"):
        cast = lambda x: jnp.asarray(np.asarray(x, dtype=precision))
        init = {n: jnp.broadcast_to(cast(v), (chains, *np.shape(v)))
                for n, v in start.unconstrained.items()}
        args = (cast(inputs.log_n), cast(inputs.log_d), cast(inputs.h),
                cast(inputs.data.loss))

        def mk(metric, nw, adapt_mass, ns=draws, adapt_step=True):
            kern = NUTS(model, dense_mass=True, target_accept_prob=ta, max_tree_depth=10,
                        inverse_mass_matrix=metric, adapt_mass_matrix=adapt_mass,
                        adapt_step_size=adapt_step,
                        regularize_mass_matrix=o.get("reg", "1") == "1")
            return MCMC(kern, num_warmup=nw, num_samples=ns, num_chains=chains,
                        chain_method=method, progress_bar=False)

        metric = cast(cov)
        t1 = time.perf_counter()
        if scheme == "two":
            tune = warmup // 4
            k1, k2 = jax.random.split(key_mcmc)
            first = mk(metric, warmup - tune, True)
            first.warmup(k1, *args, init_params=init, collect_warmup=True,
                         extra_fields=("num_steps",))
            warm_steps.append(np.asarray(first.get_extra_fields()["num_steps"]))
            st = first.post_warmup_state
            per_chain_minv = np.asarray(list(st.adapt_state.inverse_mass_matrix.values())[0])
            metric = jax.tree.map(lambda m: jnp.mean(m, axis=0), st.adapt_state.inverse_mass_matrix)
            init = st.z
            mcmc = mk(metric, tune, False)
            mcmc.warmup(k2, *args, init_params=init, collect_warmup=True,
                        extra_fields=("num_steps",))
        elif scheme == "single":
            per_chain_minv = None
            mcmc = mk(metric, warmup, True)
            mcmc.warmup(key_mcmc, *args, init_params=init, collect_warmup=True,
                        extra_fields=("num_steps",))
        elif scheme == "fixed":  # Laplace metric fixed; only step size adapted
            per_chain_minv = None
            mcmc = mk(metric, warmup, False)
            mcmc.warmup(key_mcmc, *args, init_params=init, collect_warmup=True,
                        extra_fields=("num_steps",))
        warm_steps.append(np.asarray(mcmc.get_extra_fields()["num_steps"]))
        st = mcmc.post_warmup_state
        step_sizes = np.asarray(st.adapt_state.step_size).tolist()
        if step == "smallest":
            mcmc.post_warmup_state = F._smallest_step_size(st)
        t2 = time.perf_counter()
        mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=fields)
        samples, extra = F._draws_by_chain(mcmc)
        blocks = 1
        print("first block mixed:", F._mixed(F._posterior_sites(samples)), flush=True)
        while extra["diverging"].shape[1] < max_draws and not F._mixed(F._posterior_sites(samples)):
            mcmc.post_warmup_state = mcmc.last_state
            mcmc.num_samples = min(max(draws // 2, 1), max_draws - extra["diverging"].shape[1])
            mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=fields)
            s2, e2 = F._draws_by_chain(mcmc)
            samples, extra = F._joined(samples, s2), F._joined(extra, e2)
            blocks += 1
        t3 = time.perf_counter()
        final_minv = np.asarray(list(st.adapt_state.inverse_mass_matrix.values())[0])
    import arviz as az
    post = F._posterior_sites(samples)
    ds = az.convert_to_dataset(post)
    rhat = az.rhat(ds); eb = az.ess(ds, method="bulk"); et = az.ess(ds, method="tail")
    worst_b = F._worst(eb.map(lambda x: -x), list(ds.data_vars), 3)
    steps = extra["num_steps"]
    ws = sum(float(np.sum(w)) for w in warm_steps)
    grads_nuts = ws + float(steps.sum())
    grads = grads_nuts + rec["nfev"]
    min_b = F._extreme(eb, np.min)
    res = {
        "tag": tag, "target": target, "law": lawname, "opts": o,
        "steps_per_draw": float(steps.mean()), "steps_per_draw_chain": steps.mean(1).tolist(),
        "warmup_steps_per_iter": ws / (chains * warmup),
        "step_sizes_adapted": step_sizes,
        "step_size_used": float(np.asarray(extra["adapt_state.step_size"])[0, 0]),
        "grads_warmup": ws, "grads_sampling": float(steps.sum()), "grads_start": rec["nfev"],
        "grads_total": grads, "draws_per_chain": int(steps.shape[1]), "blocks": blocks,
        "min_ess_bulk": min_b, "min_ess_tail": F._extreme(et, np.min),
        "max_rhat": F._extreme(rhat, np.max), "divergences": int(extra["diverging"].sum()),
        "ess_per_1000_grads": 1000 * min_b / grads,
        "ess_per_1000_nuts_grads": 1000 * min_b / grads_nuts,
        "worst_bulk": [(n, -v) for n, v in worst_b],
        "mean_accept": float(extra["accept_prob"].mean()),
        "deff": deff, "start_seconds": rec["seconds"],
        "wall_warmup": t2 - t1, "wall_sampling": t3 - t2, "wall_total": t3 - t0,
    }
    positive = {"sigma", "nu", "inv_nu", "alpha", "beta", "gamma_A", "gamma_B"}
    z = {n: (np.log(samples[n]) if n in positive else samples[n])
         for n in start.unconstrained}  # unconstrained draws by site (C, S, ...)
    zflat = np.concatenate([z[n].reshape(z[n].shape[0], z[n].shape[1], -1) for n in sorted(z)], -1)
    names = [f"{n}[{i}]" if z[n].ndim > 2 else n for n in sorted(z)
             for i in range(int(np.prod(z[n].shape[2:])) or 1)]
    np.savez(os.path.join(OUT, f"{tag}.npz"), z=zflat, minv=final_minv, laplace=cov,
             names=np.array(names), per_chain_minv=per_chain_minv if per_chain_minv is not None else np.zeros(1))
    with open(os.path.join(OUT, f"{tag}.json"), "w") as f:
        json.dump(res, f, indent=1, default=float)
    print(json.dumps({k: v for k, v in res.items() if k not in ("opts",)}, default=float))


if __name__ == "__main__":
    tag, target, lawname = sys.argv[1:4]
    main(tag, target, lawname, **dict(a.split("=", 1) for a in sys.argv[4:]))
