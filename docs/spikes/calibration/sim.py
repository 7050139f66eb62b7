"""Simulated studies: k=3 domains, 3 targets, sizes 1e8..3.2e9 (x2 steps); training =
first 4 sizes; nested LOSO fits (S2, S3) and the full fit (S4), additive law fitted.
Usage: python sim.py TRUE_LAW SEED [SEED...]"""
import sys, os, time
from lib import *  # noqa
from bayesmix.laws import load_law
from bayesmix.simulate import simulate_runs
from bayesmix.runs import load_runs
OUT = os.path.join(os.path.dirname(__file__), "out")
true_law = load_law(sys.argv[1]); fit_law = load_law("additive")
SIZES = (1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9)
for seed in map(int, sys.argv[2:]):
    frame, truth = simulate_runs(jax.random.key(100 + seed), true_law, 3, sizes=SIZES, n_mixtures=10,
                                 noise=0.003, run_noise=0.002)
    path = f"/tmp/sim_{true_law.name}_{seed}.csv"; frame.to_csv(path, index=False)
    for s, n_sizes in (("S4", 4), ("S3", 3), ("S2", 2)):
        train = load_runs(path, where=f"N <= {SIZES[n_sizes-1]*1.01}")
        test = load_runs(path)
        for i, target in enumerate(train.targets):
            t0 = time.time()
            post, mode, deff, st = laplace_posterior(jax.random.fold_in(jax.random.key(seed), i), fit_law, train, target)
            data = test.target_data(target)
            mean = predict_draws(post, data.n_params, data.n_tokens, data.weights)
            np.savez(os.path.join(OUT, f"sim{true_law.name}{seed}_{s}_{target}.npz"),
                     logmu=np.log(np.clip(mean, 1e-9, None)).astype(np.float32), N=data.n_params, D=data.n_tokens,
                     W=data.weights, y=data.loss, run=data.run, sigma=post.noise["sigma"], nu=post.noise["nu"],
                     deff=deff, nmax=SIZES[n_sizes-1], dmax=float(train.target_data(target).n_tokens.max()))
            print(seed, s, target, f"{time.time()-t0:.0f}s", flush=True)
