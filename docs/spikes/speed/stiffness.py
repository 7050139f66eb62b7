"""Where is the posterior stiff? The potential's Hessian at posterior draws, whitened by
the draws' covariance (docs/speed.md, third study).

Usage: python docs/spikes/speed/stiffness.py FIT_DIR TARGET
"""
import sys
import numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import potential_energy
from numpyro.distributions import biject_to
from bayesmix import load_fit
from bayesmix.model import bound_model, centred_inputs
from bayesmix.laws import free_sites

path, target = sys.argv[1], sys.argv[2]
tf = load_fit(path).targets[target]
post = tf.idata.posterior
cd = tf.idata.constant_data
law = tf.law
k = cd.weights.shape[1]
ti = list(tf.domains).index(target.removesuffix("_loss")) if target.removesuffix("_loss") in tf.domains else None
log_n, log_d, h = centred_inputs(law, tf.scales, cd.N.values, cd.D.values, cd.weights.values, ti)
loss = jnp.asarray(np.exp(tf.idata.observed_data.obs.values) if tf.likelihood == 'log' else tf.idata.observed_data.obs.values)
w = 1.0 / tf.diagnostics.design_effect
model = bound_model(law, k, tf.likelihood)
args = (jnp.asarray(log_n), jnp.asarray(log_d), jnp.asarray(h), loss, jnp.asarray(tf.scales.loss_scale), jnp.asarray(w))
if "share_order" in post.attrs:  # the sampler's stick order (bayesmix.sticks)
    args = (*args, jnp.asarray([list(tf.domains).index(d) for d in post.attrs["share_order"].split(",")]))
sites = free_sites(model, jax.random.PRNGKey(0), *args)
names = sorted(sites)
tr = {n: biject_to(sites[n]["fn"].support) for n in names}
draws = {n: np.asarray(post[n].values) for n in names}  # (chain, draw, ...)
unc = {n: np.asarray(tr[n].inv(jnp.asarray(draws[n]))) for n in names}
C, S = draws[names[0]].shape[:2]
flat = np.concatenate([unc[n].reshape(C * S, -1) for n in names], axis=1)
labels = []
for n in names:
    size = int(np.prod(unc[n].shape[2:])) or 1
    labels += [n] if size == 1 and unc[n].ndim == 2 else [f"{n}[{i}]" for i in range(size)]
template = {n: jnp.asarray(unc[n][0, 0]) for n in names}
_, unravel = ravel_pytree(template)
pot = jax.jit(lambda x: potential_energy(model, args, {}, unravel(x)))
hess = jax.jit(jax.hessian(lambda x: potential_energy(model, args, {}, unravel(x))))
mu = flat.mean(0); cov = np.cov(flat.T)
L = np.linalg.cholesky(cov)
sd = np.sqrt(np.diag(cov))
print("dims", flat.shape[1], "steps", tf.diagnostics.mean_steps)
ss = tf.idata.sample_stats
print("step size", np.unique(np.asarray(ss["step_size"].values if "step_size" in ss else ss["adapt_state.step_size"].values))[:4])
# marginal shape of each coordinate
z = (flat - mu) / sd
kurt = (z**4).mean(0) - 3; skew = (z**3).mean(0)
# whitened eigen-analysis of the Hessian at many draws
rng = np.random.default_rng(0)
idx = rng.choice(len(flat), 200, replace=False)
kept = []
lam_max = []; vecs = []
for i in idx:
    H = np.asarray(hess(jnp.asarray(flat[i])))
    if not np.all(np.isfinite(H)):
        bad = np.where(~np.isfinite(H).all(0))[0]
        print("nonfinite H at draw", i, [labels[b] for b in bad], "pot", pot(jnp.asarray(flat[i])))
        continue
    Hw = L.T @ H @ L
    ev, V = np.linalg.eigh(0.5 * (Hw + Hw.T))
    kept.append(i); lam_max.append(ev[-1]); vecs.append(L @ V[:, -1])  # direction in unconstrained coords
lam_max = np.array(lam_max); idx = np.array(kept)
print("whitened Hessian max eigenvalue over draws: quantiles 5/50/95/max",
      np.percentile(lam_max, [5, 50, 95, 100]).round(1))
print("implied stable step ~ 2/sqrt(lam):", (2 / np.sqrt(np.percentile(lam_max, [50, 95, 100]))).round(3))
H0 = np.asarray(hess(jnp.asarray(mu)))
ev0 = np.linalg.eigvalsh(L.T @ H0 @ L)
print("whitened Hessian at the mean: eigenvalues", ev0.round(2))
top = np.argsort(lam_max)[-5:]
for j in top:
    v = vecs[j] / sd; v = v / np.linalg.norm(v)
    order = np.argsort(-np.abs(v))[:5]
    print(f"lam {lam_max[j]:.0f}: ", ", ".join(f"{labels[o]} {v[o]:+.2f}" for o in order),
          "| at", ", ".join(f"{labels[o]}={z[idx[j], o]:+.1f}sd" for o in order))
print("marginals (unconstrained, standardised):")
for o in np.argsort(-np.abs(kurt)):
    print(f"  {labels[o]:<12} mean {mu[o]:+9.4f} sd {sd[o]:.4f} skew {skew[o]:+.2f} kurt {kurt[o]:+.2f}")
# correlation of lam_max with coordinates
corr = [np.corrcoef(np.log(lam_max), flat[idx, o])[0, 1] for o in range(flat.shape[1])]
print("corr(log lam_max, coord):", ", ".join(f"{labels[o]} {corr[o]:+.2f}" for o in np.argsort(-np.abs(corr))[:6]))
