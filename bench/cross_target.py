"""Targets that share runs: how far independent pairs understate a weighted objective.

For saved multi-target fits (``bayesmix fit --all-targets``), at a planned ``(N, D)``:
for ``f(h_bayes)`` and for ``f(h_bayes) - f(h)`` over the uniform mixture and 24
Dirichlet(1) mixtures, with ``f = sum_t w_t L_t`` (equal weights):

- per target, the infinitesimal-jackknife variance of the posterior mean (clustered by
  run) over the posterior variance: does the design effect calibrate each target alone;
- ``kappa``: the jackknife variance of the weighted functional with each run's
  influences summed over the targets, over the same with the targets independent;
- what ``bayesmix optimize`` applies (:func:`bayesmix.coupling.couple`): the variance
  factor, and ``P(h_bayes better)`` against uniform with and without it.

``--simulate SEEDS`` instead fits simulated runs (additive, 3 domains, 3 targets, 20
mixtures, run offsets correlated across targets at 0 and at 0.8; one study a seed)
and prints the factors: the end-to-end check that a dependence put in is found and
none is invented.

Usage::

    python bench/cross_target.py FIT_DIR [FIT_DIR ...] [--n 2.718e9 --d 20.734e9]
        [--drop openhermes]
    python bench/cross_target.py --simulate 0,1,2
"""

from __future__ import annotations

import argparse

import numpy as np


def jackknife(fit_dir, n_params, n_tokens, drop, seed):
    from bayesmix import load_fit
    from bayesmix.coupling import (
        log_likelihood_draws,
        run_ids,
        run_influences,
        variance_factors,
    )
    from bayesmix.decision import decide
    from bayesmix.predict import predict_draws

    fit = load_fit(fit_dir)
    posteriors = {t: tf.posterior for t, tf in fit.targets.items() if t not in drop}
    targets = list(posteriors)
    weights = {t: 1.0 / len(targets) for t in targets}
    k = len(fit.domains)
    uniform = np.full(k, 1.0 / k)
    first = decide(posteriors, n_params, n_tokens, target_weights=weights,
                   couple_targets=False)
    near = {f"{lam:.2f} of the way to uniform": (1 - lam) * first.h_bayes + lam * uniform
            for lam in (0.05, 0.1, 0.2)}
    report = decide(posteriors, n_params, n_tokens, target_weights=weights,
                    references={"uniform": uniform, **near})
    rng = np.random.default_rng(seed)
    mixtures = np.vstack([report.h_bayes, uniform, rng.dirichlet(np.ones(k), 24)])
    runs, n_runs, shared = run_ids(posteriors)
    print(f"{fit_dir}: law {fit.law.name}, {len(targets)} targets, {n_runs} runs "
          f"({shared} shared)")

    def clustered(psi):
        """The jackknife variance over runs from the halves' influences (centred)."""
        return n_runs / (n_runs - 1) * np.sum(psi[0] * psi[1], axis=-1)

    v_post, v_ind, summed = 0.0, 0.0, 0.0
    psis, variances = [], []
    for t, posterior in posteriors.items():
        at = predict_draws(posterior, np.full(len(mixtures), n_params),
                       np.full(len(mixtures), n_tokens), mixtures).T  # (m, S)
        phi = np.vstack([at[:1], at[:1] - at[1:]])
        psi = run_influences(phi, log_likelihood_draws(posterior), runs[t], n_runs,
                             posterior.training.weight)
        own, variance = clustered(psi), phi.var(axis=1)
        ratio = own / variance
        print(f"  {t:14s} design effect {1 / posterior.training.weight:5.2f}; jackknife / "
              f"posterior variance: level {ratio[0]:5.2f}, differences median "
              f"{np.median(ratio[1:]):5.2f} (5-95 % {np.quantile(ratio[1:], 0.05):5.2f}-"
              f"{np.quantile(ratio[1:], 0.95):5.2f})")
        w = weights[t]
        v_post = v_post + w**2 * variance
        v_ind = v_ind + w**2 * own
        summed = summed + w * psi
        psis.append(psi)
        variances.append(variance)
    v_cor = clustered(summed)
    kappa, total = v_cor / v_ind, v_cor / v_post
    factor = variance_factors(np.stack(variances), np.stack(psis),
                              np.array([weights[t] for t in targets]), floor=None)
    q = (0.05, 0.5, 0.95)

    def quantiles(x):
        return " ".join(f"{v:.2f}" for v in np.quantile(x, q))

    print(f"  level f(h_bayes): kappa {kappa[0]:.2f}, jackknife / paired posterior "
          f"{total[0]:.2f}, factor from the run influences {factor[0]:.2f}")
    print(f"  f(h_bayes) - f(h), 25 mixtures (5/50/95 %): kappa {quantiles(kappa[1:])}; "
          f"jackknife / paired posterior {quantiles(total[1:])}; factor "
          f"{quantiles(factor[1:])}")
    print(f"  uniform: kappa {kappa[1]:.2f}, jackknife / paired posterior {total[1]:.2f}, "
          f"factor {factor[1]:.2f}")
    print(f"  optimize: variance factor against uniform {report.variance_factor('uniform'):.2f}")
    for name in ("uniform", *near):
        print(f"    P(h_bayes better than {name}): {report.p_better(name):.4f} coupled "
              f"(variance x{report.variance_factor(name):.2f}), "
              f"{report.p_better(name, independent=True):.4f} independent")


def simulated(seeds):
    import jax

    from bayesmix import fit
    from bayesmix.decision import decide
    from bayesmix.laws import load_law
    from bayesmix.simulate import simulate_runs

    law = load_law("additive")
    uniform = np.full(3, 1 / 3)
    for seed in seeds:
        for rho in (0.0, 0.8):
            table, _ = simulate_runs(jax.random.key(seed), law, 3, n_mixtures=20,
                                     noise=0.002, run_noise=0.004, run_correlation=rho)
            result = fit(jax.random.key(seed), law, table, list(table.targets), seed=seed)
            first = decide(result.posteriors, 8e9, 160e9, couple_targets=False)
            near = 0.9 * first.h_bayes + 0.1 * uniform
            report = decide(result.posteriors, 8e9, 160e9,
                            references={"uniform": uniform, "near": near})
            failed = [t for t, tf in result.targets.items() if not tf.converged]
            print(f"seed {seed}, run offsets correlated at {rho}: {report.coupling.n_runs} "
                  f"runs shared; variance factor against uniform "
                  f"{report.variance_factor('uniform'):.2f}, against 10 % of the way to "
                  f"uniform {report.variance_factor('near'):.2f} (P(h_bayes better) "
                  f"{report.p_better('near'):.3f} coupled, "
                  f"{report.p_better('near', independent=True):.3f} independent); "
                  f"failed a check: {', '.join(failed) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fits", nargs="*")
    parser.add_argument("--n", type=float, default=2.718e9)
    parser.add_argument("--d", type=float, default=20.734e9)
    parser.add_argument("--drop", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulate", default=None, metavar="SEEDS",
                        help="comma-separated seeds of simulated studies")
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)
    if args.simulate:
        simulated([int(v) for v in args.simulate.split(",")])
    drop = set(filter(None, args.drop.split(",")))
    for fit_dir in args.fits:
        jackknife(fit_dir, args.n, args.d, drop, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
