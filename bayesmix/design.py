"""Which run to launch next: the value of a run for the mixture decision, per FLOP.

The decision
------------
At the target scale ``(N*, D*)`` the mixture to launch is ``h_bayes = argmin_h
E[f(h)]`` (:mod:`bayesmix.decision`), and what committing to it may cost is its
expected regret ``R = E[f(h_bayes; theta) - min_h f(h; theta)]`` over the posterior
(with the learnt discrepancy, as ``optimize`` reports it).

The value of a run
------------------
A run ``x`` (:mod:`bayesmix.candidates`), once made, gives its checkpoints' losses
``y``, a new posterior, a new decision and a new expected regret ``R(y)``. Its value
is the regret it is expected to remove::

    V(x) = R - E_y[R(y)] = E[f(h_bayes)] - E_y[ min_h E[f(h) | y] ]

the expected value of sample information (Raiffa and Schlaifer 1961), which is never
negative. It values a run by what it would change in the decision, not by how much it
would narrow the posterior: a run that pins a parameter the mixture does not depend on
is worth nothing, and a run that could overturn ``h_bayes`` is worth much.

Estimated without a refit per candidate
---------------------------------------
By regression over the posterior draws (Strong, Oakley, Brennan and Breeze 2015, the
nonparametric-regression estimator of the expected value of sample information, here
with a linear regression):

- ``S`` posterior draws (evenly thinned from the fit's, paired across targets) and
  ``J`` candidate decisions ``H``: ``h_bayes`` and the per-draw ``h*`` of ``J - 1``
  of those draws, with the objective ``F[j, s]`` at ``(N*, D*)``.
- For every draw ``s``, one fantasised outcome of the run drawn from that draw's
  predictive: each target's checkpoint log-losses ``y = log mu_s + sigma_s eps +
  delta``, reduced to two summaries, their mean and their slope in ``log D``.
- ``E[F_j | y]`` and ``E[f* | y]`` (``f*_s`` is draw ``s``'s own optimum) are the
  least-squares fits of ``F[j, s]`` and ``f*_s`` on the summaries over the draws,
  evaluated at each draw's own fantasy; the expected regret after that outcome is
  ``min_j E[F_j | y] - E[f* | y]``, clipped at 0 (it is never negative, and a linear
  fit of heavy-tailed values can cross that bound: with 4 runs it promised gains of
  20 times the regret before the clip); ``V`` is the regret now minus the mean of
  those, with its standard error. The clip makes values conservative where the regret
  after is near 0 (by 5-15 % in the unit test where a run settles everything).

The noise of a fantasy is the fit's own scale ``sigma`` per draw, read at the fit's
likelihood weight ``1 / design_effect`` (a refit would read the rows that way), and
the discrepancy beyond the training range (:mod:`bayesmix.discrepancy`: its learnt
bias, and one draw of its normals per posterior draw, shared by every run, as the
term is one function of ``(N, D)``). A run one size up is thus worth what it tells beyond what the
discrepancy could explain. (Why not importance weights over the draws: docs/design.md,
"Which run next".) Least squares gains a little on any regressor, even noise (about ``2 T /
S`` of the variance per run): every step also scores ``N_NULL`` uninformative runs
(independent normals for summaries): their mean gain is subtracted from every run's,
and a run joins a batch only when its net gain beats what the best of as many
uninformative runs would gain by chance (their spread times the Bonferroni quantile
at 5 %), so that the winner among a thousand candidates is not chosen for luck. A linear fit
misses value that only a nonlinear function of the outcome would reveal (it then
underestimates).

Batches and budgets
-------------------
A batch's value is that of its runs observed together (their likelihoods multiply).
Runs are added greedily by marginal value; with a FLOP budget, greedily by marginal
value and, separately, by marginal value per FLOP, keeping the better batch (the
cost-effective lazy-forward rule of Leskovec et al. 2007, after Khuller et al. 1999),
so that a batch is worth at least its best single run that fits the budget, and
never holds a run twice.

Stop rule: when the expected regret is already below ``threshold`` times the
predicted objective at ``h_bayes`` (0.1 % by default), no run is worth its cost and
none is suggested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.candidates import Candidates, candidate_runs
from bayesmix.decision import OptimumReport, decide, objective_draws
from bayesmix.fantasy import (
    Fantasies,
    fantasy_summaries,
    now_regret,
    null_summaries,
    project,
    regrets_with_each,
    start_projection,
)
from bayesmix.model import TargetPosterior
from bayesmix.objective import mixture_objective

__all__ = ["DesignSettings", "N_NULL", "STAGES", "Suggestion", "suggest_runs"]

N_NULL = 32
"""Uninformative runs whose gains measure the regression's gain by chance."""

STAGES = ("the decision and the candidate runs", "fantasised checkpoints of each run",
          "the value of each run", "the batch")
"""What :func:`suggest_runs` does, in order (its ``on_stage`` callback names them)."""


class DesignSettings(NamedTuple):
    """How :func:`suggest_runs` estimates values.

    Attributes
    ----------
    n_draws : int
        Posterior draws kept (evenly thinned), ``S``: one fantasy each; at most the
        fits' own number of draws.
    n_decisions : int
        Candidate decisions ``J`` (``h_bayes`` and ``J - 1`` per-draw ``h*``).
    threshold : float
        The stop rule's expected regret, relative to the predicted objective.
    """

    n_draws: int = 2000
    n_decisions: int = 128
    threshold: float = 1e-3


@dataclass(frozen=True)
class Suggestion:
    """What :func:`suggest_runs` found; ``to_dict()`` is the CLI's JSON.

    Attributes
    ----------
    candidates : Candidates
    chosen : tuple of int
        Indices of the suggested runs, in the order chosen (empty when stopped).
    marginal_gain : ndarray, shape ``(B,)``
        What each chosen run adds to the runs before it.
    gain, gain_se : ndarray, shape ``(C,)``
        Each candidate's value alone (net of chance) and its Monte Carlo standard error.
    batch_gain, batch_gain_se : float
        The batch's value (net of chance) and its standard error.
    batch_chance : float
        What the regression gained by chance over the batch's runs (subtracted).
    expected_regret : float
        Current expected regret of ``h_bayes`` (all draws).
    predicted_objective : float
        Posterior median of the objective at ``h_bayes``.
    stop : bool
        Whether the stop rule held (no run suggested).
    reason : str
    decision : OptimumReport
        The current decision at ``(N*, D*)``.
    budget : float or None
        FLOPs allowed for the batch.
    settings : DesignSettings
        As used: ``n_draws`` is the number of draws kept, at most the fits' own.
    largest_training_size : float
        The largest ``N`` of the runs already made (0 when unknown).
    regret_thinned : float
        The expected regret on the thinned draws and candidate decisions, from which
        the values are differences.
    fantasies : Fantasies
        The fantasised summaries and decision values the values came from.
    """

    candidates: Candidates
    chosen: tuple[int, ...]
    marginal_gain: np.ndarray
    gain: np.ndarray
    gain_se: np.ndarray
    batch_gain: float
    batch_gain_se: float
    batch_chance: float
    expected_regret: float
    predicted_objective: float
    stop: bool
    reason: str
    decision: OptimumReport
    budget: float | None
    settings: DesignSettings
    largest_training_size: float
    regret_thinned: float
    fantasies: Fantasies = field(repr=False)

    @property
    def regret_after(self) -> float:
        """The expected regret after the batch, on the draws its gain was measured on."""
        return max(0.0, self.regret_thinned - self.batch_gain)

    def run_reason(self, index: int, marginal: float) -> str:
        """One line on why candidate ``index`` is in the batch."""
        c = self.candidates
        n, largest = c.n_params[index], self.largest_training_size
        if largest > 0 and n > largest * (1 + 1e-9):
            size = f"{n / largest:.2g}x the largest size run so far"
        else:
            size = "a size already run"
        origin = c.origin[index]
        mixture = {"random": "a random mixture", "uniform": "the uniform mixture",
                   "h_bayes": "h_bayes", "file": "your candidate"}.get(
            origin, origin.replace("h* of draw", "the optimum h* of posterior draw"))
        base = self.regret_thinned  # the gains are differences from it
        share = 100 * marginal / base if base > 0 else 0.0
        alone = 100 * self.gain[index] / base if base > 0 else 0.0
        rows = int(c.mask[index].sum())
        return (f"{size} to {c.n_tokens[index] / n:.3g} tokens per parameter "
                f"({rows} checkpoint{'s' if rows > 1 else ''}), {mixture}: {share:.0f} % "
                f"of the expected regret in this batch, {alone:.0f} % alone")

    def candidate_table(self) -> Any:
        """Every candidate with its value alone: a DataFrame, one row per run."""
        import pandas as pd

        c = self.candidates
        frame = pd.DataFrame(c.weights, columns=[f"h_{d}" for d in c.domains])
        frame.insert(0, "D", c.n_tokens)
        frame.insert(0, "N", c.n_params)
        frame["checkpoints"] = c.mask.sum(axis=1)
        frame["origin"] = list(c.origin)
        frame["cost_flops"] = c.cost
        frame["expected_gain"] = self.gain
        frame["gain_se"] = self.gain_se
        frame["gain_per_flop"] = self.gain / c.cost
        frame["chosen"] = 0
        frame.loc[list(self.chosen), "chosen"] = np.arange(1, len(self.chosen) + 1)
        return frame

    def to_dict(self) -> dict[str, Any]:
        c = self.candidates
        cost = c.cost
        runs = []
        for index, marginal in zip(self.chosen, self.marginal_gain, strict=True):
            runs.append({
                "N": float(c.n_params[index]), "D": float(c.n_tokens[index]),
                "mixture": dict(zip(c.domains, c.weights[index].tolist(), strict=True)),
                "checkpoints": c.checkpoints[index][c.mask[index]].tolist(),
                "cost_flops": float(cost[index]),
                "expected_gain": float(marginal),
                "expected_gain_alone": float(self.gain[index]),
                "gain_se": float(self.gain_se[index]),
                "gain_per_flop": float(marginal / cost[index]),
                "reason": self.run_reason(index, float(marginal)),
            })
        return {
            "N": self.decision.n_params, "D": self.decision.n_tokens,
            "h_bayes": dict(zip(c.domains, self.decision.h_bayes.tolist(), strict=True)),
            "expected_regret": self.expected_regret,
            "predicted_objective": self.predicted_objective,
            "relative_regret": self.expected_regret / self.predicted_objective,
            "threshold": self.settings.threshold,
            "stop": self.stop, "reason": self.reason,
            "budget_flops": self.budget,
            "runs": runs,
            "batch": {"expected_gain": self.batch_gain, "gain_se": self.batch_gain_se,
                      "expected_regret_before": self.regret_thinned,
                      "expected_regret_after": self.regret_after,
                      "cost_flops": float(cost[list(self.chosen)].sum()),
                      "chance_gain_subtracted": self.batch_chance},
            "n_candidates": len(c),
            "settings": self.settings._asdict(),
        }


def _selection_quantile(count: int, level: float = 0.05) -> float:
    """``z`` such that the best of ``count`` chance gains exceeds ``z`` null sds with
    probability about ``level`` (Bonferroni, normal null)."""
    from scipy.stats import norm

    return float(norm.isf(level / max(count, 1)))


class _Batch(NamedTuple):
    chosen: tuple[int, ...]
    marginal: np.ndarray
    gain: float
    gain_se: float
    chance: float


def _greedy(fantasies: Fantasies, cost: np.ndarray, batch: int, budget: float | None,
            per_flop: bool, first: tuple[np.ndarray, np.ndarray]) -> _Batch:
    """Add runs one at a time by marginal value (or value per FLOP) within the budget.

    ``first`` is the expected regret per draw with no run chosen, for the runs
    ``(C, S)`` and for the uninformative runs ``(K, S)``. Each step's marginal values
    are net of the uninformative runs' mean marginal (the regression's chance gain),
    and a run is added only while its net gain beats what the best of as many
    uninformative runs would gain by chance (5 %, Bonferroni over the candidates).
    """
    values, optimum = jnp.asarray(fantasies.values), jnp.asarray(fantasies.optimum)
    summaries, null = jnp.asarray(fantasies.summaries), jnp.asarray(fantasies.null)
    now = now_regret(fantasies)
    projection = start_projection(fantasies, batch)
    chosen: list[int] = []
    marginals: list[float] = []
    raw, net, se = 0.0, 0.0, 0.0
    left = np.inf if budget is None else float(budget)
    for step in range(batch):
        after, null_after = first if step == 0 else (
            np.asarray(regrets_with_each(projection, x, values, optimum))
            for x in (summaries, null))
        gains = now - after.mean(axis=1)
        null_marginal = now - null_after.mean(axis=1) - raw
        marginal = gains - raw - null_marginal.mean()
        eligible = cost <= left * (1 + 1e-12)
        eligible[chosen] = False
        # worth more than the best of that many uninformative runs would gain by chance
        eligible &= marginal > _selection_quantile(int(eligible.sum())) * null_marginal.std(
            ddof=1)
        if not eligible.any():
            break
        score = np.where(eligible, marginal / cost if per_flop else marginal, -np.inf)
        pick = int(np.argmax(score))
        chosen.append(pick)
        marginals.append(float(marginal[pick]))
        raw, net = float(gains[pick]), net + float(marginal[pick])
        se = float(np.std(after[pick], ddof=1) / np.sqrt(after.shape[1]))
        left -= float(cost[pick])
        projection = project(projection, fantasies, pick)
    return _Batch(tuple(chosen), np.array(marginals), net, se, raw - net)


# --------------------------------------------------------------------------- the API


def _check_posteriors(posteriors: Mapping[str, TargetPosterior]) -> None:
    if not posteriors:
        raise BayesmixError("no fitted targets given to suggest runs for")
    for target, posterior in posteriors.items():
        if posterior.n_draws < 2 or posterior.noise is None:
            raise BayesmixError(
                f"suggesting runs needs posterior draws, but the fit of '{target}' is a "
                f"point fit (a baseline): use a Bayesian fit")


def _check_settings(batch: int, budget: float | None, settings: DesignSettings) -> None:
    if batch < 1:
        raise BayesmixError(f"batch must be at least 1, got {batch}")
    if budget is not None and not (np.isfinite(budget) and budget > 0):
        raise BayesmixError(f"budget must be a positive number of FLOPs, got {budget}")
    if settings.n_draws < 10 or settings.n_decisions < 1:
        raise BayesmixError(f"n_draws must be at least 10 and n_decisions at least 1, "
                            f"got {settings.n_draws} and {settings.n_decisions}")
    if not (np.isfinite(settings.threshold) and settings.threshold >= 0):
        raise BayesmixError(f"threshold must be >= 0, got {settings.threshold}")


def suggest_runs(
    key: jax.Array,
    posteriors: Mapping[str, TargetPosterior],
    n_params: float,
    n_tokens: float,
    *,
    train_n: Any = None,
    train_d: Any = None,
    candidates: Candidates | None = None,
    target_weights: Mapping[str, float] | None = None,
    lower: Any = None,
    upper: Any = None,
    likelihood_weights: Mapping[str, float] | None = None,
    batch: int = 1,
    budget: float | None = None,
    settings: DesignSettings | None = None,
    n_random: int = 40,
    sizes_up: int = 1,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> Suggestion:
    """The runs worth launching next for the mixture decision at ``(N*, D*)``.

    Parameters
    ----------
    key : jax.Array
        PRNG key (discrepancy draws, candidate mixtures, fantasies).
    posteriors : dict target -> TargetPosterior
        Bayesian fits (with draws and noise) sharing one run table's domains.
    n_params, n_tokens : float
        ``N*`` and ``D*`` of the planned large run.
    train_n, train_d : array_like, shape ``(n,)``, optional
        The runs already made (needed for the default candidates and checkpoints).
    candidates : Candidates, optional
        Runs to choose from (default :func:`bayesmix.candidates.candidate_runs` with
        ``h_bayes``, eight per-draw ``h*`` and the uniform mixture among them).
    target_weights : dict target -> float, optional
        ``w_t`` of the objective (default equal).
    lower, upper : array_like, shape ``(k,)``, optional
        Weight bounds of the decision and of the candidate mixtures.
    likelihood_weights : dict target -> float, optional
        Each fit's likelihood weight ``1 / design_effect`` (default 1).
    batch : int
        Runs to choose together.
    budget : float, optional
        FLOPs the batch may cost (``6 N D`` a run); without it runs are chosen by
        value alone.
    settings : DesignSettings, optional
        Default ``DesignSettings()``.
    n_random, sizes_up : int
        For the default candidates.
    on_stage : callable, optional
        ``on_stage(what, index, count)`` before each of the :data:`STAGES`, for
        progress displays.

    Returns
    -------
    Suggestion

    Raises
    ------
    BayesmixError
        A point fit, bad settings, no candidate within the budget, or what
        :func:`bayesmix.decision.decide` refuses.
    """
    settings = DesignSettings() if settings is None else settings
    _check_posteriors(posteriors)
    _check_settings(batch, budget, settings)

    def stage(index: int) -> None:
        if on_stage is not None:
            on_stage(STAGES[index], index, len(STAGES))

    stage(0)
    # the decision with the key itself, as `optimize` makes it at the same --seed
    key_mixtures, key_fantasy = jax.random.split(jax.random.fold_in(key, 1))
    report = decide(posteriors, n_params, n_tokens, target_weights=target_weights,
                    lower=lower, upper=upper, key=key,
                    couple_targets=False)  # regret only: not coupled
    regret = report.expected_regret()
    predicted = float(np.median(report.objective["h_bayes"]))
    n_all = report.h_star_values.shape[0]
    index = np.unique(np.round(np.linspace(0, n_all - 1, min(settings.n_draws, n_all))
                               ).astype(int))
    if candidates is None:
        if train_n is None or train_d is None:
            raise BayesmixError("the default candidate runs need train_n and train_d")
        spread = index[np.round(np.linspace(0, len(index) - 1, 8)).astype(int)]
        named = {"h_bayes": report.h_bayes, "uniform": np.full(len(report.domains),
                                                               1 / len(report.domains)),
                 **{f"h* of draw {s}": report.h_star_draws[s] for s in spread}}
        candidates = candidate_runs(key_mixtures, report.domains, train_n, train_d,
                                    mixtures=named, lower=report.lower, upper=report.upper,
                                    n_random=n_random, sizes_up=sizes_up)
    elif tuple(candidates.domains) != tuple(report.domains):
        raise BayesmixError(f"candidate runs have domains {candidates.domains} but the fits "
                            f"have {report.domains}")
    cost = candidates.cost
    if budget is not None and not np.any(cost <= budget):
        raise BayesmixError(f"no candidate run fits within the budget of {budget:.3g} FLOPs "
                            f"(the cheapest costs {cost.min():.3g})")
    stage(1)
    objective = mixture_objective(posteriors, target_weights)
    factors = objective.discrepancy_factors(key, n_params, n_tokens)  # as decide drew them
    valued = objective.with_factors(factors) if factors else objective
    picks = index[np.round(np.linspace(0, len(index) - 1, settings.n_decisions - 1)
                           ).astype(int)] if settings.n_decisions > 1 else index[:0]
    decisions = np.concatenate([report.h_bayes[None], report.h_star_draws[picks]])
    values = objective_draws(valued, n_params, n_tokens, decisions)[:, index]
    used = {t: posteriors[t] for t in objective.target_weights}
    paired = {t: replace(p, params=objective.params[t]) for t, p in used.items()}
    summaries = fantasy_summaries(key_fantasy, paired, candidates, index,
                                  likelihood_weights or {})
    stage(2)
    null = null_summaries(jax.random.fold_in(key_fantasy, 1), N_NULL, len(index),
                          summaries.shape[2])
    fantasies = Fantasies(summaries, null, values, report.h_star_values[index])
    regret_thinned = now_regret(fantasies)
    empty = start_projection(fantasies, 1)
    first = tuple(np.asarray(regrets_with_each(empty, jnp.asarray(x), jnp.asarray(values),
                                               jnp.asarray(fantasies.optimum)))
                  for x in (summaries, null))
    per_draw = regret_thinned - first[0]
    chance = float(np.mean(regret_thinned - first[1]))
    gain = per_draw.mean(axis=1) - chance
    gain_se = per_draw.std(axis=1, ddof=1) / np.sqrt(per_draw.shape[1])
    stage(3)
    best = _greedy(fantasies, cost, batch, budget, False, first)
    if budget is not None:
        by_flop = _greedy(fantasies, cost, batch, budget, True, first)
        best = by_flop if by_flop.gain > best.gain else best
    threshold = settings.threshold * predicted
    stop = regret <= threshold
    if stop:
        reason = (f"the expected regret {regret:.3g} is already below the threshold "
                  f"{threshold:.3g} ({100 * settings.threshold:.3g} % of the predicted "
                  f"objective): no run is worth its cost")
        best = _Batch((), np.zeros(0), 0.0, 0.0, 0.0)
    elif not best.chosen:
        reason = "no candidate run is expected to change the decision"
    else:
        reason = (f"{len(best.chosen)} run(s) expected to remove "
                  f"{100 * best.gain / regret_thinned:.0f} % of the expected regret "
                  f"{regret_thinned:.3g} on the {len(index)} draws used "
                  f"({100 * regret_thinned / predicted:.3g} % of the predicted objective)")
    out = Suggestion(
        candidates=candidates, chosen=best.chosen, marginal_gain=best.marginal,
        gain=gain, gain_se=gain_se, batch_gain=best.gain, batch_gain_se=best.gain_se,
        batch_chance=best.chance, expected_regret=regret, predicted_objective=predicted,
        stop=stop, reason=reason, decision=report, budget=budget,
        settings=settings._replace(n_draws=len(index)),  # the draws used
        largest_training_size=float(np.max(train_n)) if train_n is not None else 0.0,
        regret_thinned=regret_thinned, fantasies=fantasies)
    return out
