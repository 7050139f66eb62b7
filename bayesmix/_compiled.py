"""Release the XLA executables a fit compiles, so many fits fit in one process."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import jax

__all__ = ["releasing_compiled"]


@contextlib.contextmanager
def releasing_compiled() -> Iterator[None]:
    """Clear JAX's compilation caches when the block ends.

    Every fit traces a fresh model (the data's shape and the law are closed over), so
    its compiled code is never reused. Each executable keeps ~1,400 memory maps; a
    process that fit ~45 targets hit Linux's ``vm.max_map_count`` (65,530) and LLVM
    failed with "Cannot allocate memory". Clearing the caches after each fit keeps the
    count flat; the cost is that other jitted functions compile again on next use.
    """
    try:
        yield
    finally:
        jax.clear_caches()
        gc.collect()
