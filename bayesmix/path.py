"""The optimal mixture along a compute budget: ``h*(N, D)`` at ``C = 6 N D``, ``D = r N``
(the paper's Fig. 6), solved at each point as :func:`bayesmix.decision.decide` solves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.decision import per_domain_summary, solve_at
from bayesmix.objective import MixtureObjective

__all__ = ["compute_grid", "optimum_path"]


def compute_grid(flops: Sequence[float], tokens_per_param: float = 20.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` along a compute budget with ``C = 6 N D`` and ``D = r N``.

    Parameters
    ----------
    flops : sequence of float
        Training compute budgets ``C`` (FLOPs).
    tokens_per_param : float
        ``r = D / N`` (20 is the Chinchilla-optimal ratio).

    Returns
    -------
    n_params, n_tokens : ndarray, shape ``(len(flops),)``
    """
    flops = np.asarray(flops, float)
    if not (np.all(np.isfinite(flops)) and np.all(flops > 0)
            and np.isfinite(tokens_per_param) and tokens_per_param > 0):
        raise BayesmixError("compute budgets and tokens per parameter must be positive, "
                            "finite numbers")
    n_params = np.sqrt(flops / (6.0 * tokens_per_param))
    return n_params, tokens_per_param * n_params


def optimum_path(objective: MixtureObjective, n_params: Sequence[float],
                 n_tokens: Sequence[float], *, lower: Any = None, upper: Any = None,
                 tol: float = 1e-9, max_iter: int = 3000,
                 key: jax.Array | None = None) -> list[dict[str, Any]]:
    """``h*(N, D)`` along a compute grid (the paper's Fig. 6), solved as :func:`decide`
    solves it (``key`` draws the discrepancy's factors, default ``jax.random.key(0)``).

    Only scale-dependent laws (the joint and full laws, where ``N`` and ``D`` terms
    depend on ``h``) give a path that moves; for the additive law it is flat (but for
    the discrepancy's reweighting of several targets beyond the training range). Fixed
    bounds are used at every point (token limits depend on ``D``: call
    :func:`bayesmix.bounds.mixture_bounds` per point for those).

    Returns
    -------
    list of dict
        One per grid point: ``N``, ``D``, ``h_star`` (per-domain summaries) and
        ``h_bayes`` (per-domain weight).
    """
    if len(n_params) != len(n_tokens):
        raise BayesmixError("the compute grid needs as many N values as D values")
    path = []
    for n, d in zip(n_params, n_tokens, strict=True):
        _, draws, bayes = solve_at(objective, n, d, key=key, lower=lower, upper=upper,
                                   tol=tol, max_iter=max_iter)
        path.append({
            "N": float(n), "D": float(d),
            "h_star": per_domain_summary(objective.domains, np.asarray(draws.h)),
            "h_bayes": dict(zip(objective.domains, np.asarray(bayes.h).tolist(), strict=True)),
        })
    return path
