"""Nested leave-one-size-out folds (+ the paper split), Laplace posteriors.
For each law x training set x target: draws of log mu at every row of the larger
sizes (paper-split D thresholds) and at the 2.718B eval rows; noise draws; modes.
Usage: python folds.py LAW [SET ...]
"""
import sys, time, os
from lib import *  # noqa
from bayesmix.laws import load_law

law_name = sys.argv[1]
sets = sys.argv[2:] or list(SETS)
law = load_law(law_name)
out = os.path.join(os.path.dirname(__file__), "out"); os.makedirs(out, exist_ok=True)
for s in sets:
    train = load_paper_runs(where(SETS[s]))
    test_sizes = [n for n in ALL_SIZES if n not in SETS[s]]
    test = load_paper_runs(where(list(SETS[s]) + test_sizes))   # all rows: in and beyond
    for i, target in enumerate(TARGETS):
        if os.environ.get("ONLY") and target not in os.environ["ONLY"].split(","):
            continue
        t0 = time.time()
        post, mode, deff, start = laplace_posterior(jax.random.fold_in(jax.random.key(0), i), law, train, target)
        data = test.target_data(target)
        mean = predict_draws(post, data.n_params, data.n_tokens, data.weights)
        mmode = predict_draws(mode, data.n_params, data.n_tokens, data.weights)[0]
        np.savez(os.path.join(out, f"{law_name}_{s}_{target}.npz"), logmu=np.log(np.clip(mean, 1e-9, None)).astype(np.float32),
                 logmode=np.log(mmode), N=data.n_params, D=data.n_tokens, W=data.weights, y=data.loss,
                 run=data.run, sigma=post.noise["sigma"], nu=post.noise["nu"], deff=deff,
                 nmax=max(SETS[s]), dmax=float(train.target_data(target).n_tokens.max()))
        print(law_name, s, target, f"deff {deff:.1f} sigma {np.median(post.noise['sigma']):.4f} nu {np.median(post.noise['nu']):.1f} pot {start.potential:.1f} {time.time()-t0:.0f}s", flush=True)
