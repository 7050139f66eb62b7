"""Approach A: discrepancy delta ~ N(b*d, (tau*d)^2), d = max(0, ln N - ln N_max_train),
shared by every mixture (and D) of one target at one N; (b, tau) learnt by nested
leave-one-size-out over the targets of a study (folds S2 -> larger sizes, S3 -> largest).
Usage: python disc.py PREFIX [TARGETS...]   (PREFIX: additive, additivepool, simadditive0 ...)
"""
import sys, os, glob, numpy as np, scipy.optimize, scipy.stats
OUT = os.path.join(os.path.dirname(__file__), "out")

def load(prefix, s, t):
    p = os.path.join(OUT, f"{prefix}_{s}_{t}.npz")
    return dict(np.load(p)) if os.path.exists(p) else None

def targets_of(prefix):
    return sorted({os.path.basename(p)[len(prefix) + 4:-4] for p in glob.glob(os.path.join(OUT, f"{prefix}_S4_*.npz"))})

FOLDS = tuple(os.environ.get("FOLDS", "S2,S3").split(","))
def groups(prefix, targets, folds=FOLDS, train_sizes=None):
    """LOSO evidence: per (fold, target) the held-out sizes' mean residual, distance,
    posterior covariance of the mean prediction, and sampling variance."""
    out = []
    for s in folds:
        for t in targets:
            f = load(prefix, s, t)
            if f is None:
                continue
            sizes = sorted(set(f["N"])) if train_sizes is None else train_sizes
            held = [n for n in sizes if n > f["nmax"] * 1.001 and n <= max(train_sizes or sizes_full(prefix, t)) * 1.001]
            if not held:
                continue
            lm = f["logmu"].astype(float); ly = np.log(f["y"])
            e, d, M, nv, info = [], [], [], [], []
            for n in held:
                rows = f["N"] == n
                r = ly[rows] - lm[:, rows].mean(0)
                runs = f["run"][rows]
                rm = np.array([r[runs == u].mean() for u in np.unique(runs)])
                e.append(r.mean()); d.append(np.log(n / f["nmax"]))
                M.append(lm[:, rows].mean(1)); nv.append(rm.var(ddof=1) / len(rm))
                # within-size structure: residual vs log D slope, mixture-specific spread
                slope = np.polyfit(np.log(f["D"][rows]), r, 1)[0]
                info.append(dict(n=n, mean=r.mean(), sd_mix=rm.std(ddof=1), slopeD=slope))
            rows = np.isclose(f["N"], f["nmax"]); r = ly[rows] - lm[:, rows].mean(0); runs = f["run"][rows]
            insd = np.std([r[runs == u].mean() for u in np.unique(runs)], ddof=1)
            for x in info:
                x["sd_mix_in"] = insd
            C = np.atleast_2d(np.cov(np.array(M)))
            out.append(dict(fold=s, target=t, e=np.array(e), d=np.array(d), C=C + np.diag(nv), info=info))
    return out

def sizes_full(prefix, t):
    f = load(prefix, "S4", t)
    return sorted(n for n in set(f["N"]) if n <= f["nmax"] * 1.001)

def neg_log_post(theta, G, with_bias):
    b = theta[0] if with_bias else 0.0
    tau = np.exp(theta[-1])
    lp = 0.0
    for g in G:
        cov = tau**2 * np.outer(g["d"], g["d"]) + g["C"]
        lp += scipy.stats.multivariate_normal(b * g["d"], cov).logpdf(g["e"])
    # priors: tau ~ HalfNormal(0.05) (+ log-Jacobian), b ~ Normal(0, 0.02)
    lp += scipy.stats.halfnorm(scale=0.05).logpdf(tau)  # MAP in tau (no log-Jacobian)
    if with_bias:
        lp += scipy.stats.norm(0, 0.02).logpdf(b)
    return -lp

def estimate(G, with_bias):
    x0 = np.array([0.0, np.log(0.01)]) if with_bias else np.array([np.log(0.01)])
    r = scipy.optimize.minimize(neg_log_post, x0, args=(G, with_bias), method="Nelder-Mead")
    return (r.x[0] if with_bias else 0.0), float(np.exp(r.x[-1]))

def predictive(f, rows, b, tau, rng, common=True):
    lm = f["logmu"][:, rows].astype(float)
    d = np.maximum(0.0, np.log(f["N"][rows] / f["nmax"]))
    eps = f["sigma"][:, None] * rng.standard_t(f["nu"][:, None], size=lm.shape)
    z = rng.standard_normal((lm.shape[0], 1)) if common else rng.standard_normal(lm.shape)
    return lm + eps + d * (b + tau * z), lm + d * b

def score(f, rows, b, tau, rng):
    y = f["y"][rows]
    ly, lmb = predictive(f, rows, b, tau, rng)
    q = np.quantile(np.exp(ly), [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    med = np.exp(np.median(lmb, axis=0))
    return dict(c90=(y >= q[0]) & (y <= q[4]), c50=(y >= q[1]) & (y <= q[3]),
                width=(q[4] - q[0]) / q[2], re=(med - y) / y)

def report(prefix, targets, eval_n, b, tau, label, domains=None):
    rng = np.random.default_rng(0)
    acc = {k: [] for k in ("c90", "c50", "width")}; mre = {}; bias = {}
    for t in targets:
        f = load(prefix, "S4", t)
        rows = np.isclose(f["N"], eval_n)
        s = score(f, rows, b, tau, rng)
        for k in acc:
            acc[k].append(s[k])
        mre[t] = np.mean(np.abs(s["re"])); bias[t] = np.mean(s["re"])
    dom = domains or targets
    c90, c50 = np.mean(np.concatenate(acc["c90"])), np.mean(np.concatenate(acc["c50"]))
    w = np.median(np.concatenate(acc["width"])); m = np.mean([mre[t] for t in dom])
    print(f"{label:<34} N={eval_n:.3g}: 90% {100*c90:5.1f}  50% {100*c50:5.1f}  width {100*w:5.2f}%  "
          f"MRE {100*m:5.2f}%  width/MRE {w/m:4.1f}   b={100*b:+.2f}%/lnN tau={100*tau:.2f}%/lnN")
    return dict(c90=c90, c50=c50, width=w, mre=m, by_target={t: (100 * np.mean(a), 100 * bias[t]) for t, a in zip(targets, acc["c90"])})

def main1():
    prefix = sys.argv[1]
    targets = sys.argv[2:] or targets_of(prefix)
    G = groups(prefix, targets)
    print(f"{prefix}: {len(G)} LOSO groups")
    for g in G:
        print(f"  {g['fold']} {g['target']:<14}" + "  ".join(
            f"d={d:.2f} e={100*x['mean']:+.2f}% (slope/d {100*x['mean']/d:+.2f}) sd_mix={100*x['sd_mix']:.2f}% (in {100*x['sd_mix_in']:.2f}%) dE/dlnD={100*x['slopeD']:+.2f}%"
            for d, x in zip(g["d"], g["info"])) + f"  post-sd {100*np.sqrt(np.diag(g['C'])).round(4)}")
    est = {"A0 tau only": estimate(G, False), "A1 bias+tau": estimate(G, True)}
    domains = [t for t in targets if t != "openhermes"] if "openhermes" in targets else None
    ns = sorted(set(load(prefix, "S4", targets[0])["N"]))
    beyond = [n for n in ns if n > load(prefix, "S4", targets[0])["nmax"] * 1.001]
    inside = [n for n in ns if n not in beyond]
    for n in beyond:
        report(prefix, targets, n, 0.0, 0.0, "baseline (today)", domains)
        for k, (b, tau) in est.items():
            r = report(prefix, targets, n, b, tau, k, domains)
        print("   by target (c90 %, bias %) A1:", {t: tuple(round(v, 1) for v in x) for t, x in r["by_target"].items()})
    for n in inside:
        report(prefix, targets, n, 0.0, 0.0, "in-sample, training size", domains)


# ---------------------------------------------------------------- A2: N x D discrepancy
def dref_of(f):
    tr = f["N"] <= f["nmax"] * 1.001
    return float(np.exp(np.mean(np.log(f["D"][tr]))))

def features(f, rows):
    d = np.maximum(0.0, np.log(f["N"][rows] / f["nmax"]))
    return np.stack([d, d * (np.log(f["D"][rows]) - np.log(dref_of(f)))], axis=1)

def groups2(prefix, targets, folds=FOLDS):
    out = []
    for s in folds:
        for t in targets:
            f = load(prefix, s, t); full = load(prefix, "S4", t)
            if f is None:
                continue
            rows = (f["N"] > f["nmax"] * 1.001) & (f["N"] <= full["nmax"] * 1.001)
            if not rows.any():
                continue
            X = features(f, rows); ly = np.log(f["y"][rows]); lm = f["logmu"][:, rows].astype(float)
            P = np.linalg.pinv(X)                        # OLS map, (2, n)
            coef_draws = (ly[None] - lm) @ P.T           # (S, 2)
            coef = coef_draws.mean(0)
            # sampling noise of the OLS coefficients from run-clustered residuals
            res = ly - lm.mean(0) - X @ coef; runs = f["run"][rows]
            G = np.zeros((2, 2))
            for u in np.unique(runs):
                m = runs == u; g = P[:, m] @ res[m]; G += np.outer(g, g)
            out.append(dict(fold=s, target=t, coef=coef, C=np.cov(coef_draws.T) + G))
    return out

def estimate2(G):
    def nlp(th):
        b, bd, lt, ltd = th
        lp = sum(scipy.stats.multivariate_normal([b, bd], np.diag([np.exp(2*lt), np.exp(2*ltd)]) + g["C"]).logpdf(g["coef"]) for g in G)
        lp += scipy.stats.norm(0, 0.02).logpdf(b) + scipy.stats.norm(0, 0.02).logpdf(bd)
        lp += scipy.stats.halfnorm(scale=0.05).logpdf(np.exp(lt)) + scipy.stats.halfnorm(scale=0.05).logpdf(np.exp(ltd))
        return -lp
    r = scipy.optimize.minimize(nlp, [0, 0, np.log(0.01), np.log(0.01)], method="Nelder-Mead", options={"maxiter": 4000})
    b, bd, lt, ltd = r.x
    return b, bd, float(np.exp(lt)), float(np.exp(ltd))

def tau_mix(prefix, targets):
    """Mixture-specific discrepancy: excess between-mixture variance of run-mean residuals
    at held-out sizes over the in-sample one at the fold's largest size, per d^2 (moments)."""
    v = []
    for g in groups(prefix, targets):
        for d, x in zip(g["d"], g["info"]):
            v.append((x["sd_mix"]**2 - x["sd_mix_in"]**2) / d**2)
    v = np.array(v)
    print(f"  tau_mix^2 per group (%/lnN)^2: median {1e4*np.median(v):.2f}, mean {1e4*np.mean(v):.2f}, n={len(v)}")
    return float(np.sqrt(max(0.0, np.median(v))))  # median: robust to the broken 2-size fits

def report2(prefix, targets, eval_n, th, label, domains=None, bias=True, taum=0.0):
    b, bd, tau, taud = th
    if not bias:
        b = bd = 0.0
    rng = np.random.default_rng(0); c90, c50, w, mre = [], [], [], {}
    for t in targets:
        f = load(prefix, "S4", t); rows = np.isclose(f["N"], eval_n); y = f["y"][rows]
        X = features(f, rows); lm = f["logmu"][:, rows].astype(float); S = lm.shape[0]
        eps = f["sigma"][:, None] * rng.standard_t(f["nu"][:, None], size=lm.shape)
        z = rng.standard_normal((S, 2))
        ly = lm + eps + (b + tau * z[:, :1]) * X[:, 0] + (bd + taud * z[:, 1:]) * X[:, 1]
        if taum:
            runs = f["run"][rows]; _, ri = np.unique(runs, return_inverse=True)
            ly = ly + taum * X[:, 0] * rng.standard_normal((S, ri.max() + 1))[:, ri]
        q = np.quantile(np.exp(ly), [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        med = np.exp(np.median(lm, 0) + b * X[:, 0] + bd * X[:, 1])
        c90.append((y >= q[0]) & (y <= q[4])); c50.append((y >= q[1]) & (y <= q[3])); w.append((q[4] - q[0]) / q[2])
        mre[t] = np.mean(np.abs(med - y) / y)
    dom = domains or targets; m = np.mean([mre[t] for t in dom]); wm = np.median(np.concatenate(w))
    print(f"{label:<34} N={eval_n:.3g}: 90% {100*np.mean(np.concatenate(c90)):5.1f}  50% {100*np.mean(np.concatenate(c50)):5.1f}  "
          f"width {100*wm:5.2f}%  MRE {100*m:5.2f}%  width/MRE {wm/m:4.1f}   b={100*b:+.2f} bD={100*bd:+.2f} tau={100*tau:.2f} tauD={100*taud:.2f} (%/lnN)")
    print("   by target c90:", {t: round(100 * np.mean(c), 0) for t, c in zip(targets, c90)})

def main2(prefix, targets):
    G = groups2(prefix, targets)
    for g in G:
        print(f"  {g['fold']} {g['target']:<14} coef/d {100*g['coef'].round(4)}  sd {100*np.sqrt(np.diag(g['C'])).round(4)}")
    th = estimate2(G)
    tm = tau_mix(prefix, targets); print(f"  tau_mix = {100*tm:.2f} %/lnN")
    domains = [t for t in targets if t != "openhermes"] if "openhermes" in targets else None
    f0 = load(prefix, "S4", targets[0])
    for n in sorted(n for n in set(f0["N"]) if n > f0["nmax"] * 1.001):
        report2(prefix, targets, n, th, "A2 NxD bias+tau", domains)
        report2(prefix, targets, n, th, "A2' NxD tau only (no bias shift)", domains, bias=False)
        report2(prefix, targets, n, th, "A3 = A2 + mixture-specific", domains, taum=tm)
    return th

if __name__ == "__main__":
    main1()
    prefix = sys.argv[1]; targets = sys.argv[2:] or targets_of(prefix)
    print("---- A2 (N x D)"); main2(prefix, targets)
