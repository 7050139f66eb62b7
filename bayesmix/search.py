"""The paper's search: best random prior draws, then basin-hopping around L-BFGS-B.

:func:`random_search` evaluates the Huber objective (:mod:`bayesmix.huber`) at many
draws of the law's sampling statements and keeps the best; :func:`basin_hop` runs
``scipy.optimize.basinhopping`` from each of them with a counted L-BFGS-B minimiser
(:class:`Counter`) that records the best point and the trace of best values.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import numpy as np
import scipy.optimize

from bayesmix._jaxutil import NOT_FINITE, one_blas_thread, scipy_value_and_grad
from bayesmix.huber import Inputs, Problem
from bayesmix.laws import free_sites

__all__ = ["Counter", "basin_hop", "random_search"]

_CHUNK = 512  # random-search points evaluated per vmapped batch


def random_search(
    problem: Problem, key: jax.Array, n_random: int, n_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n_keep`` of ``n_random`` prior draws: unconstrained points ``(n_keep, size)``
    and their objective values, best first.

    The draws come from the law's sampling statements (its ``factor`` terms, such as
    ``E > 0``, are left to the objective's penalty).
    """

    def one(k: jax.Array, inputs: Inputs) -> tuple[jax.Array, jax.Array]:
        sites = free_sites(problem.law.sample_params, k, problem.k_seen,
                           problem.scales.loss_scale)
        x = problem.flatten({name: site["value"] for name, site in sites.items()})
        return x, problem.objective(x, inputs)

    batched = jax.jit(jax.vmap(one, in_axes=(0, None)))
    keys = jax.random.split(key, -(-n_random // _CHUNK) * _CHUNK).reshape(-1, _CHUNK)
    chunks = [batched(chunk, problem.inputs) for chunk in keys]
    points = np.concatenate([np.asarray(c[0]) for c in chunks])[:n_random]
    values = np.concatenate([np.asarray(c[1]) for c in chunks])[:n_random]
    values = np.where(np.isfinite(values), values, np.inf)
    order = np.argsort(values, kind="stable")[:n_keep]
    return points[order], values[order]


class Counter:
    """The L-BFGS-B minimiser basin-hopping calls, recording every run."""

    def __init__(self, start: float, options: dict[str, Any]):
        self.start = start
        self.options = options
        self.calls = 0
        self.evaluations = 0
        self.best = math.inf
        self.best_x: np.ndarray | None = None
        self.best_success = False
        self.best_message = "no L-BFGS run finished"
        self.seconds_to_best = 0.0
        self.trace: list[tuple[int, float]] = []

    def minimize(self, fun, x0, args=(), jac=None, **_: Any) -> scipy.optimize.OptimizeResult:
        res = scipy.optimize.minimize(fun, x0, args=args, jac=jac, method="L-BFGS-B",
                                      options=self.options)
        self.calls += 1
        self.evaluations += int(res.nfev)
        value = float(res.fun)
        if np.isfinite(value) and value < self.best:
            self.best = value
            self.best_x = np.array(res.x, dtype=float)
            self.best_success = bool(res.success)
            self.best_message = str(res.message)
            self.seconds_to_best = time.perf_counter() - self.start
        self.trace.append((self.calls, self.best))
        return res


def _seed_of(key: jax.Array) -> int:
    return int(np.asarray(jax.random.randint(key, (), 0, 2**31 - 1)))


def basin_hop(problem: Problem, points: np.ndarray, values: np.ndarray, key: jax.Array, *,
              n_hops: int, temperature: float, step_size: float, patience: int | None,
              maxiter: int, maxcor: int, start: float) -> Counter:
    """Basin-hopping from every start in ``points`` (best first), counting L-BFGS-B runs.

    Parameters
    ----------
    problem : Problem
    points : ndarray, shape ``(m, size)``
        Unconstrained start points; ``values`` their scaled objective values.
    key : jax.Array
        One basin-hopping seed per start is drawn from it.
    n_hops, temperature, step_size, patience
        ``niter``, ``T``, ``stepsize`` and ``niter_success`` of
        ``scipy.optimize.basinhopping``.
    maxiter, maxcor : int
        L-BFGS-B options.
    start : float
        ``time.perf_counter()`` when the fit began (for ``seconds_to_best``).

    Returns
    -------
    Counter
        The best point found (the best start when no run improves on it), the number
        of runs and evaluations, and the trace of best values after each run.
    """
    fun = scipy_value_and_grad(problem.objective, problem.inputs)
    counter = Counter(start, {"maxiter": maxiter, "maxcor": maxcor})
    first = int(np.argmin(values))  # an init point need not be the best start
    counter.best = float(values[first])
    counter.best_x = points[first].astype(float)
    counter.best_message = "random search only"
    seeds = jax.random.split(key, len(points))
    with one_blas_thread():
        for x0, seed in zip(points, seeds, strict=True):
            if fun(x0)[0] >= NOT_FINITE:  # not finite: basin-hopping cannot start here
                continue
            scipy.optimize.basinhopping(
                fun, np.asarray(x0, float), niter=n_hops, T=temperature, stepsize=step_size,
                minimizer_kwargs={"method": counter.minimize, "jac": True},
                niter_success=patience, rng=np.random.default_rng(_seed_of(seed)),
            )
    return counter
