"""Additive law at fixed model size and token count (Shukor et al. 2025, appendix B.1).

    L(h) = E + 1 / sum_i C_i h_i^gamma_i

For sweeps where every run has the same ``N`` and ``D`` (e.g. RegMix). Centred
form: ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i w_i (k h_i)^gamma_i`` with
shares ``w = softmax(u)`` (``exp(m)`` is the term at the uniform mixture, ``C_i =
exp(-m) w_i k^gamma_i``; the exponents are sampled through the elasticities
``log_e = log(w gamma)``, see ``lawkit.shares_and_exponents``).

Parameters (2 + 2k sampled, 1 + 2k identified): loss_ref (gives E), m, u (k),
log_e (k) (gives gamma).
"""

import jax
import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    irreducible_loss,
    power_of_weights,
    shares_and_exponents,
    uniform_weights,
)

NAME = "additive_fixed_nd"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i"
REFERENCE = "Shukor et al. 2025, appendix B.1"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    shares = jax.nn.softmax(params["u"])
    mixture = jnp.sum(shares * power_of_weights(h, params["gamma"]), axis=-1)
    return params["E"] + jnp.exp(params["m"]) / mixture


def sample_params(k, loss_scale):
    """Priors: the mixture term ~ a tenth of the loss at the uniform mixture."""
    params = {
        "m": amplitude("m", 0.1 * loss_scale),
    }
    params["u"], params["gamma"] = shares_and_exponents(k)
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k))
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
