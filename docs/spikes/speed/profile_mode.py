"""Cheap non-Gaussianity check at the mode, no sampling.

Hessian of the weighted potential (weight 1/deff, as sampled) at the start; along each
eigen-direction v (unit sd), U(mode + t v) - U(mode) vs t^2/2 for t in +-1, 2, 3.
python spike/profile_mode.py target
"""
import importlib
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402
from numpyro.infer.util import potential_energy  # noqa: E402

sys.path.insert(0, "/work/scratch_speed/spike")
from harness import get_start, variant_model  # noqa: E402

F = importlib.import_module("bayesmix.fit")
from bayesmix.laws import load_law  # noqa: E402

target = sys.argv[1]
law = load_law(sys.argv[2] if len(sys.argv) > 2 else "additive")
inputs, rec = get_start(law, target, "free", "halfnormal")
st = rec["start"]
deff = F._start_design_effect(inputs, st, "log")
model = lambda *a, **kw: variant_model(law, inputs.k, inputs.scales, *a, weight=1.0 / deff, **kw)
args = (inputs.log_n, inputs.log_d, inputs.h, jnp.asarray(inputs.data.loss))
x0, unravel = ravel_pytree({k: jnp.asarray(v) for k, v in st.unconstrained.items()})
names = [f"{n}[{i}]" if np.ndim(st.unconstrained[n]) else n for n in sorted(st.unconstrained)
         for i in range(int(np.size(st.unconstrained[n])))]
U = jax.jit(lambda x: potential_energy(model, args, {}, unravel(x)))
H = np.asarray(jax.jit(jax.hessian(U))(x0))
w, V = np.linalg.eigh(0.5 * (H + H.T))
print(f"{target}: deff {deff:.2f}; constrained at mode: E {float(st.constrained['E']):.4f} "
      f"(floor eps {0.02 * inputs.scales.loss_scale:.4f}), sigma {float(st.constrained['sigma']):.5f}, "
      f"nu {float(st.constrained['nu']):.2f}, loss_scale {inputs.scales.loss_scale:.3f}")
print("posterior sd along Hessian eigvecs (1/sqrt(eig)), widest..narrowest:",
      np.array2string(1 / np.sqrt(np.abs(w[::-1])), precision=3))
print("condition number of Hessian:", f"{w.max() / w.min():.3g}")
u0 = float(U(x0))
ts = np.array([-3, -2, -1, 1, 2, 3.0])
print("direction (top coords) : [U(t)-U0] / (t^2/2) for t = -3 -2 -1 1 2 3")
rows = []
for j in range(len(w)):
    v = V[:, j] / np.sqrt(w[j])
    du = np.array([float(U(x0 + t * v)) - u0 for t in ts]) / (ts**2 / 2)
    rows.append((np.max(np.abs(np.log(np.maximum(du, 1e-3)))), j, du))
for dev, j, du in sorted(rows, reverse=True)[:8]:
    vec = V[:, j]
    top = np.argsort(-np.abs(vec))[:3]
    print(f"  sd {1 / np.sqrt(w[j]):7.3f}  " + ", ".join(f"{names[i]} {vec[i]:+.2f}" for i in top)
          + "  :  " + " ".join(f"{d:6.2f}" for d in du))
# per coordinate profile of nu, sigma, loss_ref (conditional, other coords fixed)
for n in ("nu", "sigma", "loss_ref"):
    i = names.index(n)
    sd = 1 / np.sqrt(H[i, i])
    e = np.zeros_like(np.asarray(x0)); e[i] = sd
    du = np.array([float(U(x0 + t * e)) - u0 for t in ts]) / (ts**2 / 2)
    print(f"  conditional {n} (sd {sd:.3f}): " + " ".join(f"{d:6.2f}" for d in du))
np.savez(f"/work/scratch_speed/spike/out/hess_{target}.npz", H=H, names=np.array(names))
