"""Adapted metric vs posterior covariance of the draws (unconstrained), per tag.

python spike/metric_check.py TAG
"""
import json
import sys

import numpy as np
from scipy import stats

tag = sys.argv[1]
d = np.load(f"/work/scratch_speed/spike/out/{tag}.npz")
res = json.load(open(f"/work/scratch_speed/spike/out/{tag}.json"))
z, minv, lap, names = d["z"], d["minv"], d["laplace"], list(d["names"])
if minv.ndim == 3:
    minv = minv[0]
flat = z.reshape(-1, z.shape[-1])
cov = np.cov(flat.T)
eps = res["step_size_used"]


def gen_eig(a, b):
    """eigenvalues of b^{-1/2} a b^{-1/2}, and eigvectors in original coords"""
    lb = np.linalg.cholesky(b)
    li = np.linalg.inv(lb)
    w, v = np.linalg.eigh(li @ a @ li.T)
    return w, li.T @ v


w, v = gen_eig(cov, minv)
print(f"{tag}: step size {eps:.4f}, steps/draw {res['steps_per_draw']:.1f}, dim {len(names)}")
print("eig(Minv^-1/2 Cov Minv^-1/2):", np.array2string(w, precision=3))
print(f"  condition {w.max() / w.min():.1f}; sqrt(max)/eps = {np.sqrt(w.max()) / eps:.1f} "
      f"(trajectory length in steps to cross the widest direction)")
for j in (0, -1):
    vec = v[:, j] / np.linalg.norm(v[:, j])
    top = np.argsort(-np.abs(vec))[:4]
    print(f"  eig {w[j]:.3f} direction:", ", ".join(f"{names[i]} {vec[i]:+.2f}" for i in top))
wl, vl = gen_eig(cov, lap)
print("eig(Laplace^-1/2 Cov Laplace^-1/2):", np.array2string(wl, precision=3))
for j in (0, -1):
    vec = vl[:, j] / np.linalg.norm(vl[:, j])
    top = np.argsort(-np.abs(vec))[:4]
    print(f"  eig {wl[j]:.3f} direction:", ", ".join(f"{names[i]} {vec[i]:+.2f}" for i in top))
print("per-parameter: sd_draws / sqrt(Minv_ii), sd_draws/sqrt(Lap_ii), skew, excess kurtosis (unconstrained)")
sd = flat.std(0)
for i, n in enumerate(names):
    print(f"  {n:<12} sd {sd[i]:8.4f}  /metric {sd[i] / np.sqrt(minv[i, i]):6.3f}  "
          f"/laplace {sd[i] / np.sqrt(lap[i, i]):6.3f}  skew {stats.skew(flat[:, i]):+6.2f}  "
          f"kurt {stats.kurtosis(flat[:, i]):+6.2f}")
# whitened draws: non-Gaussianity along principal axes of the draws
wc, vc = np.linalg.eigh(cov)
white = (flat - flat.mean(0)) @ vc / np.sqrt(wc)
k = stats.kurtosis(white, axis=0)
s = stats.skew(white, axis=0)
print("whitened principal axes: |skew| max %.2f, kurtosis range %.2f..%.2f" % (np.abs(s).max(), k.min(), k.max()))
for j in np.argsort(-np.abs(k))[:3]:
    vec = vc[:, j]
    top = np.argsort(-np.abs(vec))[:3]
    print(f"  axis kurt {k[j]:+.2f} skew {s[j]:+.2f}:", ", ".join(f"{names[i]} {vec[i]:+.2f}" for i in top))
# correlation of nu, sigma with others
cc = np.corrcoef(flat.T)
for n in ("nu", "sigma", "loss_ref"):
    if n in names:
        i = names.index(n)
        o = np.argsort(-np.abs(cc[i]))[1:4]
        print(f"  corr {n}:", ", ".join(f"{names[j]} {cc[i, j]:+.2f}" for j in o))
