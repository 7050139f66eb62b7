"""Test set-up: program start (device count, float64, compilation cache) and shared
session fixtures.

JAX is configured here, before any test imports it: two host devices so that chains
run in parallel, float64 as the CLI uses by default, and JAX's persistent compilation
cache in a directory of this process only (so that fits of the same law, settings and
number of rows compile once per test process, in it and in the CLI subprocesses that
inherit the variable, and nothing is written to the user's cache). Under pytest-xdist
(the default, ``-n 2`` in pyproject.toml) each worker process has its own directory, so
a program both workers need is compiled by each.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("MPLBACKEND", "Agg")
_CACHE = tempfile.mkdtemp(prefix="bayesmix-test-jax-cache-")
os.environ["BAYESMIX_JAX_CACHE"] = _CACHE  # CLI subprocesses
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

# set here rather than through bayesmix.use_compilation_cache, which would keep a
# JAX_COMPILATION_CACHE_DIR from the environment (the user's own cache)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

from bayesmix.laws import load_law  # noqa: E402
from bayesmix.simulate import simulate_runs  # noqa: E402


@pytest.fixture(scope="session")
def additive_runs(tmp_path_factory):
    """Simulated additive-law runs (3 domains, 3 targets) written as a canonical CSV.

    Returns ``(path, table, truth)``; ``truth`` holds the sampled sites per target.
    """
    table, truth = simulate_runs(jax.random.key(1234), load_law("additive"), 3)
    path = tmp_path_factory.mktemp("runs") / "additive.csv"
    table.frame.to_csv(path, index=False)
    return path, table, truth
