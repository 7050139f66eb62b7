"""Baseline (today's predictive) from the saved Laplace folds: coverage, width, MRE."""
import sys, os, numpy as np
OUT = os.path.join(os.path.dirname(__file__), "out")
TARGETS = ("arxiv", "book", "c4", "github", "commoncrawl", "stackexchange", "wikipedia", "openhermes")

def load(law, s, t):
    return dict(np.load(os.path.join(OUT, f"{law}_{s}_{t}.npz")))

def pp_logy(f, rows, rng, shift=None, sd=None):
    """Predictive draws of log y at rows: logmu + noise (+ N(shift, sd^2) common per draw)."""
    lm = f["logmu"][:, rows].astype(float)
    S = lm.shape[0]
    eps = f["sigma"][:, None] * rng.standard_t(f["nu"][:, None], size=lm.shape)
    out = lm + eps
    if sd is not None:
        out = out + shift[None, :] + sd[None, :] * rng.standard_normal((S, 1))  # common per draw
    return out

def scores(f, rows, rng, shift=None, sd=None):
    y = f["y"][rows]
    ly = pp_logy(f, rows, rng, shift, sd)
    q = np.quantile(np.exp(ly), [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    med_mu = np.exp(np.median(f["logmu"][:, rows], axis=0) + (0 if shift is None else shift))
    return dict(c90=np.mean((y >= q[0]) & (y <= q[4])), c50=np.mean((y >= q[1]) & (y <= q[3])),
                width=np.median((q[4] - q[0]) / q[2]), mre=np.mean(np.abs(med_mu - y) / y),
                bias=np.mean((med_mu - y) / y))

if __name__ == "__main__":
    law = sys.argv[1] if len(sys.argv) > 1 else "additive"
    rng = np.random.default_rng(0)
    res = {}
    for t in TARGETS:
        f = load(law, "S4", t)
        rows = f["N"] == 2718e6
        res[t] = scores(f, rows, rng)
        print(t, {k: round(100 * v, 2) for k, v in res[t].items()})
    c90 = np.mean([r["c90"] for r in res.values()]); c50 = np.mean([r["c50"] for r in res.values()])
    w = np.median([r["width"] for r in res.values()]); mre = np.mean([res[t]["mre"] for t in TARGETS[:7]])
    print(f"pooled c90 {100*c90:.0f} c50 {100*c50:.0f} median-of-target widths {100*w:.2f} mean MRE7 {100*mre:.2f}")
