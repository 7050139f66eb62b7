"""Model discrepancy beyond the training range: what a law gets wrong where no run was.

A posterior fitted to small runs is sure of a law that may be wrong at a larger size.
The predictive distribution bayesmix uses by default adds, on the log-loss of each
target, a term that is zero inside the training range and grows with the distance
beyond it::

    log L(N, D, h) = log mu_theta(N, D, h) + delta(N, D) + noise
    delta(N, D)    = d_N^p (b_N + tau_N z_N) + d_D^p (b_D + tau_D z_D),
                     z ~ Normal(0, I_2)
    d_N = max(0, log N - log N_max),  d_D = max(0, log D - log D_max(N))

``N_max`` is the largest training model size of the target's fit, and ``D_max(N)``
the most tokens any training run of size ``N`` or larger saw (of the largest size,
beyond it): a run is inside the training range only where a training run at least
as large in both ``N`` and ``D`` exists (:func:`reach_distance`). When larger models
were trained on more tokens, as in most studies, ``D_max(N)`` is the largest training
``D`` everywhere; when they were not, training a small model longer than the large
ones were trained is an extrapolation in ``D``, and the term says so. The
bias ``b`` is the error's known direction (a law that over-predicts the next sizes
of its own runs over-predicts the next one too), the scale ``tau`` what is not
known of it. One ``z`` per posterior draw and target is shared by every row, so
``delta`` shifts every mixture at one ``(N, D)`` together: it moves and widens a
predicted loss but cannot reorder mixtures of one target (see
``docs/calibration.md`` for the decisions). The hyperparameters ``(b_N, b_D, tau_N,
tau_D, p)`` are learnt from the runs themselves by nested leave-one-size-out
(:mod:`bayesmix.calibrate`) and carried as draws of their posterior, so their
uncertainty widens the tails.

This module holds the learnt term and its draws only; it imports nothing of bayesmix
beyond errors and random numbers, so every stage can read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jax
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng

__all__ = ["Discrepancy", "discrepancy_draws", "draws_with", "reach_distance"]

_DRAWS = ("tau_n", "tau_d", "growth", "bias_n", "bias_d")


@dataclass(frozen=True)
class Discrepancy:
    """The learnt discrepancy of one target (see the module docstring).

    Attributes
    ----------
    log_n_max, log_d_max : float
        Natural log of the largest training parameters and tokens of the target.
    tau_n, tau_d : ndarray, shape ``(H,)``
        Draws of the scales per unit of ``d_N^p`` and ``d_D^p`` (log-loss).
    growth : ndarray, shape ``(H,)``
        Draws of the growth exponent ``p``.
    folds : tuple of str
        The folds it was learnt from (``"N<=680M -> 937M,1.235B"``).
    bias_n, bias_d : ndarray, shape ``(H,)``, optional
        Draws of the biases per unit of ``d_N^p`` and ``d_D^p`` (log-loss; negative:
        the law over-predicts beyond its runs), absolute (not in units of ``tau``).
        Zero when not given (a term learnt before bayesmix learnt the bias).
    reach_log_n, reach_log_d : ndarray, shape ``(m,)``, optional
        The training range's staircase (:func:`reach_distance`): the upper edge in log
        ``N`` of each training size's step, ascending, and the log of the most tokens
        a training run of that size or larger saw. Not given (a term written before
        2026-12-08): one step, the box ``(log_n_max, log_d_max)``.
    d_learnt : bool
        Whether a fold reached beyond its training ``D``. When none did, nothing was
        learnt of the law's error in ``D``: ``tau_d`` holds draws of its prior (the
        population of the fit's scales), ``bias_d`` zeros, and
        :meth:`unlearnt_reach` says where that part is all there is.

    Hyper draw ``s`` of every target of one fit comes from one joint posterior draw
    (:func:`bayesmix.calibrate.discrepancies`): draw ``s`` of two targets shares its
    bias direction and growth, so pairing the targets' draws by index keeps them.
    """

    log_n_max: float
    log_d_max: float
    tau_n: np.ndarray
    tau_d: np.ndarray
    growth: np.ndarray
    folds: tuple[str, ...] = ()
    bias_n: np.ndarray | None = None
    bias_d: np.ndarray | None = None
    d_learnt: bool = True
    reach_log_n: np.ndarray | None = None
    reach_log_d: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("bias_n", "bias_d"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros_like(self.tau_n, dtype=float))
        if self.reach_log_n is None or self.reach_log_d is None:  # the box
            object.__setattr__(self, "reach_log_n", np.array([self.log_n_max]))
            object.__setattr__(self, "reach_log_d", np.array([self.log_d_max]))
        sizes = {np.shape(getattr(self, name)) for name in _DRAWS}
        if len(sizes) != 1:
            raise BayesmixError(f"discrepancy draws of unequal shapes: "
                                f"{', '.join(f'{n} {np.shape(getattr(self, n))}' for n in _DRAWS)}")

    def distances(self, n_params: Any, n_tokens: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(d_N, d_D)``: how far beyond the training range each run is, in log units."""
        log_n, log_d = np.log(np.asarray(n_params, float)), np.log(np.asarray(n_tokens, float))
        return (np.maximum(0.0, log_n - self.log_n_max),
                reach_distance(self.reach_log_n, self.reach_log_d, log_n, log_d))

    def parts(self, n_params: Any, n_tokens: Any) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray, np.ndarray]:
        """Per hyper draw and run, ``(H, n)``: the biases ``b d^p`` and scales
        ``tau d^p`` of the ``N`` and ``D`` parts."""
        d_n, d_d = self.distances(n_params, n_tokens)
        p = self.growth[:, None]
        grow_n, grow_d = np.atleast_1d(d_n)[None] ** p, np.atleast_1d(d_d)[None] ** p
        return (self.bias_n[:, None] * grow_n, self.tau_n[:, None] * grow_n,
                self.bias_d[:, None] * grow_d, self.tau_d[:, None] * grow_d)

    def mean(self, n_params: Any, n_tokens: Any) -> np.ndarray:
        """The expected ``delta`` at each run, shape ``(n,)``: the learnt bias,
        averaged over the hyper draws (zero inside the training range)."""
        bias_n, _, bias_d, _ = self.parts(n_params, n_tokens)
        return (bias_n + bias_d).mean(axis=0)

    def scale(self, n_params: Any, n_tokens: Any) -> np.ndarray:
        """Standard deviation of ``delta`` at each run over the hyper draws and ``z``."""
        bias_n, scale_n, bias_d, scale_d = self.parts(n_params, n_tokens)
        return np.sqrt((bias_n + bias_d).var(axis=0)
                       + (scale_n ** 2 + scale_d ** 2).mean(axis=0))

    def log_mean_factor(self, n_params: Any, n_tokens: Any) -> np.ndarray:
        """``log E[exp(delta)]`` at each run, shape ``(n,)``: exact in ``z``
        (``exp(b + s^2 / 2)`` per hyper draw, the two parts' normals independent), then
        averaged over the hyper draws."""
        bias_n, scale_n, bias_d, scale_d = self.parts(n_params, n_tokens)
        log_each = bias_n + bias_d + 0.5 * (scale_n ** 2 + scale_d ** 2)
        top = log_each.max(axis=0)
        return top + np.log(np.mean(np.exp(log_each - top), axis=0))

    def unlearnt_reach(self, n_params: Any, n_tokens: Any, tolerance: float = 1e-9) -> int:
        """How many of the runs at ``(n_params, n_tokens)`` lie beyond the training
        ``D`` (``d_D`` above ``tolerance``) where no fold measured the law's error in
        ``D`` (0 when one did)."""
        if self.d_learnt:
            return 0
        return int(np.sum(self.distances(n_params, n_tokens)[1] > tolerance))

    def at_draws(self, index: Any) -> Discrepancy:
        """The hyper draws that posterior draws ``index`` use (draw ``s`` uses hyper
        draw ``s mod H``), in that order: draw ``j`` of the result is the term of
        posterior draw ``index[j]``."""
        pick = np.asarray(index, int) % self.tau_n.size
        return replace(self, **{name: getattr(self, name)[pick] for name in _DRAWS})

    def summary(self) -> dict[str, float]:
        """Posterior medians of the hyperparameters (for reports)."""
        return {name: float(np.median(getattr(self, name))) for name in _DRAWS}

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and floats (the form :mod:`bayesmix.store` writes)."""
        return {"log_n_max": self.log_n_max, "log_d_max": self.log_d_max,
                **{name: getattr(self, name).tolist() for name in _DRAWS},
                "folds": list(self.folds), "d_learnt": self.d_learnt,
                "reach_log_n": self.reach_log_n.tolist(),
                "reach_log_d": self.reach_log_d.tolist()}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Discrepancy:
        """The inverse of :meth:`to_dict`.

        Raises
        ------
        BayesmixError
            A field is missing or not finite, or the draws differ in length
            (``where`` names the file).
        """
        try:
            arrays = [np.asarray(data[name], float) for name in ("tau_n", "tau_d", "growth")]
            # a record written before the bias was learnt has none: zero
            arrays += [np.asarray(data.get(name, np.zeros(arrays[0].size)), float)
                       for name in ("bias_n", "bias_d")]
            bounds = float(data["log_n_max"]), float(data["log_d_max"])
            folds = tuple(str(f) for f in data.get("folds", ()))
            d_learnt = data.get("d_learnt", True)
            # a record written before the staircase has none: the box
            reach = [np.asarray(data.get(name, [bound]), float) for name, bound in
                     (("reach_log_n", bounds[0]), ("reach_log_d", bounds[1]))]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BayesmixError(f"{where}: not a discrepancy record ({exc!r})") from None
        if (any(a.ndim != 1 or a.size == 0 for a in arrays)
                or len({a.size for a in arrays}) != 1
                or not all(np.all(np.isfinite(a)) for a in arrays)
                or not np.all(np.isfinite(bounds)) or np.any(arrays[0] < 0)
                or np.any(arrays[1] < 0) or np.any(arrays[2] <= 0)
                or not isinstance(d_learnt, bool)):
            raise BayesmixError(f"{where}: discrepancy draws are missing, of unequal length, "
                                f"negative (or a growth exponent not positive), not finite, "
                                f"or d_learnt is not true or false")
        if (any(r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)) for r in reach)
                or reach[0].size != reach[1].size or np.any(np.diff(reach[0]) <= 0)):
            raise BayesmixError(f"{where}: the discrepancy's training range (reach_log_n, "
                                f"reach_log_d) is not two finite lists of one length, "
                                f"ascending in N")
        return cls(bounds[0], bounds[1], *arrays[:3], folds=folds, bias_n=arrays[3],
                   bias_d=arrays[4], d_learnt=d_learnt, reach_log_n=reach[0],
                   reach_log_d=reach[1])


def reach_distance(edges: np.ndarray, reach: np.ndarray, log_n: Any, log_d: Any) -> np.ndarray:
    """``d_D``: how far, in log ``D``, each run ``(log_n, log_d)`` lies beyond the tokens
    that training runs at least as large saw.

    ``edges`` (ascending) are the upper edges in log ``N`` of the training range's
    steps and ``reach`` the log of the most tokens seen at each step's size or larger
    (:func:`bayesmix.calibrate.token_reach` builds both). A run below an edge is
    measured against that step's reach; one beyond the last edge (beyond the largest
    size) against the largest size's.
    """
    edges, reach = np.asarray(edges, float), np.asarray(reach, float)
    step = np.minimum(np.searchsorted(edges, log_n, side="left"), edges.size - 1)
    return np.maximum(0.0, np.asarray(log_d, float) - reach[step])


def discrepancy_draws(key: jax.Array, discrepancy: Discrepancy, n_params: Any,
                      n_tokens: Any, n_draws: int) -> np.ndarray:
    """Draws of ``delta`` (log-loss), shape ``(n_draws, n)``, one ``z`` per draw.

    Draw ``s`` uses hyper draw ``s mod H``; every run of one draw shares its ``z``
    (the term is a function of ``(N, D)``, not of the mixture).
    """
    return draws_with(numpy_rng(key), discrepancy, n_params, n_tokens, n_draws)


def draws_with(rng: np.random.Generator, discrepancy: Discrepancy, n_params: Any,
               n_tokens: Any, n_draws: int) -> np.ndarray:
    """:func:`discrepancy_draws` from a NumPy generator (advanced by ``2 n_draws``
    normals)."""
    bias_n, scale_n, bias_d, scale_d = discrepancy.parts(n_params, n_tokens)
    pick = np.arange(n_draws) % discrepancy.tau_n.size
    z = rng.standard_normal((2, n_draws, 1))
    return (bias_n[pick] + scale_n[pick] * z[0]) + (bias_d[pick] + scale_d[pick] * z[1])
