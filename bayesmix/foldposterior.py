"""The posterior of the discrepancy's hyperparameters, given the nested folds' residuals.

:mod:`bayesmix.calibrate` refits the law on the smaller sizes of the runs and scores the
larger ones (a fold); this module turns those residuals into the posterior of the
term of :class:`bayesmix.discrepancy.Discrepancy`. A fold ``f`` of a target, its
refit trained up to the size ``N_f`` (its cut), has log residuals

    r_f ~ Normal(Phi_f t (m + z_f), Sigma_f),     t = (tau_N, tau_D)
    Phi_f = (d_N^p, d_D^p),  Sigma_f = sigma^2 I + J C J',

one pair ``z_f = (z_N, z_D)`` of standard normals per (fold, target). The folds of one
target are nested (each refit holds the smaller ones' rows) and the law's error is one
function of the size, so ``z_f`` of neighbouring cuts are alike: along the cuts
``x_f = log N_f`` each component of ``z`` is a stationary Gauss-Markov (Ornstein-
Uhlenbeck) sequence, ``corr(z_f, z_g) = exp(-|x_f - x_g| / ell)``, with the length
``ell`` learnt (:data:`LENGTH_GRID`; ``ell = 0`` is independent folds), so that
nested folds count as the evidence they are, not as that many independent ones. The
fit's own extrapolation gets a fresh ``z`` (:func:`term_draws` says why).

Each target has its own ``(tau_N, tau_D)``, partially pooled: ``log tau ~ Normal(log
mu, s)``; the bias ``m`` (in units of each target's scale), the growth ``p`` and the
length ``ell`` are shared by the fit's targets. Everything is computed exactly on a
grid: a target's folds form one Gaussian with a block-tridiagonal precision in the
``z``, eliminated fold by fold (2 x 2 blocks, vectorised over the scales' grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg

__all__ = ["BIAS_GRID", "BIAS_PRIOR_SCALE", "FoldResidual", "GROWTH_GRID", "HYPER_DRAWS",
           "LENGTH_GRID", "POP_MEDIANS", "POP_SPREADS", "TAU_GRID", "TAU_PRIOR_SCALE",
           "HyperDraws", "TermDraws", "hyper_posterior", "joint_draws", "target_log_marginal",
           "term_draws"]

GROWTH_GRID = np.linspace(1.0, 2.0, 5)
"""Values of the growth exponent ``p`` (uniform prior)."""
BIAS_GRID = np.linspace(-6.0, 6.0, 49)
"""Values of the bias ``m``, in units of each target's scale: the mean of ``delta`` is
``m (tau_N d_N^p + tau_D d_D^p)``."""
BIAS_PRIOR_SCALE = 2.0
"""Normal(0, 2) prior of ``m``: a bias of a few times the scale's own spread is
allowed, and zero (the law errs either way) is where it starts."""
TAU_GRID = np.geomspace(1e-4, 1.0, 61)
"""Values of ``tau_N`` and ``tau_D`` (log-loss per unit distance^p)."""
TAU_PRIOR_SCALE = 0.05
"""Half-Cauchy scale of the population medians of ``tau_N`` and ``tau_D``: 5 % of the
loss per unit of log N is an error no one would call small, and the heavy tail lets
the runs say more."""
LENGTH_GRID = np.array([0.0, 0.15, 0.5, 1.5, 5.0])
"""Values of the folds' correlation length ``ell`` in log N (uniform prior): 0 is
independent folds; at 5 two cuts 0.3 apart (the paper's sizes) correlate at 0.94 and
two 5 apart (150x in N) at 0.37. Longer lengths were measured and left out: on
Hoffmann et al.'s 13-31 folds the posterior moved beyond 5, where the folds are nearly
one ``z``, and the intervals grew to up to 14.6x the errors (docs/calibration.md,
"Nested folds counted as the evidence they are"). A likely cause, not measured: the folds share
held-out rows, whose noise the likelihood takes as independent from fold to fold and
which would look like such a common ``z``."""
POP_MEDIANS = np.geomspace(1e-3, 0.3, 25)
"""Grid of the population medians ``mu_N``, ``mu_D`` of the targets' scales."""
POP_SPREADS = np.array([0.25, 0.5, 1.0, 2.0])
"""Grid of the population spread ``s`` of ``log tau`` (uniform prior)."""
HYPER_DRAWS = 2000
_KEPT_TARGETS = 3
"""Targets whose grid likelihood (36 MB each) is kept between the population and the
draws instead of computed again."""
_MAX_LINK = 0.999
"""Largest correlation of two neighbouring folds (cuts 1 % apart at ``ell`` 5 would be
0.998)."""


class FoldResidual(NamedTuple):
    """One (fold, target): log residuals, their covariance, the distances and the cut.

    The covariance is ``noise I + factor factor'``, kept as its two pieces: ``factor``
    has one column per parameter of the refit, so a fold of many held-out rows costs
    ``O(rows x parameters^2)``, never a dense ``rows x rows`` matrix. ``log_n_cut`` is
    the log of the fold's largest training size (where its ``d_N`` starts).
    """

    fold: str
    target: str
    residual: np.ndarray
    noise: float
    factor: np.ndarray
    d_n: np.ndarray
    d_d: np.ndarray
    log_n_cut: float

    @property
    def covariance(self) -> np.ndarray:
        """The dense covariance (for inspection; the likelihood never forms it)."""
        return self.noise * np.eye(self.residual.size) + self.factor @ self.factor.T

    def _capacitance(self) -> tuple[np.ndarray, np.ndarray]:
        """``u = factor / sqrt(noise)`` and the Cholesky factor of ``K = I + u'u``."""
        u = self.factor / np.sqrt(self.noise)
        return u, np.linalg.cholesky(np.eye(u.shape[1]) + u.T @ u)

    def precision_gram(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``x' Sigma^-1 y`` for columns ``x`` ``(rows, a)``, ``y`` ``(rows, b)``.

        By Woodbury: ``Sigma^-1 = (I - u K^-1 u') / noise`` (:meth:`_capacitance`).
        """
        u, chol = self._capacitance()
        ux, uy = (scipy.linalg.solve_triangular(chol, u.T @ v, lower=True) for v in (x, y))
        return (x.T @ y - ux.T @ uy) / self.noise

    def log_det(self) -> float:
        """``log det Sigma`` by the matrix determinant lemma."""
        _, chol = self._capacitance()
        return float(self.residual.size * np.log(self.noise)
                     + 2.0 * np.sum(np.log(np.diag(chol))))


class _FoldStats(NamedTuple):
    """A fold's sufficient statistics per growth value ``p`` (leading axis):
    ``a = Phi' Sigma^-1 Phi`` as ``(a11, a12, a22)``, ``c = Phi' Sigma^-1 r``, and the
    scalars ``r' Sigma^-1 r`` and ``log det Sigma``."""

    a11: np.ndarray
    a12: np.ndarray
    a22: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    rr: float
    log_det: float
    cut: float


def _stats(residual: FoldResidual) -> _FoldStats:
    r = residual.residual[:, None]
    a, c = [], []
    for p in GROWTH_GRID:
        phi = np.stack([residual.d_n ** p, residual.d_d ** p], axis=1)
        a.append(residual.precision_gram(phi, phi))
        c.append(residual.precision_gram(phi, r)[:, 0])
    a, c = np.array(a), np.array(c)
    return _FoldStats(a[:, 0, 0], a[:, 0, 1], a[:, 1, 1], c[:, 0], c[:, 1],
                      float(residual.precision_gram(r, r)[0, 0]), residual.log_det(),
                      float(residual.log_n_cut))


def _links(cuts: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Correlations of neighbouring folds, ``(F - 1, *length.shape)``."""
    gaps = np.abs(np.diff(cuts)).reshape(-1, *([1] * np.ndim(length)))
    links = np.where(length > 0, np.exp(-gaps / np.where(length > 0, length, 1.0)), 0.0)
    return np.minimum(links, _MAX_LINK)


class _Chain(NamedTuple):
    """One target's folds eliminated in order of their cuts, at given values of the
    scales (any broadcast shape): the pieces of its log density (quadratic in ``m``)."""

    log_det: np.ndarray  # log det Sigma's + log det (I + G A): everything but quadratics
    uu: np.ndarray  # u' P^-1 u, u = T^1/2 c
    uy: np.ndarray  # u' P^-1 y, y = T^1/2 A t
    yy: np.ndarray
    tc: np.ndarray  # t' c
    tat: np.ndarray  # t' A t
    rr: float


def _chain(stats: Sequence[_FoldStats], ip: np.ndarray | int, links: np.ndarray,
           tn: np.ndarray, td: np.ndarray) -> _Chain:
    """Block elimination of the whitened precision ``P = Q (x) I_2 + T^1/2 A T^1/2``
    (``Q`` the Gauss-Markov precision of the folds' ``z``, ``A`` block diagonal), one
    2 x 2 block a fold. ``links[f]`` correlates folds ``f`` and ``f + 1``."""
    zero = np.zeros(np.broadcast_shapes(np.shape(tn), np.shape(td), np.shape(links[0:1])[1:]))
    log_det, uu, uy, yy, tc, tat = (zero.copy() for _ in range(6))
    rr = 0.0
    s = g_u = g_y = None
    for f, st in enumerate(stats):
        a11, a12, a22 = st.a11[ip], st.a12[ip], st.a22[ip]
        c1, c2 = st.c1[ip], st.c2[ip]
        before = links[f - 1] if f > 0 else 0.0
        after = links[f] if f < len(stats) - 1 else 0.0
        # the Gauss-Markov precision's diagonal and its link to the fold before
        q_ff = 1.0 / (1.0 - before ** 2) + after ** 2 / (1.0 - after ** 2)
        s11, s12, s22 = q_ff + tn * tn * a11, tn * td * a12 + zero, q_ff + td * td * a22
        u = (tn * c1 + zero, td * c2 + zero)
        y = (tn * (a11 * tn + a12 * td), td * (a12 * tn + a22 * td))
        if s is not None:  # the fold before, eliminated: S -= q^2 S_prev^-1, v -= q S_prev^-1 v
            q = -before / (1.0 - before ** 2)
            inv = _inverse(s)
            s11, s12, s22 = s11 - q * q * inv[0], s12 - q * q * inv[1], s22 - q * q * inv[2]
            u = tuple(a - q * b for a, b in zip(u, _apply(inv, g_u), strict=True))
            y = tuple(a - q * b for a, b in zip(y, _apply(inv, g_y), strict=True))
        s, g_u, g_y = (s11, s12, s22), u, y
        inv = _inverse(s)
        log_det += np.log(s11 * s22 - s12 ** 2) + st.log_det
        if f < len(stats) - 1:
            log_det += 2 * np.log(1.0 - links[f] ** 2)  # 2 log det R (N and D), R = Q^-1
        uu += _form(u, _apply(inv, u))
        uy += _form(u, _apply(inv, y))
        yy += _form(y, _apply(inv, y))
        tc += tn * c1 + td * c2
        tat += tn * tn * a11 + 2 * tn * td * a12 + td * td * a22
        rr += st.rr
    return _Chain(log_det, uu, uy, yy, tc, tat, rr)


def _inverse(s: tuple) -> tuple:
    """The inverse of symmetric 2 x 2 blocks ``(s11, s12, s22)``, in the same form."""
    s11, s12, s22 = s
    det = s11 * s22 - s12 ** 2
    return s22 / det, -s12 / det, s11 / det


def _apply(m: tuple, v: tuple) -> tuple:
    """Symmetric 2 x 2 blocks ``m`` times 2-vectors ``v``."""
    return m[0] * v[0] + m[1] * v[1], m[1] * v[0] + m[2] * v[1]


def _form(x: tuple, y: tuple) -> np.ndarray:
    """``x' y`` of 2-vectors."""
    return x[0] * y[0] + x[1] * y[1]


def _ordered(residuals: Sequence[FoldResidual]) -> list[_FoldStats]:
    return sorted((_stats(r) for r in residuals), key=lambda s: s.cut)


def target_log_marginal(residuals: Sequence[FoldResidual]) -> np.ndarray:
    """Log density of one target's folds on the grid, shape ``(m, p, ell, tau_N, tau_D)``,
    up to a constant.

    The folds' residuals stacked are one Gaussian: mean ``Phi t m``, covariance
    ``Sigma + Phi G Phi'`` with ``G = R (x) T`` (``R`` the folds' Gauss-Markov
    correlation at length ``ell``, ``T = diag(t^2)``). With ``A = Phi' Sigma^-1 Phi``
    block diagonal, ``P = Q (x) I + T^1/2 A T^1/2`` and ``b = T^1/2 Phi' Sigma^-1
    (r - Phi t m)``, the log density is ``-1/2 [log det Sigma + 2 log det R + log det P +
    (r - Phi t m)' Sigma^-1 (r - Phi t m) - b' P^-1 b]`` (Woodbury and the determinant
    lemma), and ``P`` is block tridiagonal: eliminated a fold at a time.

    Parameters
    ----------
    residuals : sequence of FoldResidual
        One target's folds, in any order (eliminated in the order of their cuts).

    Returns
    -------
    ndarray, shape ``(m, p, ell, tau_N, tau_D)``
        On :data:`BIAS_GRID`, :data:`GROWTH_GRID`, :data:`LENGTH_GRID` and
        :data:`TAU_GRID` twice.
    """
    stats = _ordered(residuals)
    cuts = np.array([s.cut for s in stats])
    tn, td = TAU_GRID[:, None], TAU_GRID[None, :]
    m = BIAS_GRID[:, None, None]
    out = np.empty((BIAS_GRID.size, GROWTH_GRID.size, LENGTH_GRID.size,
                    TAU_GRID.size, TAU_GRID.size))
    for il, length in enumerate(LENGTH_GRID):
        links = _links(cuts, np.asarray(length))
        for ip in range(GROWTH_GRID.size):
            c = _chain(stats, ip, links, tn, td)
            quad = (c.rr - 2 * m * c.tc + m ** 2 * c.tat
                    - (c.uu - 2 * m * c.uy + m ** 2 * c.yy))
            out[:, ip, il] = -0.5 * (c.log_det + quad)
    return out


def _log_prior_scale(tau: np.ndarray) -> np.ndarray:
    """Half-Cauchy(:data:`TAU_PRIOR_SCALE`) on a log-spaced grid: density times ``tau``."""
    return np.log(tau) - np.log1p((tau / TAU_PRIOR_SCALE) ** 2)


def _population_weights() -> np.ndarray:
    """``W[i, m, s]``: Normal(log mu_m, s) on ``log tau_i``, normalised over ``i``."""
    z = ((np.log(TAU_GRID)[:, None, None] - np.log(POP_MEDIANS)[None, :, None])
         / POP_SPREADS[None, None, :])
    w = np.exp(-0.5 * z ** 2)
    return w / w.sum(axis=0, keepdims=True)


def _shared() -> tuple[int, int, int]:
    """Sizes of the shared grid ``(m, p, ell)``."""
    return BIAS_GRID.size, GROWTH_GRID.size, LENGTH_GRID.size


class _Hyper(NamedTuple):
    """The grid posterior's shared pieces: each target's folds, the population weights
    ``w[i, mu, s]`` and the posterior ``pop`` of the shared values ``(q, mu_N, mu_D,
    s)``, ``q = (m, p, ell)``. A target's likelihood and evidence (:meth:`lik`,
    :func:`_evidence`) are computed again where needed, one target at a time: held for
    every target at once they took about 60 MB each."""

    folds: dict[str, list[FoldResidual]]
    w: np.ndarray
    pop: np.ndarray
    kept: dict[str, np.ndarray]

    def lik(self, target: str) -> np.ndarray:
        """``lik[q, i, j]`` of ``target`` (:func:`_target_lik`), kept from :func:`_hyper`
        for a fit of few targets."""
        if target in self.kept:
            return self.kept[target]
        return _target_lik(self.folds[target])


def _target_lik(folds: Sequence[FoldResidual]) -> np.ndarray:
    """``lik[q, i, j]`` of one target's folds over the shared values and its scales,
    relative to its largest."""
    log_lik = target_log_marginal(folds)
    return np.exp(log_lik - np.max(log_lik)).reshape(-1, TAU_GRID.size, TAU_GRID.size)


def _evidence(lik: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``Z[q, mu_N, mu_D, s] = sum_ij lik[q, i, j] W[i, mu_N, s] W[j, mu_D, s]``: one
    matrix product per spread (``s`` is shared by both factors)."""
    return np.stack([w[:, :, k].T @ lik @ w[:, :, k] for k in range(POP_SPREADS.size)],
                    axis=-1)


def _hyper(residuals: Sequence[FoldResidual]) -> _Hyper:
    folds: dict[str, list[FoldResidual]] = {}
    for r in residuals:
        folds.setdefault(r.target, []).append(r)
    w = _population_weights()
    kept: dict[str, np.ndarray] = {}
    log_prior_bias = np.repeat(-0.5 * (BIAS_GRID / BIAS_PRIOR_SCALE) ** 2,
                               GROWTH_GRID.size * LENGTH_GRID.size)
    log_pop = (log_prior_bias[:, None, None, None]
               + _log_prior_scale(POP_MEDIANS)[None, :, None, None]
               + _log_prior_scale(POP_MEDIANS)[None, None, :, None])
    for t, target_folds in folds.items():
        lik = _target_lik(target_folds)
        if len(kept) < _KEPT_TARGETS:  # the same values, not computed twice
            kept[t] = lik
        log_pop = log_pop + np.log(_evidence(lik, w) + 1e-300)
    pop = np.exp(log_pop - np.max(log_pop))
    return _Hyper(folds, w, pop / pop.sum(), kept)


def hyper_posterior(residuals: Sequence[FoldResidual]) -> dict[str, np.ndarray]:
    """Posterior weights of ``(m, p, ell, tau_N, tau_D)`` per target on the grid.

    Each target has its own scales, drawn from one population: ``log tau_t ~ Normal(
    log mu, s)`` for ``tau_N`` and ``tau_D`` (medians ``mu_N``, ``mu_D`` on
    :data:`POP_MEDIANS` under the half-Cauchy prior of :data:`TAU_PRIOR_SCALE`, a common
    spread ``s`` uniform on :data:`POP_SPREADS`). The growth ``p`` (uniform on
    :data:`GROWTH_GRID`), the folds' correlation length ``ell`` (uniform on
    :data:`LENGTH_GRID`) and the bias ``m`` (Normal(0, :data:`BIAS_PRIOR_SCALE`) on
    :data:`BIAS_GRID`, in units of each target's scale) are shared. The targets share
    runs, architecture and recipe, so the population pins what a target's few folds
    leave loose, while a target the law fits far worse than the others keeps its own
    larger scale; a law whose folds all err one way learns that direction from all of
    them. Computed exactly on the grid.

    Parameters
    ----------
    residuals : sequence of FoldResidual
        Every (fold, target) of one fit.

    Returns
    -------
    dict target -> ndarray, shape ``(m, p, ell, tau_N, tau_D)``
        Normalised weights of each target's (marginal) posterior; the joint draws of
        all targets are :func:`joint_draws`'.
    """
    h = _hyper(residuals)
    out = {}
    for t in h.folds:
        # sum over the population of pop * lik_t W W / Z_t
        lik = h.lik(t)
        ratio = h.pop / (_evidence(lik, h.w) + 1e-300)
        post = lik * sum(h.w[:, :, k] @ ratio[..., k] @ h.w[:, :, k].T
                         for k in range(POP_SPREADS.size))
        out[t] = (post / post.sum()).reshape(*_shared(), TAU_GRID.size, TAU_GRID.size)
    return out


class HyperDraws(NamedTuple):
    """Grid indices of joint posterior draws: the shared bias ``im`` and growth ``ip``
    (one per draw; the folds' length, integrated out, enters no prediction), and each
    target's scales ``(tau_N, tau_D)`` indices (draw ``s`` of every target is one draw
    of the joint posterior)."""

    im: np.ndarray
    ip: np.ndarray
    scales: dict[str, tuple[np.ndarray, np.ndarray]]


def joint_draws(rng: np.random.Generator, residuals: Sequence[FoldResidual], n: int
                ) -> HyperDraws:
    """``n`` draws of the joint grid posterior of :func:`hyper_posterior`.

    Parameters
    ----------
    rng : numpy.random.Generator
    residuals : sequence of FoldResidual
        Every (fold, target) of one fit.
    n : int

    Returns
    -------
    HyperDraws
        Grid indices; each target's likelihood is kept at the drawn shared values only
        while drawing (its memory grows with how spread their posterior is).
    """
    h = _hyper(residuals)
    flat = rng.choice(h.pop.size, n, p=h.pop.ravel())
    q, mu_n, mu_d, spread = np.unravel_index(flat, h.pop.shape)
    drawn = np.unique(q)  # each target's likelihood kept at the drawn shared values only
    lik = {t: dict(zip(drawn.tolist(), h.lik(t)[drawn], strict=True)) for t in h.folds}
    scales = {t: (np.empty(n, int), np.empty(n, int)) for t in h.folds}
    shape = (TAU_GRID.size, TAU_GRID.size)
    for value in np.unique(flat):
        at = np.flatnonzero(flat == value)
        first = at[0]
        for t in h.folds:
            weights = (lik[t][int(q[first])] * h.w[:, mu_n[first], spread[first]][:, None]
                       * h.w[:, mu_d[first], spread[first]][None, :]).ravel()
            pick = rng.choice(weights.size, at.size, p=weights / weights.sum())
            scales[t][0][at], scales[t][1][at] = np.unravel_index(pick, shape)
    im, ip, _ = np.unravel_index(q, _shared())
    return HyperDraws(im, ip, scales)


class TermDraws(NamedTuple):
    """One target's term per hyper draw (:func:`term_draws`): its scales, growth and
    the bias ``m`` in units of each scale."""

    tau_n: np.ndarray
    tau_d: np.ndarray
    growth: np.ndarray
    bias_units: np.ndarray


def term_draws(draws: HyperDraws, target: str) -> TermDraws:
    """``target``'s hyperparameters per joint draw, as values.

    The fit's own extrapolation gets a fresh ``z``: ``delta = d_N^p tau_N (m + z_N) +
    d_D^p tau_D (m + z_D)``. The folds' correlation counts their evidence (nested
    folds say less than as many independent ones), but the fit's ``z`` is not drawn
    given the last fold's: that fold's error, measured over a short distance, said
    little of the longer extrapolations of a study of many sizes
    (``docs/calibration.md``, "Folds correlated along their cuts").

    Parameters
    ----------
    draws : HyperDraws
        From :func:`joint_draws`.
    target : str

    Returns
    -------
    TermDraws
    """
    return TermDraws(TAU_GRID[draws.scales[target][0]], TAU_GRID[draws.scales[target][1]],
                     GROWTH_GRID[draws.ip], BIAS_GRID[draws.im])
