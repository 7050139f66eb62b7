"""Inside the training range: K-fold CV over mixtures (paper split sizes), Laplace.
Saves held-out rows' log mu draws. Usage: python mixcv.py LAW K"""
import sys, os, time
from lib import *  # noqa
from bayesmix.laws import load_law
law = load_law(sys.argv[1]); K = int(sys.argv[2]); OUT = os.path.join(os.path.dirname(__file__), "out")
full = load_paper_runs(TRAIN_WHERE)
fr = full.frame
wcols = [c for c in fr.columns if c.startswith("h_")]
keys = fr[wcols].round(4).astype(str).agg("|".join, axis=1)
uniq = sorted(set(keys)); rng = np.random.default_rng(0); perm = rng.permutation(len(uniq))
fold_of = {u: int(perm[i] % K) for i, u in enumerate(uniq)}
fold = keys.map(fold_of).to_numpy()
print(len(uniq), "mixtures", np.bincount(fold), flush=True)
import pandas as pd
for k in range(K):
    from bayesmix.runs import RunTable
    import dataclasses
    tr = dataclasses.replace(full, frame=fr[fold != k].reset_index(drop=True))
    te = dataclasses.replace(full, frame=fr[fold == k].reset_index(drop=True))
    for i, target in enumerate(TARGETS):
        t0 = time.time()
        post, mode, deff, _ = laplace_posterior(jax.random.fold_in(jax.random.key(1), i), law, tr, target)
        data = te.target_data(target)
        mean = predict_draws(post, data.n_params, data.n_tokens, data.weights)
        np.savez(os.path.join(OUT, f"mixcv_{law.name}_{k}_{target}.npz"), logmu=np.log(np.clip(mean, 1e-9, None)).astype(np.float32),
                 N=data.n_params, D=data.n_tokens, y=data.loss, run=data.run, sigma=post.noise["sigma"], nu=post.noise["nu"], nmax=1235e6)
        print(k, target, f"{time.time()-t0:.0f}s", flush=True)
