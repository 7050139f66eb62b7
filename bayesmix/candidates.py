"""Runs one could launch next: sizes, token counts, mixtures and their checkpoints.

A candidate is a *run*: a model of ``N`` parameters trained on the mixture ``h`` up to
``D`` tokens with a constant learning rate, so that it also reports every checkpoint on
the way (the paper's runs do: one run gives the losses at several ``D``). Its cost is
``6 N D`` FLOPs, its observations are its checkpoints. :mod:`bayesmix.design` values
them; this module only builds them (by default from the runs already made, or from a
user's file) and knows nothing of laws or posteriors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.references import read_reference_file
from bayesmix.simplex import kl_projection

__all__ = ["Candidates", "candidate_runs", "checkpoint_tokens", "read_candidates"]

MAX_TOKEN_OPTIONS = 4
"""Final token counts offered per size (thinned evenly in log from the runs' own)."""


@dataclass(frozen=True)
class Candidates:
    """Candidate runs, one row each.

    Attributes
    ----------
    n_params : ndarray, shape ``(C,)``
        Model parameters ``N``.
    n_tokens : ndarray, shape ``(C,)``
        Tokens ``D`` the run is trained to (its last checkpoint).
    weights : ndarray, shape ``(C, k)``
        Mixtures, in ``domains`` order.
    checkpoints : ndarray, shape ``(C, R)``
        Tokens of each run's checkpoints, ascending, NaN-padded to ``R`` columns.
    origin : tuple of str
        Where each mixture came from (``h_bayes``, ``h* draw``, ``uniform``,
        ``random``, ``file``...).
    domains : tuple of str
    """

    n_params: np.ndarray
    n_tokens: np.ndarray
    weights: np.ndarray
    checkpoints: np.ndarray
    origin: tuple[str, ...]
    domains: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.n_params.shape[0])

    @property
    def cost(self) -> np.ndarray:
        """Training FLOPs of each run, ``6 N D``, shape ``(C,)``."""
        return 6.0 * self.n_params * self.n_tokens

    @property
    def mask(self) -> np.ndarray:
        """Which checkpoint cells are real (not padding), shape ``(C, R)``."""
        return np.isfinite(self.checkpoints)

    def take(self, index: Sequence[int]) -> Candidates:
        """The candidates at ``index`` (in that order)."""
        index = np.asarray(index, int)
        return Candidates(self.n_params[index], self.n_tokens[index], self.weights[index],
                          self.checkpoints[index], tuple(self.origin[i] for i in index),
                          self.domains)


def _ratios_by_size(train_n: np.ndarray, train_d: np.ndarray) -> dict[float, np.ndarray]:
    """The distinct tokens-per-parameter ratios ``D / N`` used at each training size."""
    sizes = np.unique(train_n)
    return {float(n): np.unique(np.round(train_d[train_n == n] / n, 9)) for n in sizes}


def _nearest_size(ratios: Mapping[float, np.ndarray], n_params: float) -> float:
    sizes = np.array(sorted(ratios))
    return float(sizes[np.argmin(np.abs(np.log(sizes) - np.log(n_params)))])


def checkpoint_tokens(train_n: Any, train_d: Any, n_params: float, n_tokens: float
                      ) -> np.ndarray:
    """The tokens at which a run ``(N, D)`` reports its loss, ascending.

    A run keeps the checkpoint schedule of the runs already made at the nearest size
    (in ``log N``): the same tokens-per-parameter ratios ``D_j / N``, those up to
    ``D``, and ``D`` itself.

    Parameters
    ----------
    train_n, train_d : array_like, shape ``(n,)``
        Parameters and tokens of the training rows.
    n_params, n_tokens : float
        The run's size and final tokens.
    """
    ratios = _ratios_by_size(np.asarray(train_n, float), np.asarray(train_d, float))
    grid = ratios[_nearest_size(ratios, n_params)] * n_params
    grid = grid[grid < n_tokens * (1 - 1e-9)]
    return np.append(grid, float(n_tokens))


def _sizes(train_n: np.ndarray, sizes_up: int) -> np.ndarray:
    """The training sizes plus ``sizes_up`` sizes above, at the runs' own size step."""
    sizes = np.unique(train_n)
    step = float(np.exp(np.mean(np.diff(np.log(sizes))))) if sizes.size > 1 else 2.0
    up = [float(f"{n:.3g}") for n in sizes[-1] * step ** np.arange(1, sizes_up + 1)]
    return np.concatenate([sizes, up])


def _thinned(values: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of sorted ``values``, evenly spaced by index, the largest kept."""
    if values.size <= most:
        return values
    index = np.unique(np.round(np.linspace(values.size - 1, 0, most)).astype(int))
    return values[index]


def _random_mixtures(key: jax.Array, k: int, count: int, lower: np.ndarray,
                     upper: np.ndarray) -> np.ndarray:
    """Mixtures spread over the constrained simplex ``{h : l <= h <= u, sum h = 1}``.

    ``l + (1 - sum l) g`` with ``g ~ Dirichlet(1)`` meets the lower bounds; a draw
    over an upper bound is moved to its KL projection on the bounded simplex.
    """
    if count <= 0:
        return np.zeros((0, k))
    g = numpy_rng(key).dirichlet(np.ones(k), size=count)
    h = lower + (1.0 - lower.sum()) * g
    over = np.any(h > upper + 1e-12, axis=1)
    if np.any(over):
        project = jax.vmap(lambda x: kl_projection(jnp.log(x), lower, upper))
        h[over] = np.asarray(project(jnp.asarray(h[over])))
    return h


def _pad(rows: Sequence[np.ndarray]) -> np.ndarray:
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _assemble(train_n: np.ndarray, train_d: np.ndarray, runs: list[tuple[float, float]],
              mixtures: np.ndarray, origin: Sequence[str], domains: Sequence[str]
              ) -> Candidates:
    """Every (size, final tokens) pair with every mixture, duplicates dropped."""
    n_params, n_tokens, weights, names, seen = [], [], [], [], set()
    for n, d in runs:
        for h, name in zip(mixtures, origin, strict=True):
            signature = (round(np.log(n), 9), round(np.log(d), 9), *np.round(h, 6))
            if signature in seen:
                continue
            seen.add(signature)
            n_params.append(n)
            n_tokens.append(d)
            weights.append(h)
            names.append(name)
    checkpoints = _pad([checkpoint_tokens(train_n, train_d, n, d)
                        for n, d in zip(n_params, n_tokens, strict=True)])
    return Candidates(np.array(n_params), np.array(n_tokens), np.array(weights), checkpoints,
                      tuple(names), tuple(domains))


def candidate_runs(
    key: jax.Array,
    domains: Sequence[str],
    train_n: Any,
    train_d: Any,
    *,
    mixtures: Mapping[str, Any] | None = None,
    lower: Any = None,
    upper: Any = None,
    n_random: int = 40,
    sizes_up: int = 1,
) -> Candidates:
    """The default candidates: sizes already used plus larger ones, at their token counts.

    Sizes are the training runs' distinct ``N`` plus ``sizes_up`` sizes above the
    largest, at the runs' mean size step (in ``log N``; twice the size when there is
    one). At each size a run is trained to one of at most :data:`MAX_TOKEN_OPTIONS`
    of the tokens-per-parameter ratios used at the nearest training size (the largest
    always among them), with the checkpoints of :func:`checkpoint_tokens`. Each is
    paired with every mixture: the ``mixtures`` given (for example ``h_bayes`` and
    some per-draw ``h*``) and ``n_random`` mixtures spread over the constrained
    simplex.

    Parameters
    ----------
    key : jax.Array
        PRNG key of the random mixtures.
    domains : sequence of str
    train_n, train_d : array_like, shape ``(n,)``
        Parameters and tokens of the runs already made (one entry per row).
    mixtures : dict name -> array ``(k,)``, optional
        Mixtures to include; the name is the candidate's ``origin``.
    lower, upper : array_like, shape ``(k,)``, optional
        Weight bounds (:func:`bayesmix.bounds.mixture_bounds`); given mixtures
        outside them are dropped.
    n_random : int
        Random mixtures of the constrained simplex.
    sizes_up : int
        Sizes above the largest training size.

    Returns
    -------
    Candidates

    Raises
    ------
    BayesmixError
        No training rows, non-positive sizes, or negative counts.
    """
    train_n, train_d = np.asarray(train_n, float), np.asarray(train_d, float)
    if train_n.size == 0 or train_n.shape != train_d.shape:
        raise BayesmixError("candidate runs need the training runs' N and D (same length)")
    if not (np.all(np.isfinite(train_n) & (train_n > 0))
            and np.all(np.isfinite(train_d) & (train_d > 0))):
        raise BayesmixError("the training runs' N and D must be positive and finite")
    if n_random < 0 or sizes_up < 0:
        raise BayesmixError(f"n_random and sizes_up must be >= 0, got {n_random}, {sizes_up}")
    k = len(domains)
    lo = np.zeros(k) if lower is None else np.asarray(lower, float)
    hi = np.ones(k) if upper is None else np.asarray(upper, float)
    named = [(name, np.asarray(h, float)) for name, h in (mixtures or {}).items()]
    named = [(name, h / h.sum()) for name, h in named
             if np.all(h >= lo - 1e-9) and np.all(h <= hi + 1e-9)]
    random = _random_mixtures(key, k, n_random, lo, hi)
    all_mixtures = np.concatenate([np.array([h for _, h in named]).reshape(-1, k), random])
    origin = [name for name, _ in named] + ["random"] * len(random)
    if len(all_mixtures) == 0:
        raise BayesmixError("no candidate mixture: give mixtures or n_random > 0")
    ratios = _ratios_by_size(train_n, train_d)
    runs = [(float(n), float(r * n))
            for n in _sizes(train_n, sizes_up)
            for r in _thinned(ratios[_nearest_size(ratios, n)], MAX_TOKEN_OPTIONS)]
    return _assemble(train_n, train_d, runs, all_mixtures, origin, domains)


def read_candidates(path: str | Path, domains: Sequence[str], train_n: Any, train_d: Any
                    ) -> Candidates:
    """Candidate runs from a CSV: columns ``N``, ``D`` and one weight per domain.

    Weights are named by domain, ``h_<domain>`` or ``weight_<domain>`` (as reference
    mixtures are); each row is a run trained to ``D`` tokens, with the checkpoints of
    :func:`checkpoint_tokens`.

    Raises
    ------
    BayesmixError
        Unreadable file, a missing column, or a row whose ``N``, ``D`` or weights are
        not valid (row numbers counted from 1 after the header).
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BayesmixError(f"cannot read candidate runs {path}: {exc}") from None
    missing = [c for c in ("N", "D") if c not in frame.columns]
    if missing:
        raise BayesmixError(f"candidate runs {path} have no column {', '.join(missing)}")
    weights = np.array(list(read_reference_file(path, domains, what="candidate runs")
                            .values()), float)
    sizes = frame[["N", "D"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad_size = ~np.all(np.isfinite(sizes) & (sizes > 0), axis=1)
    bad_weight = ~(np.all(np.isfinite(weights) & (weights >= 0), axis=1)
                   & (np.abs(weights.sum(axis=1) - 1) <= 1e-3))
    for bad, what in ((bad_size, "N or D not a positive number"),
                      (bad_weight, "weights negative, missing or not summing to 1")):
        if np.any(bad):
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
            raise BayesmixError(f"candidate runs {path}: {what} in rows {rows}")
    weights = weights / weights.sum(axis=1, keepdims=True)
    train_n, train_d = np.asarray(train_n, float), np.asarray(train_d, float)
    checkpoints = _pad([checkpoint_tokens(train_n, train_d, n, d) for n, d in sizes])
    return Candidates(sizes[:, 0], sizes[:, 1], weights, checkpoints,
                      ("file",) * len(sizes), tuple(domains))
