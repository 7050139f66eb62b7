"""Compare fitted laws: PSIS-LOO on the training runs, and scores on held-out runs.

Two questions, kept apart because they answer different things:

* **Which law do the training runs prefer?** Pareto-smoothed importance-sampling
  leave-one-out (ArviZ's ``loo``) per fit, and per target a ranking of the laws with the
  difference in expected log predictive density (elpd), its standard error and Bayesian
  stacking weights. LOO leaves out one row, and rows are often checkpoints of one
  training run: it measures interpolation between runs, not extrapolation.
* **How good are the intervals where they are used?** On held-out runs (a larger model,
  new mixtures): the relative error of the posterior median, its sign, the observed
  coverage of central predictive intervals at several nominal levels, the median relative
  width of the 90 % interval, and the continuous ranked probability score (CRPS) of the
  log loss, a proper score that rewards sharp intervals only when they hold; beside
  each pooled score, the range it would take by chance alone were the predictive right
  (:mod:`bayesmix.scoring`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.fit import Fit
from bayesmix.model import TargetPosterior
from bayesmix.runs import RunTable
from bayesmix.scoring import (
    LEVELS,
    ChanceBand,
    HeldoutScore,
    chance_bands,
    chance_lines,
    pooled_per_label,
    score_heldout,
)

__all__ = [
    "Comparison",
    "LooScore",
    "RankEntry",
    "compare",
    "loo_scores",
    "rank_laws",
    "stacking_weights",
]

BAD_K = 0.7
"""Pareto k above which a row's PSIS-LOO estimate is unreliable (Vehtari et al. 2017)."""


class LooScore(NamedTuple):
    """PSIS-LOO of one fit (law × target) on its training rows."""

    label: str
    law: str
    target: str
    rows: int
    elpd: float
    se: float
    p_loo: float
    bad_k: int
    """Rows with Pareto k > :data:`BAD_K`."""
    max_k: float


class RankEntry(NamedTuple):
    """One law's place in the ranking of the laws fitted to one target (or to all)."""

    target: str
    label: str
    rank: int
    elpd: float
    elpd_diff: float
    """Below the best (0 for the best)."""
    dse: float
    """Standard error of ``elpd_diff`` from the pointwise differences."""
    weight: float
    """Bayesian stacking weight (nan for the pooled ranking over targets)."""


def _quiet_loo(idata: Any) -> Any:
    """ArviZ's PSIS-LOO with its Pareto-k warning turned into the score's ``bad_k``."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*", category=UserWarning)
        return az.loo(idata, pointwise=True)


def loo_scores(fits: Mapping[str, Fit]) -> tuple[list[LooScore], dict[tuple[str, str], Any]]:
    """PSIS-LOO of every target of every fit.

    Returns
    -------
    scores : list of LooScore
    pointwise : dict of (label, target) -> ndarray
        Each row's leave-one-out log predictive density (for the rankings).
    """
    scores, pointwise = [], {}
    for label, fit in fits.items():
        for target, tf in fit.targets.items():
            loo = _quiet_loo(tf.idata)
            k = np.asarray(loo.pareto_k)
            scores.append(LooScore(
                label=label, law=fit.law.name, target=target, rows=len(tf.rows),
                elpd=float(loo.elpd_loo), se=float(loo.se), p_loo=float(loo.p_loo),
                bad_k=int(np.sum(k > BAD_K)), max_k=float(np.max(k)),
            ))
            pointwise[label, target] = np.asarray(loo.loo_i)
    return scores, pointwise


def _comparable(fits: Mapping[str, Fit], labels: list[str], target: str) -> bool:
    first = fits[labels[0]].targets[target]
    return all(
        np.array_equal(fits[lb].targets[target].rows, first.rows)
        and fits[lb].targets[target].likelihood == first.likelihood
        and fits[lb].source == fits[labels[0]].source
        for lb in labels
    )


def _ranked(target: str, elpd: dict[str, np.ndarray],
            weights: dict[str, float]) -> list[RankEntry]:
    totals = {label: float(v.sum()) for label, v in elpd.items()}
    order = sorted(totals, key=totals.get, reverse=True)
    best = elpd[order[0]]
    out = []
    for rank, label in enumerate(order):
        diff = best - elpd[label]
        out.append(RankEntry(
            target=target, label=label, rank=rank, elpd=totals[label],
            elpd_diff=float(diff.sum()), dse=float(np.sqrt(diff.size * np.var(diff))),
            weight=weights.get(label, float("nan")),
        ))
    return out


def stacking_weights(pointwise: np.ndarray) -> np.ndarray:
    """Bayesian stacking weights of K models from their pointwise LOO densities.

    The weights maximise ``sum_i log sum_k w_k exp(lpd_ik)`` over the simplex (Yao et
    al. 2018), a concave problem solved by mirror descent (:mod:`bayesmix.simplex`).

    Parameters
    ----------
    pointwise : ndarray, shape ``(n, K)``
        Each row's leave-one-out log predictive density under each model.

    Returns
    -------
    ndarray, shape ``(K,)``
    """
    import jax.numpy as jnp

    from bayesmix.simplex import minimize_on_simplex

    lpd = jnp.asarray(pointwise, float)
    lpd = lpd - lpd.max(axis=1, keepdims=True)  # the maximiser is the same

    def objective(w: jax.Array) -> jax.Array:
        return -jnp.mean(jnp.log(jnp.exp(lpd) @ w))

    k = lpd.shape[1]
    result = jax.jit(lambda h0: minimize_on_simplex(objective, h0, tol=1e-10))(
        jnp.full(k, 1.0 / k))
    return np.asarray(result.h)


def rank_laws(fits: Mapping[str, Fit],
              pointwise: Mapping[tuple[str, str], np.ndarray]) -> list[RankEntry]:
    """Rank the fits of each target that two or more fits share, on the same rows.

    Per target: elpd differences with standard errors from the pointwise differences,
    and Bayesian stacking weights (:func:`stacking_weights`). Then ``target="all"``:
    the same over every target that all fits share (rows of different targets added as
    independent; no stacking weight). Fits of one target made on other rows, another
    likelihood scale or another run table are not comparable and are not ranked.
    """
    labels = list(fits)
    if len(labels) < 2:
        return []
    shared = [t for t in fits[labels[0]].targets
              if all(t in fits[lb].targets for lb in labels) and _comparable(fits, labels, t)]
    out = []
    for target in shared:
        elpd = {lb: pointwise[lb, target] for lb in labels}
        weights = stacking_weights(np.column_stack([elpd[lb] for lb in labels]))
        out += _ranked(target, elpd, dict(zip(labels, weights.tolist(), strict=True)))
    if len(shared) > 1:
        out += _ranked("all", {lb: np.concatenate([pointwise[lb, t] for t in shared])
                               for lb in labels}, {})
    return out


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` found.

    Attributes
    ----------
    loo : tuple of LooScore
    ranking : tuple of RankEntry
        Per target shared by two or more comparable fits, then ``"all"``.
    heldout : tuple of HeldoutScore
        Empty without held-out runs.
    heldout_source : str or None
    cv : tuple of HeldoutScore
        Cross-validation scores per fit and target, pooled over folds
        (:func:`bayesmix.crossval.with_cross_validation`); empty when not run.
    cv_kind : {"scale", "mixture"} or None
    chance : tuple of ChanceBand
        How far each fit's held-out scores would move by chance alone were its
        predictive right, per target and pooled (:mod:`bayesmix.scoring`).
    """

    loo: tuple[LooScore, ...]
    ranking: tuple[RankEntry, ...]
    heldout: tuple[HeldoutScore, ...] = ()
    heldout_source: str | None = None
    cv: tuple[HeldoutScore, ...] = ()
    cv_kind: str | None = None
    chance: tuple[ChanceBand, ...] = ()

    def preferred(self, target: str = "all") -> str | None:
        """The label the training runs prefer for ``target`` (None if not ranked)."""
        top = [r.label for r in self.ranking if r.target == target and r.rank == 0]
        return top[0] if top else None

    def pooled(self) -> list[HeldoutScore]:
        """Held-out scores pooled over each fit's targets (:func:`bayesmix.scoring.pool_scores`)."""
        return pooled_per_label(self.heldout)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and floats for JSON."""
        def rows(items: Any) -> list[dict[str, Any]]:
            return [dict(item._asdict()) for item in items]

        def scored(items: Any) -> list[dict[str, Any]]:
            out = rows(items)
            for row in out:
                row["coverage"] = dict(zip([str(v) for v in LEVELS], row["coverage"],
                                           strict=True))
            return out

        return {"loo": rows(self.loo), "ranking": rows(self.ranking),
                "heldout": scored([*self.heldout, *self.pooled()]),
                "heldout_source": self.heldout_source,
                "cv": scored([*self.cv, *self.cv_pooled()]), "cv_kind": self.cv_kind,
                "chance": rows(self.chance), "levels": list(LEVELS)}

    def cv_pooled(self) -> list[HeldoutScore]:
        """Cross-validation scores pooled over each fit's targets."""
        return pooled_per_label(self.cv)

    def table(self) -> str:
        """The comparison for a person: LOO and ranking per target, held-out scores."""
        lines = [f"{'target':<14} {'fit':<18} {'elpd_loo':>10} {'se':>7} {'d_elpd':>8} "
                 f"{'dse':>7} {'weight':>6} {'p_loo':>6} {'k>0.7':>5}"]
        ranks = {(r.target, r.label): r for r in self.ranking}
        for s in self.loo:
            r = ranks.get((s.target, s.label))
            rank = (f"{r.elpd_diff:8.1f} {r.dse:7.1f} {r.weight:6.2f}" if r
                    else f"{'-':>8} {'-':>7} {'-':>6}")
            lines.append(f"{s.target:<14} {s.label:<18} {s.elpd:10.1f} {s.se:7.1f} {rank} "
                         f"{s.p_loo:6.1f} {s.bad_k:5d}")
        ranked = list(dict.fromkeys(r.target for r in self.ranking))
        for target in ["all"] if "all" in ranked else ranked:
            first, second = [r for r in self.ranking if r.target == target][:2]
            where = "over all shared targets" if target == "all" else f"on {target}"
            lines.append(f"the training runs prefer {first.label} {where} (elpd "
                         f"{second.elpd_diff:.1f} ± {second.dse:.1f} above {second.label})")
        several = [t for t in dict.fromkeys(s.target for s in self.loo)
                   if sum(s.target == t for s in self.loo) > 1 and t not in ranked]
        if several:
            lines.append(f"not ranked: {', '.join(several)} (its fits were made on other "
                         f"rows, likelihood scales or run tables, so their elpd differ in "
                         f"what they score)")
        if self.heldout:
            lines += ["", f"held out: {self.heldout_source}",
                      *_score_lines([*self.heldout, *self.pooled()], self.chance),
                      *chance_lines(self.chance)]
        if self.cv:
            lines += ["", f"cross-validation ({self.cv_kind}): refits without each fold, "
                          "scored on it", *_score_lines([*self.cv, *self.cv_pooled()])]
        return "\n".join(lines)

    __str__ = table


def _score_lines(scores: Sequence[HeldoutScore],
                 bands: Sequence[ChanceBand] = ()) -> list[str]:
    """The scores' table; with ``bands``, a column ``p90``: the chance band's ``p`` of
    each 90 % coverage (near 0, fewer rows inside than a right predictive leaves)."""
    p90 = {(b.label, b.target): b.coverage_p[LEVELS.index(0.9)] for b in bands}
    lines = [f"{'target':<14} {'fit':<18} {'rows':>5} {'MRE %':>6} {'signed %':>8} "
             f"{'cov50':>6} {'cov90':>6} {'width90 %':>9} {'CRPS':>8}"
             + (f" {'p90':>5}" if bands else "")]
    for s in scores:
        p = p90.get((s.label, s.target))
        lines.append(f"{s.target:<14} {s.label:<18} {s.rows:5d} {100 * s.mre:6.2f} "
                     f"{100 * s.signed:+8.2f} {100 * s.cover50:5.0f}% "
                     f"{100 * s.cover90:5.0f}% {100 * s.width90:9.2f} {s.crps:8.5f}"
                     + ((f" {p:5.2f}" if p is not None else f" {'-':>5}") if bands else ""))
    return lines


def compare(key: jax.Array, fits: Mapping[str, Fit], heldout: RunTable | None = None,
            point_fits: Mapping[str, Mapping[str, TargetPosterior]] | None = None
            ) -> Comparison:
    """Compare fits by PSIS-LOO and, given held-out runs, by their predictions there.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the posterior predictive noise at the held-out runs.
    fits : mapping of label -> Fit
        Bayesian fits (labels are how the tables name them).
    heldout : RunTable, optional
        Runs none of the fits saw.
    point_fits : mapping of label -> (mapping of target -> TargetPosterior), optional
        Point estimates (Huber baselines) scored on the held-out runs beside the fits;
        they have no LOO.

    Returns
    -------
    Comparison

    Raises
    ------
    BayesmixError
        No fit; point fits without held-out runs; see :func:`bayesmix.scoring.heldout_scores`.
    """
    if not fits and not point_fits:
        raise BayesmixError("compare needs at least one fit")
    if point_fits and heldout is None:
        raise BayesmixError("point fits (baselines) have no LOO: give held-out runs to "
                            "score them")
    scores, pointwise = loo_scores(fits)
    ranking = rank_laws(fits, pointwise)
    held: list[HeldoutScore] = []
    bands: list[ChanceBand] = []
    if heldout is not None:
        everything = {label: f.posteriors for label, f in fits.items()}
        everything.update(point_fits or {})
        result = score_heldout(key, everything, heldout)
        held, bands = result.scores, chance_bands(result)
    return Comparison(loo=tuple(scores), ranking=tuple(ranking), heldout=tuple(held),
                      heldout_source=None if heldout is None else heldout.source,
                      chance=tuple(bands))
