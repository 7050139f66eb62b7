"""Additive law at fixed model size (Shukor et al. 2025, appendix B.2).

    L(D, h) = E + 1 / sum_i C_i h_i^gamma_i + B / D^beta

Centred form: ``C_i h_i^gamma_i = exp(c_i) (k h_i)^gamma_i``,
``B / D^beta = exp(b - beta * log(D / D_ref))``.

Parameters (3 + 2k): loss_ref (gives E), b, beta, c (k), gamma (k).
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    irreducible_loss,
    power_of_weights,
    uniform_weights,
)

NAME = "additive_fixed_n"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i + B/D^beta"
REFERENCE = "Shukor et al. 2025, appendix B.2"
USES = ("D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``; ``log_n`` unused."""
    mixture = jnp.sum(jnp.exp(params["c"]) * power_of_weights(h, params["gamma"]), axis=-1)
    return params["E"] + 1.0 / mixture + jnp.exp(params["b"] - params["beta"] * log_d)


def sample_params(k, loss_scale):
    """Priors: each reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
        "c": amplitude("c", 1.0 / (0.1 * loss_scale * k), (k,)),
        "gamma": exponent("gamma", shape=(k,)),
    }
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k))
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
