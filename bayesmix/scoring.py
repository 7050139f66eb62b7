"""Scores of a fit's predictions at held-out runs, and how far they move by chance.

A predictive distribution is scored where it is used, at runs none of the fits saw: the
relative error of its median, its sign, the observed coverage of central intervals at
several nominal levels, the median relative width of the 90 % interval and the CRPS of
the log loss (a proper score).

Held-out runs are rarely independent errors. Rows of one model size share the law's
draw and the discrepancy's (:mod:`bayesmix.discrepancy`), and the targets of one fit
share the discrepancy's bias and growth, so a pooled coverage over 8 targets and 320
rows can rest on a handful of independent errors. :class:`ChanceBand` says how far
each score would move by chance alone if the predictive were exactly right: each of
:data:`CHANCE_TRUTHS` joint draws of the predictive (draw ``s`` of every target, as the
targets' draws are paired) is taken for the truth and scored like the observed losses.
An observed score inside that band is no evidence against the predictive; one at its
edge (``p`` near 0 or 1) is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.model import TargetPosterior
from bayesmix.predict import check_domains, predict_draws, predictive_draws, with_discrepancy
from bayesmix.runs import RunTable

__all__ = ["CHANCE_MIN_DRAWS", "CHANCE_RANGE", "CHANCE_TRUTHS", "ChanceBand",
           "HeldoutResult", "HeldoutScore", "LEVELS", "chance_bands", "chance_lines",
           "chance_range", "crps_from_draws", "heldout_scores", "pool_scores",
           "pooled_per_label", "score_heldout"]

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
"""Nominal levels of the central predictive intervals whose coverage is measured."""
CHANCE_TRUTHS = 1000
"""Joint predictive draws taken for the truth by :class:`ChanceBand` (at most the
draws there are)."""
CHANCE_RANGE = (0.05, 0.95)
"""The band's quantiles: where 90 % of the pseudo-truths' scores fall."""
CHANCE_MIN_DRAWS = 100
"""A fit with fewer predictive draws (a point fit) gets no band."""


class HeldoutScore(NamedTuple):
    """Scores of one fit's predictions at held-out runs."""

    label: str
    law: str
    target: str
    rows: int
    mre: float
    """Mean |median - observed| / observed (the paper's MRE), discrepancy included."""
    signed: float
    """Mean (median - observed) / observed: > 0 means the law over-predicts."""
    coverage: tuple[float, ...]
    """Observed coverage of the central predictive interval at each of :data:`LEVELS`."""
    width90: float
    """Median (q95 - q05) / median of the posterior predictive."""
    crps: float
    """Mean CRPS of log loss (about a relative error; lower is better)."""

    @property
    def cover50(self) -> float:
        return self.coverage[LEVELS.index(0.5)]

    @property
    def cover90(self) -> float:
        return self.coverage[LEVELS.index(0.9)]


class ChanceBand(NamedTuple):
    """How one fit's held-out scores would vary by chance alone if its predictive were
    right (for one target, or ``"all"`` pooled as :func:`pool_scores` pools).

    Each score (the coverage at each level, the MRE) has its :data:`CHANCE_RANGE`
    band over the pseudo-truths and its ``p`` (:func:`chance_range`): near 0.5 the
    observation is typical of the predictive, near 0 or 1 it is not.
    """

    label: str
    target: str
    truths: int
    """Pseudo-truths the band is taken from."""
    coverage: tuple[tuple[float, float], ...]
    """The band of the coverage at each of :data:`LEVELS`."""
    coverage_p: tuple[float, ...]
    """``p`` of the observed coverage at each of :data:`LEVELS`."""
    mre: tuple[float, float]
    """The band of the MRE of the predictive median."""
    mre_p: float
    """``p`` of the observed MRE."""

    @property
    def cover90(self) -> tuple[float, float]:
        """The band of the 90 % interval's coverage."""
        return self.coverage[LEVELS.index(0.9)]

    @property
    def cover50(self) -> tuple[float, float]:
        """The band of the 50 % interval's coverage."""
        return self.coverage[LEVELS.index(0.5)]


class _Predictive(NamedTuple):
    """One target's predictive at the held-out rows, summarised once for every truth it
    is scored against: the median of the law's mean times the discrepancy's factor,
    the log draws (raw, and clipped so that quantiles between two infinite draws, nu
    near zero or a raw draw <= 0, do not interpolate to NaN), the intervals' log bounds
    ``(L, 2, n)`` and the median relative 90 % width."""

    label: str
    posterior: TargetPosterior
    median: np.ndarray
    log_pp: np.ndarray
    bounded: np.ndarray
    bounds: np.ndarray
    width90: float


# --------------------------------------------------------------------------- scores


def crps_from_draws(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """CRPS of each column's sample against its observation.

    ``E|X - y| - E|X - X'| / 2`` with the second term from the sorted sample in
    O(S log S): ``E|X - X'| = 2 / S^2 * sum_i (2 i - S - 1) x_(i)``.

    Parameters
    ----------
    draws : ndarray, shape ``(S, n)``
    observed : ndarray, shape ``(n,)``

    Returns
    -------
    ndarray, shape ``(n,)``
        ``inf`` for a column with a draw that is not finite (a predictive with an
        infinite draw has no finite score).
    """
    draws = np.sort(np.asarray(draws, float), axis=0)
    finite = np.all(np.isfinite(draws), axis=0)
    draws = np.where(finite, draws, 0.0)
    s = draws.shape[0]
    spread = 2.0 / s**2 * np.tensordot(2.0 * np.arange(1, s + 1) - s - 1, draws, axes=1)
    score = np.mean(np.abs(draws - observed), axis=0) - 0.5 * spread
    return np.where(finite, score, np.inf)


def _quantiles(log_pp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The central intervals' log bounds at each of :data:`LEVELS`, ``(L, 2, n)``, and
    the log median ``(n,)``, from one pass over the draws."""
    size = len(LEVELS)
    q = np.quantile(log_pp, [*((1 - v) / 2 for v in LEVELS), 0.5,
                             *((1 + v) / 2 for v in LEVELS)], axis=0)
    return np.stack([q[:size], q[size + 1:]], axis=1), q[size]


def _hits(bounds: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    """Rows of ``log_y`` inside each interval, shape ``(L,)``."""
    return np.sum((bounds[:, 0] <= log_y) & (log_y <= bounds[:, 1]), axis=-1)


def _predictions(key: jax.Array, posteriors: Mapping[str, Mapping[str, TargetPosterior]],
                 table: RunTable) -> Iterator[tuple[_Predictive, np.ndarray]]:
    """Per fit and target, its summarised predictive and the observed losses."""
    for label, fits in posteriors.items():
        present = [t for t in fits if t in table.targets]
        if not present and not any(t in table.unmeasured for t in fits):  # wrong table
            raise BayesmixError(f"{table.source} has no loss column for any target of fit "
                                f"{label} ({', '.join(fits)})")
        for target in present:
            posterior = fits[target]
            check_domains(posterior, table)
            data = table.target_data(target)
            if not data.loss.size:  # measured elsewhere, not in these rows
                continue
            weights = table.frame.loc[data.rows, [f"h_{d}" for d in posterior.domains]]
            key, sub = jax.random.split(key)
            mean = predict_draws(posterior, data.n_params, data.n_tokens,
                                 weights.to_numpy(float))
            log_mean, log_pp = with_discrepancy(  # one draw of delta for both
                jax.random.fold_in(sub, 1), posterior, data.n_params, data.n_tokens,
                np.log(mean), predictive_draws(sub, posterior, mean, log=True), log=True)
            bounded = np.clip(log_pp, -1e300, 1e300)
            bounds, log_median = _quantiles(bounded)
            with np.errstate(over="ignore"):  # exp is monotone: intervals from log draws
                q05, q95 = np.exp(bounds[LEVELS.index(0.9)])
                q50 = np.exp(log_median)
            yield (_Predictive(label, posterior, np.median(np.exp(log_mean), axis=0), log_pp,
                               bounded, bounds, float(np.median((q95 - q05) / q50))),
                   np.asarray(data.loss, float))


def _score(pred: _Predictive, log_y: np.ndarray, observed: np.ndarray | None = None
           ) -> HeldoutScore:
    """``pred`` scored against the log losses ``log_y``: the ``observed`` ones, or a
    pseudo-truth's (one of ``pred``'s clipped draws; its CRPS, which costs a pass over
    every draw, is not computed: NaN)."""
    if observed is not None:
        relative = (pred.median - observed) / observed
        crps = float(np.mean(crps_from_draws(pred.log_pp, log_y)))
    else:  # a draw at a clipped bound is an error of -1 or +inf, never NaN
        with np.errstate(over="ignore"):
            relative = np.expm1(np.log(pred.median) - log_y)
        crps = float("nan")
    return HeldoutScore(
        label=pred.label, law=pred.posterior.law.name, target=pred.posterior.target,
        rows=len(log_y), mre=float(np.mean(np.abs(relative))),
        signed=float(np.mean(relative)),
        coverage=tuple(float(h) for h in _hits(pred.bounds, log_y) / len(log_y)),
        width90=pred.width90, crps=crps,
    )


def _n_draws(posterior: TargetPosterior) -> int:
    """Draws of the predictive: of the law's parameters, or of the noise if more."""
    noise = posterior.noise["nu"].size if posterior.noise is not None else 1
    return max(posterior.n_draws, int(noise))


class HeldoutResult(NamedTuple):
    """:func:`score_heldout`'s scores of the observed losses and of the pseudo-truths."""

    scores: list[HeldoutScore]
    pseudo: dict[str, list[list[HeldoutScore]]]
    """Per fit label, per pseudo-truth, the scores of its targets (in ``scores``'
    order; CRPS not computed: NaN); a fit with fewer than :data:`CHANCE_MIN_DRAWS`
    predictive draws (a point fit) has none."""


def _picks(posteriors: Mapping[str, Mapping[str, TargetPosterior]],
           truths: int) -> dict[str, np.ndarray]:
    """Per fit, the draws taken for the truth: ``floor(r S / R)``, ``r < R = min(truths,
    S)``, ``S`` the fewest predictive draws of its targets (none below
    :data:`CHANCE_MIN_DRAWS`)."""
    out = {}
    for label, fits in posteriors.items():
        n_draws = min(_n_draws(p) for p in fits.values())
        count = min(truths, n_draws)
        if count and n_draws >= CHANCE_MIN_DRAWS:
            out[label] = np.floor(np.arange(count) * n_draws / count).astype(int)
    return out


def score_heldout(key: jax.Array, posteriors: Mapping[str, Mapping[str, TargetPosterior]],
                  table: RunTable, *, truths: int = CHANCE_TRUTHS) -> HeldoutResult:
    """:func:`heldout_scores`, and the same scores with the predictive's own draws taken
    for the truth (what the scores would be by chance alone were it right).

    The pseudo-truths are evenly spaced draws ``s`` (:func:`_picks`), the same ``s``
    for every target of a fit, so that the targets' shared discrepancy draws stay
    paired, and no key (they are a function of the predictive draws). A pseudo-truth
    is one of the draws its intervals are taken from, which narrows nothing
    measurable at thousands of draws.

    Parameters
    ----------
    key, posteriors, table
        As :func:`heldout_scores`.
    truths : int
        Pseudo-truths per fit (0: none).

    Returns
    -------
    HeldoutResult
        :func:`chance_bands` summarises it.

    Raises
    ------
    BayesmixError
        ``truths`` is negative; see :func:`heldout_scores`.
    """
    if truths < 0:
        raise BayesmixError(f"truths must be at least 0, not {truths}")
    picks = _picks(posteriors, truths)
    scores: list[HeldoutScore] = []
    pseudo: dict[str, list[list[HeldoutScore]]] = {
        label: [[] for _ in range(pick.size)] for label, pick in picks.items()}
    for pred, observed in _predictions(key, posteriors, table):
        scores.append(_score(pred, np.log(observed), observed))
        for r, draw in enumerate(picks.get(pred.label, ())):
            pseudo[pred.label][r].append(_score(pred, pred.bounded[draw]))
    return HeldoutResult(scores, pseudo)


def chance_range(values: Any, observed: float) -> tuple[float, float, float]:
    """``(lo, hi, p)``: the :data:`CHANCE_RANGE` quantiles of a score over the
    pseudo-truths, and the mid-p of the observed score, the share of pseudo-truths
    below it plus half the share equal to it (a coverage is discrete: a plain "at or
    below" would put every observed 100 % at the edge).

    Quantiles are sample values (no interpolation, so an infinite score, the error of
    a draw at a clipped bound, is no NaN).
    """
    values = np.asarray(values, float)
    lo, hi = np.quantile(values, CHANCE_RANGE, method="inverted_cdf")
    p = np.mean(values < observed) + 0.5 * np.mean(values == observed)
    return float(lo), float(hi), float(p)


def chance_bands(result: HeldoutResult) -> list[ChanceBand]:
    """Each fit's :class:`ChanceBand`, per target, then pooled over its targets
    (``"all"``) as :func:`pool_scores` pools the observed scores.

    Parameters
    ----------
    result : HeldoutResult
        :func:`score_heldout`'s.

    Returns
    -------
    list of ChanceBand
        Fits without pseudo-truths (point fits) have none.
    """
    bands = []
    for label, truths in result.pseudo.items():
        observed = [s for s in result.scores if s.label == label]
        targets = [s.target for s in observed]
        columns = {t: [truth[i] for truth in truths] for i, t in enumerate(targets)}
        observed.append(pool_scores(observed, label, "all"))
        columns["all"] = [pool_scores(truth, label, "all") for truth in truths]
        for score in observed:
            bands.append(_band(score, columns[score.target]))
    return bands


def _band(observed: HeldoutScore, truths: Sequence[HeldoutScore]) -> ChanceBand:
    coverage = np.array([t.coverage for t in truths])
    levels = [chance_range(coverage[:, i], c) for i, c in enumerate(observed.coverage)]
    mre = chance_range([t.mre for t in truths], observed.mre)
    return ChanceBand(
        label=observed.label, target=observed.target, truths=len(truths),
        coverage=tuple((lo, hi) for lo, hi, _ in levels),
        coverage_p=tuple(p for _, _, p in levels), mre=mre[:2], mre_p=mre[2])


def chance_lines(bands: Sequence[ChanceBand]) -> list[str]:
    """Each fit's pooled band, for a person.

    Parameters
    ----------
    bands : sequence of ChanceBand
        :func:`chance_bands`'.

    Returns
    -------
    list of str
        A header, then a line per fit; empty without bands.
    """
    pooled = [b for b in bands if b.target == "all"]
    if not pooled:
        return []
    lines = ["by chance alone, were the predictive right (its own joint draws taken for "
             "the truth; p: share below the observed, ties half):"]
    for b in pooled:
        (c50, c90), mre = (b.cover50, b.cover90), b.mre
        p50, p90 = (b.coverage_p[LEVELS.index(v)] for v in (0.5, 0.9))
        lines.append(f"  {b.label} ({b.target}, {b.truths} draws): cov50 "
                     f"{100 * c50[0]:.0f}-{100 * c50[1]:.0f}% (p {p50:.2f}), cov90 "
                     f"{100 * c90[0]:.0f}-{100 * c90[1]:.0f}% (p {p90:.2f}), MRE "
                     f"{100 * mre[0]:.2f}-{100 * mre[1]:.2f} % (p {b.mre_p:.2f})")
    return lines


def heldout_scores(key: jax.Array, posteriors: Mapping[str, Mapping[str, TargetPosterior]],
                   table: RunTable) -> list[HeldoutScore]:
    """Score every fit's targets at the runs of ``table``.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the posterior predictive noise (split per fit and target).
    posteriors : mapping of label -> (mapping of target -> TargetPosterior)
        One entry per fit; point fits (one draw, no noise) score too, with intervals of
        width 0. The intervals and CRPS are of the posterior predictive with the
        posterior's discrepancy term when it has one; the error (MRE, signed) is of the
        median over draws of the law's mean times the discrepancy's factor (its learnt
        bias moves the median).
    table : RunTable
        Held-out runs; their loss columns name the targets scored.

    Returns
    -------
    list of HeldoutScore
        In the order of ``posteriors``, then of each fit's targets; targets without a
        loss value in ``table`` are left out.

    Raises
    ------
    BayesmixError
        ``table``'s domains are not a fit's, or it holds no target of a fit.
    """
    return score_heldout(key, posteriors, table, truths=0).scores


def pool_scores(scores: Sequence[HeldoutScore], label: str, target: str) -> HeldoutScore:
    """One score for several (targets, or folds): means weighted by rows, exact for the
    error, coverage and CRPS; the width is the median of the scores' medians.

    Parameters
    ----------
    scores : sequence of HeldoutScore
    label, target : str
        What the pooled score is called (``target="all"`` for a fit's targets).

    Returns
    -------
    HeldoutScore

    Raises
    ------
    BayesmixError
        No score to pool.
    """
    if not scores:
        raise BayesmixError(f"no held-out score to pool for {label} ({target})")
    w = np.array([s.rows for s in scores], float)

    def avg(values: Any) -> Any:
        return np.average(np.asarray(values, float), axis=0, weights=w)

    return HeldoutScore(
        label=label, law=scores[0].law, target=target, rows=int(w.sum()),
        mre=float(avg([s.mre for s in scores])), signed=float(avg([s.signed for s in scores])),
        coverage=tuple(float(c) for c in avg([s.coverage for s in scores])),
        width90=float(np.median([s.width90 for s in scores])),
        crps=float(avg([s.crps for s in scores])),
    )


def pooled_per_label(scores: Sequence[HeldoutScore]) -> list[HeldoutScore]:
    """One pooled score (``target="all"``) per label, in order of first appearance."""
    return [pool_scores([s for s in scores if s.label == label], label, "all")
            for label in dict.fromkeys(s.label for s in scores)]
