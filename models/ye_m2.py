"""Ye et al. 2024 baseline M2 (Shukor et al. 2025, appendix B.1, form as read here).

    L = c + sum_j k_j exp(t_j h_j)

One exponential per domain, added (no interaction between domains). For runs at one
``N`` and ``D``. The appendix's exact list of Ye et al. variants could not be checked in
this workplace; M1 is Ye et al.'s published law, M2-M4 are the variants as read here.

Centred form (``E = c`` is derived from the loss at the uniform mixture)::

    L = E + sum_j exp(a_j + t_j (h_j - 1/k))

Parameters (2k + 1): loss_ref (gives E = c), a (k), t (k).
"""

import jax.numpy as jnp

from bayesmix.lawkit import amplitude, irreducible_loss, slopes, uniform_weights

NAME = "ye_m2"
EQUATION = "L = c + sum_j k_j exp(t_j h_j)"
REFERENCE = "Ye et al. 2024; Shukor et al. 2025, appendix B.1"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    k = h.shape[-1]
    reducible = jnp.sum(jnp.exp(params["a"] + params["t"] * (h - 1.0 / k)), axis=-1)
    return params["E"] + reducible


def sample_params(k, loss_scale):
    """Priors: the reducible part ~ a tenth of the loss at the uniform mixture."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale / k, (k,)),
        "t": slopes("t", k),
    }
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)[None, :])[0]
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
