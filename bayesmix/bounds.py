"""The constraints on a mixture: per-domain weight bounds from the user's minimum and
maximum weights and from the data each domain has (tokens and passes over them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bayesmix._errors import BayesmixError

__all__ = ["mixture_bounds"]


def _per_domain(value: float | Mapping[str, float] | None, domains: Sequence[str],
                default: float, argument: str) -> np.ndarray:
    if value is None:
        return np.full(len(domains), default)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(domains))
        if unknown:
            raise BayesmixError(f"{argument} names unknown domain(s) {', '.join(unknown)} "
                                f"(domains: {', '.join(domains)})")
        return np.array([float(value.get(d, default)) for d in domains])
    return np.full(len(domains), float(value))


def mixture_bounds(
    domains: Sequence[str],
    *,
    min_weight: float | Mapping[str, float] | None = None,
    max_weight: float | Mapping[str, float] | None = None,
    tokens: Mapping[str, float] | None = None,
    max_epochs: float | Mapping[str, float] | None = None,
    n_tokens: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-domain bounds ``(l, u)`` from user constraints, checked for feasibility.

    ``l_i = min_weight_i`` and ``u_i = min(max_weight_i, e_i * T_i / D)``: training on
    ``D`` tokens with weight ``h_i`` reads ``h_i * D`` tokens of domain ``i``, which
    may not exceed ``e_i`` passes over its ``T_i`` available tokens. Domains without
    a token count are not limited by data.

    Parameters
    ----------
    domains : sequence of str
    min_weight, max_weight : float or dict domain -> float, optional
        One value for every domain, or per domain (others default to 0 and 1).
    tokens : dict domain -> float, optional
        Available tokens ``T_i``.
    max_epochs : float or dict domain -> float, optional
        ``e_i`` (default 1: no repetition) when ``tokens`` is given.
    n_tokens : float, optional
        Training tokens ``D`` of the planned run; required with ``tokens``.

    Returns
    -------
    lower, upper : ndarray, shape ``(k,)``

    Raises
    ------
    BayesmixError
        Bounds below 0 or above 1, ``l > u`` or ``sum l > 1`` or ``sum u < 1``.
    """
    lower = _per_domain(min_weight, domains, 0.0, "min_weight")
    upper = _per_domain(max_weight, domains, 1.0, "max_weight")
    above = [f"{side} {d} {w:g}" for side, bounds in (("min", lower), ("max", upper))
             for d, w in zip(domains, bounds, strict=True) if w > 1 + 1e-12]
    if above:  # 15 meant as 15 % would otherwise be no bound at all
        raise BayesmixError(f"weight bounds are shares of 1, got above 1: {', '.join(above)}")
    if tokens:
        if n_tokens is None or not n_tokens > 0:
            raise BayesmixError("tokens needs the planned run's training tokens n_tokens > 0")
        available = _per_domain(tokens, domains, np.inf, "tokens")
        epochs = _per_domain(max_epochs, domains, 1.0, "max_epochs")
        if np.any(available < 0) or np.any(epochs <= 0):
            raise BayesmixError("tokens must be >= 0 and max_epochs > 0")
        upper = np.minimum(upper, epochs * available / float(n_tokens))
    elif max_epochs is not None:
        raise BayesmixError("max_epochs needs tokens (available tokens per domain)")
    if not (np.all(np.isfinite(lower)) and np.all(lower >= 0) and np.all(upper >= 0)):
        raise BayesmixError(f"weight bounds must be >= 0, got min {lower.tolist()}")
    if bad := [d for d, lo, hi in zip(domains, lower, upper, strict=True) if lo > hi]:
        raise BayesmixError(f"minimum weight exceeds maximum (after token limits) for "
                            f"domain(s) {', '.join(bad)}")
    if lower.sum() > 1.0 + 1e-12:
        raise BayesmixError(f"minimum weights sum to {lower.sum():.4g} > 1: infeasible")
    if upper.sum() < 1.0 - 1e-12:
        raise BayesmixError(
            f"maximum weights (after token limits at D={n_tokens:g}) sum to "
            f"{upper.sum():.4g} < 1: not enough data for this run"
            if tokens else f"maximum weights sum to {upper.sum():.4g} < 1: infeasible")
    return lower, np.minimum(upper, 1.0)
