"""How the predicted losses respond to the mixture: elasticities and scale dependence.

:func:`elasticities` is the interaction matrix of a report: for every target ``t`` and
domain ``i``, ``d log L_t / d log h_i`` at one mixture and scale, per posterior draw,
with ``jax.grad`` through the law's mean (:func:`bayesmix.objective.law_loss`, the
function the mixture objective sums), vmapped over draws. :func:`moves_with_scale`
says whether the optimal mixture can move with ``N`` and ``D`` at all (the joint and
full laws) or not (the additive law, whose mixture term is apart from the scale terms),
so that a report computes ``h*(N, D)`` only where it can change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.model import TargetPosterior
from bayesmix.objective import MixtureObjective, law_loss

__all__ = ["Elasticities", "elasticities", "moves_with_scale", "reweights_along"]


@dataclass(frozen=True)
class Elasticities:
    """``d log L_t / d log h_i`` per draw, target and domain at one mixture and scale.

    A value of 0.05 says: one per cent more weight on domain ``i`` (others fixed, so
    off the simplex; read it as the direction of the pull) raises target ``t``'s loss
    by 0.05 per cent. Negative values are domains that help the target.

    Attributes
    ----------
    targets, domains : tuple of str
        Rows and columns.
    n_params, n_tokens : float
        The scale ``(N, D)`` they are taken at.
    mixture : ndarray, shape ``(k,)``
        The mixture ``h`` they are taken at.
    draws : ndarray, shape ``(S, T, k)``
        Per posterior draw (each target's own draws; targets with fewer draws are
        padded with NaN).
    """

    targets: tuple[str, ...]
    domains: tuple[str, ...]
    n_params: float
    n_tokens: float
    mixture: np.ndarray
    draws: np.ndarray

    @property
    def median(self) -> np.ndarray:
        """Posterior median, shape ``(T, k)``."""
        return np.nanmedian(self.draws, axis=0)

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` interval, two arrays of shape ``(T, k)``."""
        low, high = (1 - level) / 2, (1 + level) / 2
        return (np.nanquantile(self.draws, low, axis=0),
                np.nanquantile(self.draws, high, axis=0))

    def excludes_zero(self, level: float = 0.9) -> np.ndarray:
        """Whether the central ``level`` interval lies wholly on one side of 0, ``(T, k)``."""
        low, high = self.interval(level)
        return (low > 0) | (high < 0)


def _check_mixture(mixture: Any, k: int) -> np.ndarray:
    h = np.asarray(mixture, float)
    if h.shape != (k,) or np.any(h < 0) or abs(h.sum() - 1) > 1e-6:
        raise BayesmixError(f"the mixture must be a point of the {k}-domain simplex, "
                            f"got {np.asarray(mixture).tolist()}")
    return h


def elasticities(posteriors: Mapping[str, TargetPosterior], n_params: float,
                 n_tokens: float, mixture: Any) -> Elasticities:
    """The elasticity of each target's loss to each domain's weight, per draw.

    ``e[s, t, i] = h_i * d log L_t(N, D, h; theta_s) / d h_i`` with ``jax.grad`` of
    the law's mean (:func:`bayesmix.objective.law_loss`), ``vmap`` over draws. A
    discrepancy term multiplies a target's loss by a factor that does not depend on
    ``h``, so it leaves these derivatives unchanged; it is not drawn. A domain with
    ``h_i = 0`` has elasticity 0.

    Parameters
    ----------
    posteriors : dict target -> TargetPosterior
        Fits sharing the same training domains.
    n_params, n_tokens : float
        The scale (parameters ``N``, tokens ``D``), e.g. the planned run's.
    mixture : array_like, shape ``(k,)``
        Where to differentiate, e.g. ``OptimumReport.h_bayes``.

    Returns
    -------
    Elasticities

    Raises
    ------
    BayesmixError
        No posterior, posteriors with different domains, or ``mixture`` off the simplex.
    """
    if not posteriors:
        raise BayesmixError("no fitted targets given for the elasticities")
    first = next(iter(posteriors.values()))
    for target, posterior in posteriors.items():
        if posterior.domains != first.domains:
            raise BayesmixError(f"fit of '{target}' has domains {posterior.domains} but "
                                f"fit of '{first.target}' has {first.domains}")
    h = jnp.asarray(_check_mixture(mixture, len(first.domains)))
    n, d = jnp.asarray(float(n_params)), jnp.asarray(float(n_tokens))
    draws = max(p.n_draws for p in posteriors.values())
    out = np.full((draws, len(posteriors), h.shape[0]), np.nan)
    for index, posterior in enumerate(posteriors.values()):
        def log_loss(weights, params, posterior=posterior):
            return jnp.log(law_loss(posterior, params, n, d, weights))

        gradient = jax.jit(jax.vmap(jax.grad(log_loss), in_axes=(None, 0)))
        params = {name: jnp.asarray(v) for name, v in posterior.params.items()}
        grads = np.asarray(gradient(h, params))
        with np.errstate(invalid="ignore"):
            out[:posterior.n_draws, index] = np.where(np.asarray(h) > 0,
                                                      np.asarray(h) * grads, 0.0)
    return Elasticities(targets=tuple(posteriors), domains=first.domains,
                        n_params=float(n_params), n_tokens=float(n_tokens),
                        mixture=np.asarray(h), draws=out)


def moves_with_scale(objective: MixtureObjective, n_params: float, n_tokens: float,
                     mixtures: Sequence[Any], *, factor: float = 10.0, n_draws: int = 32,
                     tol: float | None = None) -> bool:
    """Whether the optimal mixture can depend on ``N`` or ``D`` under this objective.

    The optimum on the simplex stays where it is when scaling ``N`` or ``D`` only
    rescales the objective's gradient in ``h`` along the simplex (as for the additive
    and simple laws, whose mixture term is added to the scale terms). This compares
    the direction of that projected gradient at ``(N, D)``, ``(factor N, D)`` and
    ``(N, factor D)`` for the first ``n_draws`` draws at each of ``mixtures``.

    Parameters
    ----------
    objective : MixtureObjective
    n_params, n_tokens : float
        The scale to look around.
    mixtures : sequence of array_like, each shape ``(k,)``
        Where to look (e.g. ``h_bayes`` and the uniform mixture).
    factor : float
        How far in ``N`` and ``D``.
    n_draws : int
        Draws looked at.
    tol : float, optional
        Largest change of the unit direction counted as none (rounding): default
        1e-6 in float64, 1e-3 in float32.

    Returns
    -------
    bool
        True when some direction changes by more than ``tol``.
    """
    count = min(n_draws, objective.n_draws)
    params = jax.tree_util.tree_map(lambda v: v[:count], objective.jax_params())
    points = jnp.asarray(np.stack([np.asarray(m, float) for m in mixtures]))
    scales = jnp.asarray([[n_params, n_tokens], [factor * n_params, n_tokens],
                          [n_params, factor * n_tokens]], float)

    def direction(h, p, scale):
        g = jax.grad(objective)(h, p, scale[0], scale[1])
        g = g - jnp.mean(g)  # along the simplex
        return g / (jnp.linalg.norm(g) + 1e-300)

    per_draw = jax.vmap(direction, in_axes=(None, 0, None))
    per_scale = jax.vmap(per_draw, in_axes=(None, None, 0))
    directions = np.asarray(jax.jit(jax.vmap(per_scale, in_axes=(0, None, None)))(
        points, params, scales))  # (mixtures, scales, draws, k)
    if tol is None:
        tol = 1e-6 if directions.dtype == np.float64 else 1e-3
    change = np.abs(directions[:, 1:] - directions[:, :1])
    return bool(np.nanmax(change) > tol)


def reweights_along(objective: MixtureObjective, n_params: Sequence[float],
                    n_tokens: Sequence[float], *, tol: float = 1e-9) -> bool:
    """Whether the discrepancy's expected factors weigh the targets differently along a
    grid of ``(N, D)``, so that ``h_bayes`` can move with scale where the law's optimum
    does not (:meth:`MixtureObjective.decision_objectives`: with several targets it is
    the law's optimum under the weights ``w_t E[exp(delta_t)]``).

    Parameters
    ----------
    objective : MixtureObjective
    n_params, n_tokens : sequence of float
        The grid (the same length).
    tol : float
        Largest change of a target's log factor relative to the targets' mean counted
        as none.

    Returns
    -------
    bool
        False with fewer than two targets or no learnt term.
    """
    targets = list(objective.target_weights)
    if len(targets) < 2:
        return False
    logs = []
    for n, d in zip(n_params, n_tokens, strict=True):
        at = objective.log_mean_factors(n, d)
        row = np.array([at.get(t, 0.0) for t in targets])
        logs.append(row - row.mean())
    return bool(np.ptp(np.asarray(logs), axis=0).max() > tol)
