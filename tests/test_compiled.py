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


def _cache_dir_in_fresh_process(env_value: str) -> str:
    """What ``use_compilation_cache()`` returns in a new process with
    ``BAYESMIX_JAX_CACHE=env_value`` (and no JAX cache directory of the caller's)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["BAYESMIX_JAX_CACHE"] = env_value
    code = "import bayesmix; print(bayesmix.use_compilation_cache())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    return done.stdout.strip()


def test_use_compilation_cache_directory_off_and_unwritable(tmp_path):
    """The directory is made and used; ``off`` turns the cache off; a directory that
    cannot be made leaves it off instead of failing."""
    target = tmp_path / "cache" / "jax"
    assert _cache_dir_in_fresh_process(str(target)) == str(target)
    assert target.is_dir()
    assert _cache_dir_in_fresh_process("off") == "None"
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _cache_dir_in_fresh_process(str(blocker / "jax")) == "None"
