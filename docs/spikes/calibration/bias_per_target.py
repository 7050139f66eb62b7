"""A bias per target, drawn from a population, against the shipped shared bias.

The shipped term (``bayesmix.calibrate``) has one bias ``m`` for all targets of a fit,
in units of each target's scale. Here each target has its own ``m_t ~ Normal(mu_m,
s_m)``, with ``mu_m ~ Normal(0, 2)`` on a grid and ``s_m`` uniform on {0.25, 0.5, 1,
2}: the scales' partial pooling applied to the bias. The grid posterior is computed as
the shipped one is (the same fold likelihoods, ``calibrate._log_marginal``), joint
draws are taken (population values, then each target's ``m_t``, then its scales),
and the result is scored at the 2.718B eval rows beside the shipped term, on the same
fold refits (``bias.py``'s cache).

Usage (from the repository root, ../shared/data beside it)::

    python docs/spikes/calibration/bias_per_target.py FIT_DIR [--cache FILE] [--seed 0]

Run it at ``ec1ddec``: it reads the per-fold grid of ``bayesmix.calibrate`` from before
the folds were correlated (``b580f6e`` moved it to ``bayesmix.foldposterior``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bias import arguments, load, score  # noqa: E402

from bayesmix import calibrate as c  # noqa: E402
from bayesmix._random import numpy_rng  # noqa: E402
from bayesmix.discrepancy import Discrepancy  # noqa: E402

MU_GRID = np.linspace(-6.0, 6.0, 25)
SPREADS = np.array([0.25, 0.5, 1.0, 2.0])


def per_target(key, fit, table, residuals) -> dict[str, Discrepancy]:
    h = c._hyper(residuals)  # the shipped grid: its fold likelihoods and evidences
    n_m, n_p, n_tau = c.BIAS_GRID.size, c.GROWTH_GRID.size, c.TAU_GRID.size
    w = h.w  # (tau, median, spread)
    # V[m_t, mu, s_m]: Normal(mu, s_m) on the bias grid, normalised over m_t
    v = np.exp(-0.5 * ((c.BIAS_GRID[:, None, None] - MU_GRID[None, :, None])
                       / SPREADS[None, None, :]) ** 2)
    v /= v.sum(axis=0, keepdims=True)
    # lik[t][m, p, i, j]; y[t][m, p, mu_N, mu_D, s]: the scales integrated out under
    # their population (the shipped evidence, with q = (m, p) unflattened)
    lik = {t: h.lik[t].reshape(n_m, n_p, n_tau, n_tau) for t in h.targets}
    y = {t: h.z[t].reshape(n_m, n_p, *h.z[t].shape[1:]) for t in h.targets}
    # Z[p, mu_N, mu_D, s, mu, s_m]: m_t integrated out under its population
    z = {t: np.einsum("mpabs,mcd->pabscd", y[t], v, optimize=True) for t in h.targets}
    log_pop = (sum(np.log(z[t] + 1e-300) for t in h.targets)
               + (-0.5 * (MU_GRID / 2.0) ** 2)[None, None, None, None, :, None]
               + c._log_prior_scale(c.POP_MEDIANS)[None, :, None, None, None, None]
               + c._log_prior_scale(c.POP_MEDIANS)[None, None, :, None, None, None])
    pop = np.exp(log_pop - log_pop.max())
    pop /= pop.sum()
    rng = numpy_rng(key)
    n = c.HYPER_DRAWS
    ip, a, b, s, mu, sm = np.unravel_index(rng.choice(pop.size, n, p=pop.ravel()),
                                           pop.shape)
    out = {}
    for t in h.targets:
        im, itn, itd = np.empty(n, int), np.empty(n, int), np.empty(n, int)
        for d in range(n):
            pm = y[t][:, ip[d], a[d], b[d], s[d]] * v[:, mu[d], sm[d]]
            im[d] = rng.choice(n_m, p=pm / pm.sum())
            cell = (lik[t][im[d], ip[d]] * w[:, a[d], s[d]][:, None]
                    * w[:, b[d], s[d]][None, :]).ravel()
            itn[d], itd[d] = np.unravel_index(rng.choice(cell.size, p=cell / cell.sum()),
                                              (n_tau, n_tau))
        out[t] = c._term(table, fit.targets[t].rows,
                         [r for r in residuals if r.target == t], itn, itd, ip, im)
        print(f"    {t:<20} m_t {c.BIAS_GRID[im].mean():+.2f} +- {c.BIAS_GRID[im].std():.2f}")
    print(f"  population mu_m {MU_GRID[mu].mean():+.2f} +- {MU_GRID[mu].std():.2f}, "
          f"s_m median {np.median(SPREADS[sm]):.2f}")
    return out


def main() -> None:
    args = arguments(__doc__)
    fit, table, heldout, residuals, key_draw = load(args.fit_dir, args.cache, args.seed)
    shared = c.discrepancies(key_draw, fit, table, residuals)
    score("shared m    ", fit, shared, heldout, args.seed)
    own = per_target(jax.random.fold_in(key_draw, 7), fit, table, residuals)
    score("per-target m", fit, own, heldout, args.seed)


if __name__ == "__main__":
    main()
