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

(``lambda_t`` the fit's likelihood weight, ``1 / design_effect``; it cancels in what
follows), and the correlation ``r_st`` of two targets' influences over the runs is the
correlation of their estimates. Each target's own posterior variance ``v_t`` is kept,
and the cross terms are added:

    Var(sum_t w_t phi_t) = sum_t w_t^2 v_t + sum_{s != t} w_s w_t r_st sqrt(v_s v_t)

The ratio of that to ``sum_t w_t^2 v_t``, what independent pairs give, is a
comparison's *variance factor* (taken as at least 1); the law's part of each draw of
the difference is spread about its mean by its square root (:func:`widen`), and a
discrepancy's factors, drawn independently of the law, are left as they are. (The law
part weighs target ``t`` by ``w_t E[exp(delta_t)]``; the cross terms would need
``E[exp(delta_s + delta_t)]``, which differs by the factors' covariance, about 1e-3 of
it for a spread of a few per cent: left out.) A run
is the rows with the same ``N`` and weights (its
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
from typing import Any, NamedTuple

import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.idata import row_log_likelihood
from bayesmix.model import TargetPosterior, on_likelihood_scale
from bayesmix.objective import MixtureObjective
from bayesmix.predict import predict_draws
from bayesmix.runs import run_index

__all__ = ["INFLUENCE_DRAWS", "MIN_SHARED_RUNS", "Coupling", "couple", "describe",
           "log_likelihood_draws", "run_ids", "run_influences", "variance_factors", "widen"]

MIN_SHARED_RUNS = 30
"""Runs the targets must share for their dependence to be measured (the influences'
correlations over fewer runs are too noisy; cluster-robust variances are commonly
asked for 30 to 50 clusters)."""


INFLUENCE_DRAWS = 1000
"""Draws a target's run influences are estimated from (the log-likelihood of every
training row at every draw is most of the coupling's cost; the halves' products keep
the estimate unbiased at any number)."""


class Coupling(NamedTuple):
    """How the targets' shared runs widen the comparisons of ``h_bayes``.

    Attributes
    ----------
    factors : dict of mixture name -> float
        Variance factor (at least 1) of the law's part of ``f(h_bayes) - f(mixture)``;
        1 for a comparison not coupled.
    deviations : dict of mixture name -> ndarray, shape ``(S,)``
        That law part of each paired draw of the difference, about its mean
        (:func:`widen`); empty when nothing was coupled.
    n_runs : int
        Runs shared by at least two of the targets.
    note : str or None
        Why nothing was coupled (None when it was).
    """

    factors: dict[str, float]
    deviations: dict[str, np.ndarray]
    n_runs: int
    note: str | None


def log_likelihood_draws(posterior: TargetPosterior) -> np.ndarray:
    """Each training row's log-likelihood at every draw (unweighted).

    Parameters
    ----------
    posterior : TargetPosterior
        With its training rows and noise draws.

    Returns
    -------
    ndarray, shape ``(S, n)``
        As the fit's ``log_likelihood`` group holds it.

    Raises
    ------
    BayesmixError
        The posterior has no training rows or no noise draws (a point fit).
    """
    rows = posterior.training
    if rows is None or posterior.noise is None:
        raise BayesmixError(f"posterior of '{posterior.target}' has no training rows or noise")
    mu = predict_draws(posterior, rows.n_params, rows.n_tokens, rows.weights)
    loc = on_likelihood_scale(np.where(mu > 0, mu, 1.0), posterior.likelihood)
    return np.asarray(row_log_likelihood(rows.observed, loc, posterior.noise["sigma"][:, None],
                                         posterior.noise["nu"][:, None]))


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
        The rows' likelihood weight (it scales every influence of the target alike, so
        it cancels in the correlations :func:`variance_factors` uses).

    Returns
    -------
    ndarray, shape ``(2, m, n_runs)``
        ``psi`` from the first and from the second half of the draws, centred over the
        target's own runs and 0 at runs it does not have. The halves are independent
        estimates when they are different chains (an even number of chains), so that a
        square of the Monte Carlo estimate can be taken without its noise.
    """
    half = phi.shape[1] // 2
    out = np.zeros((2, phi.shape[0], n_runs))
    for i, part in enumerate((slice(0, half), slice(half, 2 * half))):
        f = phi[:, part] - phi[:, part].mean(axis=1, keepdims=True)
        g = loglik[part] - loglik[part].mean(axis=0, keepdims=True)
        np.add.at(out[i].T, runs, (f @ g / half).T)
    own = np.unique(runs)
    out[..., own] -= out[..., own].mean(axis=-1, keepdims=True)
    return weight * out


def variance_factors(variances: np.ndarray, influences: np.ndarray, weights: np.ndarray,
                     floor: float | None = 1.0, guard: float = 2.0) -> np.ndarray:
    """``Var(sum_t w_t phi_t)`` with the targets' run dependence over the independent one.

    Parameters
    ----------
    variances : ndarray, shape ``(T, m)``
        Each target's posterior variance of each functional.
    influences : ndarray, shape ``(T, 2, m, R)``
        :func:`run_influences` of every target over the same ``R`` runs.
    weights : ndarray, shape ``(T,)``
    floor : float or None
        The least factor returned (default 1: a factor below 1, targets whose errors
        go in opposite directions, is taken as 1, since narrowing a comparison on an
        estimate is where a noisy estimate would cost most); None for the estimate.
    guard : float
        Standard errors by which a target's own influences must exceed zero for it to
        be coupled (0: every target whose estimate is positive).

    Returns
    -------
    ndarray, shape ``(m,)``
        A target whose own influences are not ``guard`` standard errors above zero
        (their square, from the halves' products, against the spread of those
        products over the target's runs) is left uncoupled.
    """
    first, second = influences[:, 0], influences[:, 1]
    products = first * second  # (T, m, R): independent halves, unbiased squares
    own = products.sum(axis=-1).T  # (m, T)
    present = np.any(influences != 0, axis=(1, 2))  # (T, R): the runs a target has
    error = np.stack([np.sqrt(p.sum() * products[t][:, p].var(axis=-1))
                      for t, p in enumerate(present)]).T
    both = 0.5 * (first + second)
    cross = np.einsum("smr,tmr->mst", both, both)  # targets' chains are independent
    scaled = np.sqrt(np.clip(variances.T, 0.0, None)) * weights  # (m, T)
    out = np.ones(variances.shape[1])
    for j in range(variances.shape[1]):
        ok = own[j] > guard * error[j]
        corr = np.eye(len(weights))
        sd = np.sqrt(own[j][ok])
        corr[np.ix_(ok, ok)] = cross[j][np.ix_(ok, ok)] / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        values, vectors = np.linalg.eigh(0.5 * (corr + corr.T))  # nearest PSD
        corr = (vectors * np.clip(values, 0.0, None)) @ vectors.T
        corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
        paired = np.sum(scaled[j] ** 2)
        if paired > 0:
            out[j] = float(scaled[j] @ corr @ scaled[j] / paired)
    return out if floor is None else np.maximum(out, floor)


def widen(difference: Any, deviation: Any, factor: float) -> np.ndarray:
    """Draws of a difference whose law part (``deviation``, about its mean) has its
    variance times ``factor``.

    Parameters
    ----------
    difference, deviation : array_like, shape ``(S,)``
    factor : float
        At least 0.

    Returns
    -------
    ndarray, shape ``(S,)``
        ``difference + (sqrt(factor) - 1) deviation``.
    """
    if not (np.isfinite(factor) and factor >= 0):
        raise BayesmixError(f"a variance factor must be finite and >= 0, got {factor}")
    return np.asarray(difference, float) + (np.sqrt(factor) - 1.0) * np.asarray(deviation, float)


def _thinned(n_draws: int) -> np.ndarray:
    """At most :data:`INFLUENCE_DRAWS` draws, evenly spaced within each half of the draws
    (stacked chain by chain, so that with an even number of chains the halves are
    different chains)."""
    half = n_draws // 2
    each = min(half, INFLUENCE_DRAWS // 2)
    first = np.round(np.linspace(0, half - 1, each)).astype(int)
    return np.concatenate([first, first + half])


def run_ids(posteriors: Mapping[str, TargetPosterior]
            ) -> tuple[dict[str, np.ndarray], int, int]:
    """Runs of each target's training rows, as ids shared by the targets.

    Parameters
    ----------
    posteriors : dict target -> TargetPosterior
        With their training rows.

    Returns
    -------
    runs : dict target -> ndarray of int, shape ``(n_t,)``
        A run is the rows with the same ``N`` and weights (its checkpoints), as
        :func:`bayesmix.runs.run_index` defines it.
    n_runs : int
        Runs in any target.
    shared : int
        Runs in two targets or more.
    """
    rows = [p.training for p in posteriors.values()]
    every = run_index(np.concatenate([r.n_params for r in rows]),
                      np.concatenate([r.weights for r in rows]))  # one id per run, all targets
    ends = np.cumsum([len(r.n_params) for r in rows])[:-1]
    out = dict(zip(posteriors, np.split(every, ends), strict=True))
    seen = np.zeros(int(every.max()) + 1, int)
    for run in out.values():
        seen[np.unique(run)] += 1
    return out, seen.size, int(np.sum(seen >= 2))


def couple(objective: MixtureObjective, n_params: float, n_tokens: float,
           mixtures: Mapping[str, Any], *, discrepancy: bool = False,
           reference: str = "h_bayes") -> Coupling:
    """The variance factor of ``f(reference) - f(mixture)`` for every other mixture.

    Parameters
    ----------
    objective : MixtureObjective
        The targets, their weights and their paired draws (Bayesian fits with their
        training rows, to be coupled).
    n_params, n_tokens : float
        The planned run.
    mixtures : dict name -> array ``(k,)``
        The compared mixtures, ``reference`` among them.
    discrepancy : bool
        Whether the objective's draws carry the discrepancy's factors at ``(N, D)``:
        the law's part of a target's difference is then times ``E[exp(delta_t)]``.
    reference : str

    Returns
    -------
    Coupling
        Factors of 1 and a note when there is one target, a point fit, a fit without
        its rows, or too few shared runs.

    Raises
    ------
    BayesmixError
        ``reference`` not among ``mixtures``.
    """
    posteriors, target_weights = objective.posteriors, objective.target_weights
    n_paired = objective.n_draws
    if reference not in mixtures:
        raise BayesmixError(f"no mixture named '{reference}' to compare the others with")
    names = [n for n in mixtures if n != reference]
    ones = {n: 1.0 for n in names}
    if len(target_weights) < 2 or not names:
        return Coupling(ones, {}, 0, "one target: nothing to couple" if names else None)
    chosen = {t: posteriors[t] for t in target_weights}
    lacking = [t for t, p in chosen.items()
               if p.training is None or p.noise is None or p.n_draws < 4]
    if lacking:
        return Coupling(ones, {}, 0, f"target(s) {', '.join(lacking)} are not Bayesian fits "
                                     f"with their rows: the targets' draws are paired as "
                                     f"independent")
    runs, n_runs, shared = run_ids(chosen)
    if shared < MIN_SHARED_RUNS:
        return Coupling(ones, {}, shared, f"the targets share {shared} runs, fewer than "
                                          f"{MIN_SHARED_RUNS}: too few to measure how their "
                                          f"errors go together; their draws are paired as "
                                          f"independent")
    stacked = np.stack([np.asarray(mixtures[reference], float)]
                       + [np.asarray(mixtures[n], float) for n in names])
    means = objective.log_mean_factors(n_params, n_tokens) if discrepancy else {}
    weights = np.array([target_weights[t] * np.exp(means.get(t, 0.0)) for t in chosen])
    variances, influences = [], []
    deviation = np.zeros((len(names), n_paired))
    for w, (target, posterior) in zip(weights, chosen.items(), strict=True):
        at = predict_draws(posterior, np.full(len(stacked), float(n_params)),
                           np.full(len(stacked), float(n_tokens)), stacked)  # (S, 1 + m)
        phi = (at[:, :1] - at[:, 1:]).T  # (m, S)
        variances.append(phi.var(axis=1))
        paired = phi[:, :n_paired]
        deviation += w * (paired - paired.mean(axis=1, keepdims=True))
        keep = _thinned(posterior.n_draws)
        influences.append(run_influences(phi[:, keep],
                                         log_likelihood_draws(posterior.at_draws(keep)),
                                         runs[target], n_runs, posterior.training.weight))
    factors = variance_factors(np.stack(variances), np.stack(influences), weights)
    return Coupling(dict(zip(names, factors.tolist(), strict=True)),
                    dict(zip(names, deviation, strict=True)), shared, None)


def describe(payload: Mapping[str, Any], hint: str = "") -> str | None:
    """One sentence on how ``P(h_bayes better)`` was counted, for a table or a report.

    Parameters
    ----------
    payload : dict
        ``OptimumReport.to_dict()`` (or a saved ``optimum.json``).
    hint : str
        Appended inside the sentence's parenthesis (say, how to turn it off).

    Returns
    -------
    str or None
        None with one target, nothing compared, or a file from before the coupling.
    """
    factors = {name: row["cross_target_variance_factor"]
               for name, row in payload["objective"].items()
               if name != "h_bayes" and "cross_target_variance_factor" in row}
    cross_target = payload.get("cross_target")
    if len(payload["target_weights"]) < 2 or not factors or cross_target is None:
        return None
    if cross_target["note"]:
        return f"P(h_bayes better): {cross_target['note']}"
    listed = ", ".join(f"{name} x{factor:.2f}" for name, factor in factors.items())
    return (f"P(h_bayes better) counts how the targets' errors go together over the "
            f"{cross_target['runs_shared']} runs they share (the variance of the law's part "
            f"of each difference: {listed}{hint})")
