"""Releasing the code each fit compiles, so that many fits run in one process."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from bayesmix._jaxutil import releasing_compiled


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_releasing_compiled_keeps_memory_maps_flat():
    """Each fit compiles fresh code; kept, its memory maps add up until LLVM fails
    (a 23-fit benchmark crashed so). Released, the count stays flat."""

    def maps() -> int:
        return len(Path("/proc/self/maps").read_text().splitlines())

    def compile_new(i: int) -> None:
        jax.jit(lambda x: jnp.sin(x) * i + jnp.cumsum(x))(jnp.ones(16 + i)).block_until_ready()

    with releasing_compiled():
        compile_new(0)
    before = maps()
    for i in range(1, 6):
        with releasing_compiled():
            compile_new(i)
    released = maps() - before
    for i in range(6, 11):  # negative control: the same work without release
        compile_new(i)
    kept = maps() - before - released
    assert released < kept
