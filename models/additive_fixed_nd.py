"""Additive law at fixed model size and token count (Shukor et al. 2025, appendix B.1).

    L(h) = E + 1 / sum_i C_i h_i^gamma_i

For sweeps where every run has the same ``N`` and ``D`` (e.g. RegMix). Centred
form: ``C_i h_i^gamma_i = exp(c_i) (k h_i)^gamma_i``.

Parameters (1 + 2k): loss_ref (gives E), c (k), gamma (k).
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    irreducible_loss,
    power_of_weights,
    uniform_weights,
)

NAME = "additive_fixed_nd"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i"
REFERENCE = "Shukor et al. 2025, appendix B.1"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    mixture = jnp.sum(jnp.exp(params["c"]) * power_of_weights(h, params["gamma"]), axis=-1)
    return params["E"] + 1.0 / mixture


def sample_params(k, loss_scale):
    """Priors: the mixture term ~ a tenth of the loss at the uniform mixture."""
    params = {
        "c": amplitude("c", 1.0 / (0.1 * loss_scale * k), (k,)),
        "gamma": exponent("gamma", shape=(k,)),
    }
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k))
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
