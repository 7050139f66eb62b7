"""Targets fitted one at a time, coupled through the training runs they share.

Each target of a study is fitted alone, and :func:`bayesmix.objective.paired_draws`
pairs the targets' draws as independent. But the targets are losses of the same runs,
and a run that is unlucky on one domain is often unlucky on others (on the paper's
runs the run-mean residuals of c4 and commoncrawl correlate at 0.89). The estimation
errors of the targets' laws are then correlated, and the spread of a weighted
objective ``sum_t w_t L_t`` is not the sum of the targets' own: on the paper's runs
the variance of ``f(h_bayes) - f(uniform)`` is 1.8 times what independent pairs give
(docs/calibration.md, "Targets that share runs").

The dependence is measured by the infinitesimal jackknife (Giordano & Broderick 2023),
clustered by run. The influence of run ``c`` on the posterior mean of a functional
``phi_t`` of target ``t``'s parameters is

    psi_tc = lambda_t sum_{i in c} Cov_post(phi_t, log p(y_ti | theta_t))

(``lambda_t`` the fit's likelihood weight, ``1 / design_effect``), and the correlation
``r_st`` of two targets' influences over the runs is the correlation of their
estimates. Each target's own posterior variance ``v_t`` is kept, and the cross terms
are added:

    Var(sum_t w_t phi_t) = sum_t w_t^2 v_t + sum_{s != t} w_s w_t r_st sqrt(v_s v_t)

The ratio of that to ``sum_t w_t^2 v_t``, what independent pairs give, is a
comparison's *variance factor*; its draws are spread about their mean by its square
root (:func:`spread`). A run is the rows with the same ``N`` and weights (its
checkpoints); runs with several seeds of one mixture count as one, a coarser
clustering, which is still valid. With fewer than :data:`MIN_SHARED_RUNS` runs shared
by the targets, the influences' correlations are too noisy to use and nothing is
coupled.

What is coupled: the comparisons of ``h_bayes`` with each other mixture
(``P(h_bayes better)``). Not coupled (docs/calibration.md says by how much that
matters): the spread of ``h*`` over draws, the expected regret, and the objective's
own intervals (for these, the discrepancy's spread dominates beyond the training range).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.model import TargetPosterior, centred_inputs, noise, on_likelihood_scale

__all__ = ["CHUNK", "INFLUENCE_DRAWS", "MIN_SHARED_RUNS", "Coupling", "couple", "law_means",
           "log_likelihood_draws", "run_ids", "run_influences", "spread", "variance_factors"]

MIN_SHARED_RUNS = 30
"""Runs the targets must share for their dependence to be measured (the influences'
correlations over fewer runs are too noisy; cluster-robust variances are commonly
asked for 30 to 50 clusters)."""


class Coupling(NamedTuple):
    """How the targets' shared runs widen the comparisons of ``h_bayes``.

    Attributes
    ----------
    factors : dict of mixture name -> float
        Variance factor of ``f(h_bayes) - f(mixture)`` (1 for an uncoupled one).
    n_runs : int
        Runs shared by at least two of the targets.
    note : str or None
        Why nothing was coupled (None when it was).
    """

    factors: dict[str, float]
    n_runs: int
    note: str | None


INFLUENCE_DRAWS = 1000
"""Draws a target's run influences are estimated from (the log-likelihood of every
training row at every draw is most of the coupling's cost; the halves' products keep
the estimate unbiased at any number)."""

CHUNK = 500
"""Draws evaluated together: one compiled program serves fits of any number of draws."""


def _by_chunks(function, params: Mapping[str, np.ndarray], *per_draw: np.ndarray
               ) -> np.ndarray:
    """``function(params, *per_draw)`` over draws in chunks of :data:`CHUNK` (the last
    padded with its final draw), concatenated along the first axis."""
    n_draws = int(next(iter(params.values())).shape[0])
    out = []
    for start in range(0, n_draws, CHUNK):
        index = np.minimum(np.arange(start, start + CHUNK), n_draws - 1)
        chunk = {name: np.asarray(v)[index] for name, v in params.items()}
        values = function(chunk, *(np.asarray(v)[index] for v in per_draw))
        out.append(np.asarray(values)[: min(CHUNK, n_draws - start)])
    return np.concatenate(out)


def _inputs(posterior: TargetPosterior, n_params: Any, n_tokens: Any, weights: Any):
    return centred_inputs(posterior.law, posterior.scales, np.asarray(n_params, float),
                          np.asarray(n_tokens, float), np.asarray(weights, float),
                          posterior.target_index)


@partial(jax.jit, static_argnums=0)
def _means(mean, params, log_n, log_d, h):
    return jax.vmap(lambda p: mean(p, log_n, log_d, h))(params)


def law_means(posterior: TargetPosterior, n_params: Any, n_tokens: Any,
              weights: Any) -> np.ndarray:
    """The law's loss at given runs for every draw, shape ``(S, n)``.

    Parameters
    ----------
    posterior : TargetPosterior
    n_params, n_tokens : array_like, shape ``(n,)``
    weights : array_like, shape ``(n, k)``
    """
    log_n, log_d, h = _inputs(posterior, n_params, n_tokens, weights)
    return _by_chunks(lambda p: _means(posterior.law.mean, p, log_n, log_d, h),
                      posterior.params)


@partial(jax.jit, static_argnums=(0, 1))
def _row_log_likelihood(mean, likelihood, params, sigma, nu, log_n, log_d, h, observed):
    mu = jax.vmap(lambda p: mean(p, log_n, log_d, h))(params)
    loc = on_likelihood_scale(jnp.where(mu > 0, mu, 1.0), likelihood)
    return noise(nu[:, None], loc, sigma[:, None]).log_prob(observed)


def log_likelihood_draws(posterior: TargetPosterior) -> np.ndarray:
    """Each training row's log-likelihood at every draw, shape ``(S, n)`` (unweighted).

    Raises
    ------
    BayesmixError
        The posterior has no training rows or no noise draws (a point fit).
    """
    rows = posterior.training
    if rows is None or posterior.noise is None:
        raise BayesmixError(f"posterior of '{posterior.target}' has no training rows or noise")
    log_n, log_d, h = _inputs(posterior, rows.n_params, rows.n_tokens, rows.weights)
    observed = np.asarray(rows.observed, float)
    return _by_chunks(
        lambda p, sigma, nu: _row_log_likelihood(posterior.law.mean, posterior.likelihood, p,
                                                 sigma, nu, log_n, log_d, h, observed),
        posterior.params, posterior.noise["sigma"], posterior.noise["nu"])


def run_influences(phi: np.ndarray, loglik: np.ndarray, runs: np.ndarray, n_runs: int,
                   weight: float) -> np.ndarray:
    """Each run's influence on the posterior mean of each functional.

    Parameters
    ----------
    phi : ndarray, shape ``(m, S)``
        Draws of ``m`` functionals of one target's parameters.
    loglik : ndarray, shape ``(S, n)``
        Each training row's log-likelihood at the same draws.
    runs : ndarray of int, shape ``(n,)``
        Run of each row, ``0..n_runs-1``.
    n_runs : int
    weight : float
        The rows' likelihood weight.

    Returns
    -------
    ndarray, shape ``(2, m, n_runs)``
        ``psi`` from the first and from the second half of the draws (independent
        estimates when the halves are different chains), so that a square of the Monte
        Carlo estimate can be taken without its noise (:func:`variance_factors`).
    """
    half = phi.shape[1] // 2
    out = np.zeros((2, phi.shape[0], n_runs))
    for i, part in enumerate((slice(0, half), slice(half, 2 * half))):
        f = phi[:, part] - phi[:, part].mean(axis=1, keepdims=True)
        g = loglik[part] - loglik[part].mean(axis=0, keepdims=True)
        np.add.at(out[i].T, runs, (f @ g / half).T)
    return weight * out


def variance_factors(variances: np.ndarray, influences: np.ndarray,
                     weights: np.ndarray) -> np.ndarray:
    """``Var(sum_t w_t phi_t)`` with the targets' run dependence over the independent one.

    Parameters
    ----------
    variances : ndarray, shape ``(T, m)``
        Each target's posterior variance of each functional.
    influences : ndarray, shape ``(T, 2, m, R)``
        :func:`run_influences` of every target over the same ``R`` runs (0 where a
        target has no rows of a run).
    weights : ndarray, shape ``(T,)``

    Returns
    -------
    ndarray, shape ``(m,)``
        At least 0. A target whose own influences are indistinguishable from Monte
        Carlo noise is left uncoupled.
    """
    psi = influences - influences.mean(axis=-1, keepdims=True)
    first, second = psi[:, 0], psi[:, 1]
    own = np.einsum("tmr,tmr->mt", first, second)  # independent halves: unbiased squares
    both = 0.5 * (first + second)
    cross = np.einsum("smr,tmr->mst", both, both)  # targets' chains are independent
    scaled = np.sqrt(np.clip(variances.T, 0.0, None)) * weights  # (m, T)
    out = np.ones(variances.shape[1])
    for j in range(variances.shape[1]):
        ok = own[j] > 0
        corr = np.eye(len(weights))
        sd = np.sqrt(own[j][ok])
        corr[np.ix_(ok, ok)] = cross[j][np.ix_(ok, ok)] / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        values, vectors = np.linalg.eigh(0.5 * (corr + corr.T))  # nearest PSD
        corr = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
        paired = np.sum(scaled[j] ** 2)
        out[j] = float(scaled[j] @ corr @ scaled[j] / paired) if paired > 0 else 1.0
    return out


def spread(values: Any, factor: float) -> np.ndarray:
    """Draws spread about their mean by ``sqrt(factor)``: variance times ``factor``."""
    values = np.asarray(values, float)
    centre = values.mean()
    return centre + np.sqrt(factor) * (values - centre)


def _thinned(n_draws: int) -> np.ndarray:
    """At most :data:`INFLUENCE_DRAWS` draws, evenly spaced within each half of the draws
    (so that the halves stay apart: different chains when there are several)."""
    half = n_draws // 2
    each = min(half, INFLUENCE_DRAWS // 2)
    first = np.round(np.linspace(0, half - 1, each)).astype(int)
    return np.concatenate([first, first + half])


def run_ids(posteriors: Mapping[str, TargetPosterior]
            ) -> tuple[dict[str, np.ndarray], int, int]:
    """Each target's rows' runs as ids shared by the targets (a run: the rows with the
    same ``N`` and weights), the number of runs, and of those in two targets or more."""
    ids: dict[tuple, int] = {}
    out = {}
    for target, posterior in posteriors.items():
        rows = posterior.training
        keys = [(float(n), *np.round(h, 9).tolist())
                for n, h in zip(rows.n_params, rows.weights, strict=True)]
        out[target] = np.array([ids.setdefault(key, len(ids)) for key in keys], int)
    seen = np.zeros(len(ids), int)
    for run in out.values():
        seen[np.unique(run)] += 1
    return out, len(ids), int(np.sum(seen >= 2))


def couple(posteriors: Mapping[str, TargetPosterior], target_weights: Mapping[str, float],
           n_params: float, n_tokens: float, mixtures: Mapping[str, Any],
           reference: str = "h_bayes") -> Coupling:
    """The variance factor of ``f(reference) - f(mixture)`` for every other mixture.

    Parameters
    ----------
    posteriors : dict target -> TargetPosterior
        The targets with a weight (Bayesian fits with their training rows).
    target_weights : dict target -> float
    n_params, n_tokens : float
        The planned run.
    mixtures : dict name -> array ``(k,)``
        The compared mixtures, ``reference`` among them.
    reference : str

    Returns
    -------
    Coupling
        Factors of 1 and a note when there is one target, a point fit, a fit without
        its rows, or too few shared runs.
    """
    names = [n for n in mixtures if n != reference]
    ones = {n: 1.0 for n in names}
    targets = list(target_weights)
    if len(targets) < 2 or not names:
        return Coupling(ones, 0, None)
    chosen = {t: posteriors[t] for t in targets}
    lacking = [t for t, p in chosen.items()
               if p.training is None or p.noise is None or p.n_draws < 4]
    if lacking:
        return Coupling(ones, 0, f"target(s) {', '.join(lacking)} are not Bayesian fits with "
                                 f"their rows: the targets' draws are paired as independent")
    runs, n_runs, shared = run_ids(chosen)
    if shared < MIN_SHARED_RUNS:
        return Coupling(ones, shared, f"the targets share {shared} runs, fewer than "
                                      f"{MIN_SHARED_RUNS}: too few to measure how their "
                                      f"errors go together; their draws are paired as "
                                      f"independent")
    stacked = np.stack([np.asarray(mixtures[reference], float)]
                       + [np.asarray(mixtures[n], float) for n in names])
    variances, influences = [], []
    for target, posterior in chosen.items():
        at = law_means(posterior, np.full(len(stacked), float(n_params)),
                       np.full(len(stacked), float(n_tokens)), stacked)  # (S, 1 + m)
        phi = (at[:, :1] - at[:, 1:]).T  # (m, S)
        variances.append(phi.var(axis=1))
        keep = _thinned(posterior.n_draws)
        fewer = replace(posterior, params={n: v[keep] for n, v in posterior.params.items()},
                        noise={n: v[keep] for n, v in posterior.noise.items()})
        influences.append(run_influences(phi[:, keep], log_likelihood_draws(fewer),
                                         runs[target], n_runs, posterior.training.weight))
    weights = np.array([target_weights[t] for t in targets], float)
    factors = variance_factors(np.stack(variances), np.stack(influences), weights)
    return Coupling(dict(zip(names, factors.tolist(), strict=True)), shared, None)
