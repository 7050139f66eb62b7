"""JAX and SciPy glue: compilation caches, one BLAS thread, SciPy objectives.

Every optimiser in bayesmix (the start-point search of the Bayesian fit, the Huber
baseline) hands SciPy a jitted value-and-gradient through :func:`scipy_value_and_grad`,
and runs it under :func:`one_blas_thread`; every fit releases what it compiled with
:func:`releasing_compiled`; :func:`use_compilation_cache` keeps compiled programs on
disk for the next fit and the next process.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "CACHE_ENV",
    "NOT_FINITE",
    "one_blas_thread",
    "releasing_compiled",
    "scipy_objective",
    "scipy_value_and_grad",
    "use_compilation_cache",
    "use_platform",
]

CACHE_ENV = "BAYESMIX_JAX_CACHE"
"""Environment variable: the compilation cache's directory, or ``off``."""

NOT_FINITE = 1e300
"""What :func:`scipy_value_and_grad` returns for a value or gradient that is not finite."""


def use_platform(platform: str) -> None:
    """Where JAX computes, set before it starts: ``auto`` (JAX's choice: a GPU when it
    has one), ``cpu`` or ``gpu``.

    Raises
    ------
    BayesmixError
        Another name, or ``gpu`` on a machine where JAX cannot start one (no GPU, or a
        JAX without GPU support).
    """
    from bayesmix._errors import BayesmixError, first_line

    if platform not in ("auto", "cpu", "gpu"):
        raise BayesmixError(f"unknown platform '{platform}' (use auto, cpu or gpu)")
    if platform == "auto":
        return
    os.environ["JAX_PLATFORMS"] = platform  # for the worker processes this one starts
    jax.config.update("jax_platforms", platform)
    try:
        jax.devices()
    except RuntimeError as exc:
        raise BayesmixError(
            f"platform '{platform}': JAX cannot start it here ({first_line(exc)}); a GPU needs "
            f"jax with CUDA (pip install 'jax[cuda12]'), or use the platform 'cpu'"
        ) from None


@contextlib.contextmanager
def releasing_compiled() -> Iterator[None]:
    """Clear JAX's compilation caches when the block ends.

    Every fit builds fresh jitted functions, so the in-memory caches keep executables
    no later fit calls (the next fit loads its programs from the persistent cache of
    :func:`use_compilation_cache`, when it is on). Each executable keeps ~1,400 memory maps; a
    process that fit ~45 targets hit Linux's ``vm.max_map_count`` (65,530) and LLVM
    failed with "Cannot allocate memory". Clearing the caches after each fit keeps the
    count flat; the cost is that other jitted functions compile again on next use.
    """
    try:
        yield
    finally:
        jax.clear_caches()
        gc.collect()


def use_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Keep compiled programs on disk (JAX's persistent compilation cache).

    A fit's programs depend only on the law, the number of weights and rows, the
    sampler's settings and the precision (the data are their arguments), so the second
    fit of a study, and the next command, load them instead of compiling (about 80 %
    of a small fit's time). The CLI calls this at program start; call it once, before
    the first fit, from a notebook or script.

    Parameters
    ----------
    path : str or PathLike, optional
        Cache directory. Default: ``$BAYESMIX_JAX_CACHE``, else
        ``$XDG_CACHE_HOME/bayesmix/jax`` (``~/.cache/bayesmix/jax``).
        ``$BAYESMIX_JAX_CACHE=off`` turns the cache off.

    Returns
    -------
    Path or None
        The directory in use; None when off, when the directory cannot be created (the
        fit then compiles as without a cache), or when JAX's cache directory was already
        set (by the caller, ``JAX_COMPILATION_CACHE_DIR`` or an earlier call), whose
        choice is kept.

    Notes
    -----
    JAX loads executables from this directory: keep it private to your user (the
    default is). Entries are not evicted; a law's programs take a few MB (5.5 MB for a
    two-target study), so delete the directory to reclaim the space.
    """
    import jax

    env = os.environ.get(CACHE_ENV, "")
    if path is None and env.lower() == "off":
        return None
    if jax.config.jax_compilation_cache_dir:  # set by the caller: keep it
        return None
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = env or Path(base) / "bayesmix" / "jax"
    directory = Path(path).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # unwritable: compile as without a cache rather than warn each time
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # every program, the small eager ones too: each fit compiles those again after
    # releasing_compiled, and reading them back is faster (two simulated targets:
    # 21 s with a 0.5 s floor, 15 s with none; the cache held 5.5 MB)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return directory


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread while L-BFGS-B runs.

    SciPy's L-BFGS-B makes many tiny BLAS calls; with OpenBLAS's threads competing
    with JAX's on a small machine each call cost milliseconds (measured: 5.0 s against
    0.17 s for the same 350 evaluations on 2 cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # only slower without it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def scipy_value_and_grad(
    fn: Callable[..., jax.Array], *args: Any, sentinel: float = NOT_FINITE
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``fn``'s jitted value and gradient as SciPy's ``jac=True`` objectives want them.

    Parameters
    ----------
    fn : callable
        ``fn(x, *args) -> scalar``, ``x`` a flat vector.
    *args
        Passed to the jitted function as arguments (not closed over, so that XLA does
        not constant-fold data into the compiled code).
    sentinel : float
        Value returned, with a zero gradient, where the value or the gradient is not
        finite: L-BFGS-B's line search then backs off instead of failing on a NaN.

    Returns
    -------
    callable
        ``x -> (float value, float64 gradient)``.
    """
    return scipy_objective(jax.jit(jax.value_and_grad(fn)), *args, sentinel=sentinel)


def scipy_objective(
    value_and_grad: Callable[..., tuple[jax.Array, jax.Array]], *args: Any,
    sentinel: float = NOT_FINITE,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """A jitted ``value_and_grad(x, *args)`` as SciPy's ``jac=True`` objective.

    :func:`scipy_value_and_grad` without the jit: for a caller that keeps its
    compiled ``value_and_grad`` across calls (see :mod:`bayesmix.start`).
    """
    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(jnp.asarray(x), *args)
        value = float(value)
        grad = np.asarray(grad, dtype=float)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return sentinel, np.zeros_like(grad)
        return value, grad

    return objective
