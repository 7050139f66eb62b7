"""NumPy generators seeded from JAX keys (for samplers JAX makes slow)."""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["numpy_rng"]


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded from every word of a JAX key.

    The one way bayesmix turns a key into a NumPy generator: used where NumPy's
    samplers are much faster than JAX's (Student-t draws, weighted resampling) and
    for the random designs of simulated runs.
    """
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
