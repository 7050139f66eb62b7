"""Additive law at fixed model size (Shukor et al. 2025, appendix B.2).

    L(D, h) = E + 1 / sum_i C_i h_i^gamma_i + B / D^beta

Centred form: ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i w_i (k h_i)^gamma_i`` with
shares ``w = softmax(u)`` (``exp(m)`` is the term at the uniform mixture, ``C_i =
exp(-m) w_i k^gamma_i``; the exponents are sampled through the elasticities
``log_e = log(w gamma)``, see ``lawkit.shares_and_exponents``),
``B / D^beta = exp(b - beta * log(D / D_ref))``.

Parameters (4 + 2k sampled, 3 + 2k identified): loss_ref (gives E), b, beta, m,
u (k), log_e (k) (gives gamma).
"""

import jax
import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    irreducible_loss,
    power_of_weights,
    shares_and_exponents,
    uniform_weights,
)

NAME = "additive_fixed_n"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i + B/D^beta"
REFERENCE = "Shukor et al. 2025, appendix B.2"
USES = ("D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``; ``log_n`` unused."""
    shares = jax.nn.softmax(params["u"])
    mixture = jnp.sum(shares * power_of_weights(h, params["gamma"]), axis=-1)
    d_term = jnp.exp(params["b"] - params["beta"] * log_d)
    return params["E"] + jnp.exp(params["m"]) / mixture + d_term


def sample_params(k, loss_scale):
    """Priors: each reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
        "m": amplitude("m", 0.1 * loss_scale),
    }
    params["u"], params["gamma"] = shares_and_exponents(k)
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k))
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
