"""Prototype: all targets of one law in one compiled program (scratch).

1. start search: optax L-BFGS vmapped over (targets x starts), from prior draws, in JAX;
2. Laplace covariance at each target's mode (vmapped hessian);
3. blackjax NUTS window adaptation + sampling, vmapped over (targets x chains), with the
   Laplace covariance as the initial inverse mass matrix.

python spike/batch_proto.py TAG law targets(comma|all) [ta=0.9 warmup=600 draws=1000
       chains=4 starts=20 iters=300 precision=float32 cache=DIR]
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
from types import SimpleNamespace

import jax

jax.config.update("jax_enable_x64", True)
opts = dict(a.split("=", 1) for a in sys.argv[4:])
if "cache" in opts:
    jax.config.update("jax_compilation_cache_dir", opts["cache"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
import blackjax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import optax  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from numpyro.infer.util import potential_energy  # noqa: E402

sys.path.insert(0, "/work/scratch_speed/bench")
sys.path.insert(0, "/work/scratch_speed/spike")
from _paper import TARGETS, TRAIN_WHERE, load_paper_runs  # noqa: E402

F = importlib.import_module("bayesmix.fit")
from bayesmix.laws import load_law  # noqa: E402
from bayesmix.model import design_effect  # noqa: E402
from harness import variant_model  # noqa: E402

T0 = time.perf_counter()
tag, lawname, tsel = sys.argv[1:4]
targets = list(TARGETS) if tsel == "all" else tsel.split(",")
ta = float(opts.get("ta", 0.9))
W = int(opts.get("warmup", 600))
S = int(opts.get("draws", 1000))
C = int(opts.get("chains", 4))
NS = int(opts.get("starts", 20))
ITERS = int(opts.get("iters", 300))
prec = opts.get("precision", "float32")
law = load_law(lawname)
table = load_paper_runs(TRAIN_WHERE)
ins = [F._inputs(law, table, t) for t in targets]
for i in ins[1:]:  # same rows, same reference point
    assert np.allclose(i.log_n, ins[0].log_n) and i.h.shape == ins[0].h.shape
k = ins[0].k
log_n, log_d, h = ins[0].log_n, ins[0].log_d, ins[0].h
losses = jnp.stack([jnp.asarray(i.data.loss) for i in ins])
lscale = jnp.asarray([i.scales.loss_scale for i in ins])
T = len(targets)


def model(log_n, log_d, h, loss, loss_scale, weight):
    scales = SimpleNamespace(loss_scale=loss_scale)
    variant_model(law, k, scales, log_n, log_d, h, loss, weight=weight)


# unravel from one prior trace
with numpyro.validation_enabled(False):
    z0 = F._prior_draws(jax.random.key(0), F._model(law, k, ins[0].scales, "log"),
                        (log_n, log_d, h, losses[0]), 1)
_, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], z0))
names = sorted(z0)


def U(x, loss, loss_scale, weight, args=(log_n, log_d, h)):
    return potential_energy(model, (*args, loss, loss_scale, weight), {}, unravel(x))


# ----------------------------------------------------------------- 1. start search
def prior_flat(key, t):
    with numpyro.validation_enabled(False):
        z = F._prior_draws(key, F._model(law, k, ins[t].scales, "log"),
                           (log_n, log_d, h, losses[t]), NS)
    return jax.vmap(lambda i: ravel_pytree(jax.tree.map(lambda v: v[i], z))[0])(jnp.arange(NS))


x0 = jnp.stack([prior_flat(jax.random.fold_in(jax.random.key(1), t), t) for t in range(T)])


def lbfgs(x, loss, loss_scale):
    f = lambda y: U(y, loss, loss_scale, 1.0)
    if opts.get("ls", "zoom") == "backtrack":
        opt = optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(
            max_backtracking_steps=20, store_grad=True))
    else:
        opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    def step(carry, _):
        y, st, nfev = carry
        v, g = vg(y, state=st)
        upd, st = opt.update(g, st, y, value=v, grad=g, value_fn=f)
        ls = optax.tree_utils.tree_get(st, "num_linesearch_steps")
        return (optax.apply_updates(y, upd), st, nfev + 1 + ls), v

    (y, st, nfev), vals = jax.lax.scan(step, (x, opt.init(x), 0), None, length=ITERS)
    return y, f(y), nfev


t = time.perf_counter()
run_lbfgs = jax.jit(jax.vmap(jax.vmap(lbfgs, (0, None, None)), (0, 0, 0)))
lowered = run_lbfgs.lower(x0, losses, lscale)
t_lower = time.perf_counter() - t
compiled = lowered.compile()
t_compile_lbfgs = time.perf_counter() - t
t = time.perf_counter()
xs, us, nfev = jax.block_until_ready(compiled(x0, losses, lscale))
t_lbfgs = time.perf_counter() - t
us = np.where(np.isfinite(np.asarray(us)), np.asarray(us), np.inf)
best = np.argmin(us, axis=1)
mode = xs[jnp.arange(T), best]
print("lbfgs: compile %.1fs run %.1fs; best U per target" % (t_compile_lbfgs, t_lbfgs),
      np.round(us[np.arange(T), best], 2), "within 1 of best:", (us - us.min(1, keepdims=True) < 1).sum(1),
      "nfev per start (mean)", float(np.mean(nfev)), flush=True)
hess = jax.jit(jax.vmap(jax.hessian(lambda x, l, s: U(x, l, s, 1.0))))(mode, losses, lscale)
covs = np.stack([F._laplace_covariance(np.asarray(hh)) for hh in hess])
# design effect at the mode, per target
deffs = []
for t_, i in enumerate(ins):
    sites = unravel(mode[t_])
    from numpyro.infer.util import constrain_fn
    with numpyro.validation_enabled(False):
        con = constrain_fn(model, (log_n, log_d, h, losses[t_], lscale[t_], 1.0), {}, sites,
                           return_deterministic=True)
    deffs.append(design_effect(np.log(np.asarray(i.data.loss)) - np.log(np.asarray(con["mu"])),
                               i.data.run))
deffs = np.asarray(deffs)
covs = covs * deffs[:, None, None]
t_start_total = time.perf_counter() - T0
print("deff", np.round(deffs, 2), "start phase total %.1fs" % t_start_total, flush=True)

if opts.get("nuts", "1") == "0":
    json.dump({"tag": tag, "compile_lbfgs": t_compile_lbfgs, "lbfgs_run": t_lbfgs,
               "U_best": us[np.arange(T), best].tolist(), "nfev_mean": float(np.mean(nfev)),
               "start_total": t_start_total}, open(f"/work/scratch_speed/spike/out/{tag}.json", "w"))
    np.savez(f"/work/scratch_speed/spike/out/{tag}.npz", mode=np.asarray(mode), covs=covs, deffs=deffs)
    sys.exit(0)
# ----------------------------------------------------------------- 2. NUTS, vmapped
dt = jnp.float32 if prec == "float32" else jnp.float64


def one_chain(key, x_init, loss, loss_scale, weight, cov):
    logp = lambda x: -U(x, loss, loss_scale, weight)
    kw, ks = jax.random.split(key)
    warm = blackjax.window_adaptation(blackjax.nuts, logp, is_mass_matrix_diagonal=False,
                                      initial_inverse_mass_matrix=cov,
                                      target_acceptance_rate=ta, initial_step_size=0.5,
                                      adaptation_info_fn=lambda s, i, a: i.num_integration_steps)
    (state, params), wsteps = warm.run(kw, x_init, num_steps=W)
    kernel = blackjax.nuts(logp, **params)

    def body(st, kk):
        st, info = kernel.step(kk, st)
        return st, (st.position, info.num_integration_steps, info.is_divergent)

    _, (pos, steps, div) = jax.lax.scan(body, state, jax.random.split(ks, S))
    return pos, steps, div, wsteps, params["step_size"]


with jax.enable_x64(prec == "float64"):
    keys = jax.random.split(jax.random.key(2), T * C).reshape(T, C)
    cast = lambda a: jnp.asarray(np.asarray(a), dt)
    args = (cast(np.broadcast_to(np.asarray(mode)[:, None], (T, C, mode.shape[-1]))),
            cast(losses), cast(lscale), cast(1.0 / deffs), cast(covs))
    log_n, log_d, h = cast(log_n), cast(log_d), cast(h)
    fn = jax.jit(jax.vmap(jax.vmap(
        lambda kk, x, l, s, w, c: one_chain(kk, x, l, s, w, c), (0, 0, None, None, None, None)),
        (0, 0, 0, 0, 0, 0)))
    t = time.perf_counter()
    comp = fn.lower(keys, *args).compile()
    t_compile_nuts = time.perf_counter() - t
    t = time.perf_counter()
    pos, steps, div, wsteps, eps = jax.block_until_ready(comp(keys, *args))
    t_nuts = time.perf_counter() - t

import arviz as az  # noqa: E402

pos, steps, div, wsteps = (np.asarray(a, np.float64) for a in (pos, steps, div, wsteps))
rows = []
for t_, name in enumerate(targets):
    ds = az.convert_to_dataset({"x": pos[t_]})
    eb = float(az.ess(ds, method="bulk")["x"].min())
    et = float(az.ess(ds, method="tail")["x"].min())
    rh = float(az.rhat(ds)["x"].max())
    g = float(steps[t_].sum() + wsteps[t_].sum())
    gs = float(np.sum(nfev[t_]))
    rows.append({"target": name, "steps_per_draw": float(steps[t_].mean()),
                 "warm_steps_per_iter": float(wsteps[t_].mean()),
                 "step_sizes": np.asarray(eps[t_]).tolist(), "grads_nuts": g,
                 "grads_start_lbfgs": gs, "min_ess_bulk": eb, "min_ess_tail": et,
                 "max_rhat": rh, "divergences": int(div[t_].sum()),
                 "ess_per_1000_grads": 1000 * eb / (g + gs),
                 "U_mode": float(us[t_, best[t_]])})
    print(json.dumps(rows[-1]), flush=True)
# lockstep: every iteration costs the max over all T*C chains
lock = float(np.mean(np.max(steps.reshape(T * C, -1), axis=0)))
out = {"tag": tag, "targets": targets, "T": T, "chains": C, "ta": ta, "warmup": W, "draws": S,
       "precision": prec, "compile_lbfgs": t_compile_lbfgs, "lbfgs_run": t_lbfgs,
       "start_phase_total": t_start_total, "compile_nuts": t_compile_nuts, "nuts_run": t_nuts,
       "lockstep_max_steps_per_iter": lock, "wall_total": time.perf_counter() - T0, "rows": rows}
print(json.dumps({k_: v for k_, v in out.items() if k_ != "rows"}), flush=True)
json.dump(out, open(f"/work/scratch_speed/spike/out/{tag}.json", "w"), indent=1)
np.savez(f"/work/scratch_speed/spike/out/{tag}.npz", pos=pos, names=np.array(names))
