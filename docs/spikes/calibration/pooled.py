"""Approach B (cheap): one MAP+Laplace over all 8 targets with alpha and beta shared
(complete pooling of the scale exponents); each target keeps its own other parameters,
noise and design-effect weight. Starts from per-target MAPs.
Usage: python pooled.py LAW SET [SET...]"""
import sys, time, os
from lib import *  # noqa
import scipy.optimize
from functools import partial
from numpyro.infer.util import potential_energy
from bayesmix.laws import load_law
from bayesmix.fit import _param_names, _inputs, _model, _start_design_effect
law = load_law(sys.argv[1]); OUT = os.path.join(os.path.dirname(__file__), "out")
SHARED = ("alpha", "beta")
for s in sys.argv[2:]:
    t0 = time.time()
    train = load_paper_runs(where(SETS[s]))
    test = load_paper_runs(where(ALL_SIZES))
    pots, unr, flats, infos = [], [], [], []
    for i, target in enumerate(TARGETS):
        inputs = _inputs(law, train, target); loss = jnp.asarray(inputs.data.loss)
        st = find_start(jax.random.fold_in(jax.random.key(0), i), law, inputs.k, inputs.scales,
                        inputs.log_n, inputs.log_d, inputs.h, loss, "log", n_starts=4)
        deff = _start_design_effect(inputs, st, "log")
        model = _model(law, inputs.k, inputs.scales, "log", weight=1.0 / deff)
        args = (inputs.log_n, inputs.log_d, inputs.h, loss)
        u = {k: jnp.asarray(v) for k, v in st.unconstrained.items()}
        pots.append(partial(potential_energy, model, args, {})); infos.append((inputs, model, args, deff))
        unr.append(u)
        print(s, target, "start", f"{time.time()-t0:.0f}s", flush=True)
    # joint vector: shared (alpha, beta) + per-target rest
    sh0 = {k: jnp.mean(jnp.stack([u[k] for u in unr])) for k in SHARED}
    rest = [{k: v for k, v in u.items() if k not in SHARED} for u in unr]
    x0, unravel = ravel_pytree((sh0, rest))
    def U(x):
        sh, rs = unravel(x)
        return sum(p({**r, **sh}) for p, r in zip(pots, rs))
    vg = jax.jit(jax.value_and_grad(U))
    def obj(x):
        v, g = vg(jnp.asarray(x)); v = float(v)
        return (v, np.asarray(g, float)) if np.isfinite(v) else (1e300, np.zeros_like(x))
    r = scipy.optimize.minimize(obj, np.asarray(x0), jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    print(s, "joint opt", r.fun, r.message, f"{time.time()-t0:.0f}s", flush=True)
    H = np.asarray(jax.jit(jax.hessian(U))(jnp.asarray(r.x)))
    H = 0.5 * (H + H.T); ev, V = np.linalg.eigh(H); ev = np.maximum(ev, 1e-2)
    # deff is already in each target's weight: covariance is inverse Hessian of the weighted potential
    cov = (V / ev) @ V.T
    z = np.random.default_rng(0).multivariate_normal(r.x, cov, size=400, method="eigh")
    for i, target in enumerate(TARGETS):
        inputs, model, args, deff = infos[i]
        def con(x, model=model, args=args, i=i):
            sh, rs = unravel(x)
            return constrain_fn(model, args, {}, {**rs[i], **sh}, return_deterministic=True)
        with numpyro.validation_enabled(False):
            d = jax.jit(jax.vmap(con))(jnp.asarray(z))
        pn = _param_names(law, inputs.k, inputs.scales.loss_scale)
        post = TargetPosterior(law=law, target=target, domains=tuple(train.domains), scales=inputs.scales,
                               params={n: np.asarray(d[n], float) for n in pn},
                               noise={"sigma": np.asarray(d["sigma"], float), "nu": np.asarray(d["nu"], float)})
        data = test.target_data(target)
        mean = predict_draws(post, data.n_params, data.n_tokens, data.weights)
        np.savez(os.path.join(OUT, f"{law.name}pool_{s}_{target}.npz"), logmu=np.log(np.clip(mean, 1e-9, None)).astype(np.float32),
                 N=data.n_params, D=data.n_tokens, W=data.weights, y=data.loss, run=data.run,
                 sigma=post.noise["sigma"], nu=post.noise["nu"], deff=deff, nmax=max(SETS[s]),
                 alpha=np.asarray(d["alpha"]), beta=np.asarray(d["beta"]))
    print(s, "alpha", np.median(d["alpha"]), "beta", np.median(d["beta"]), f"{time.time()-t0:.0f}s", flush=True)
