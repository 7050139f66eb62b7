"""Additive law (Shukor et al. 2025, eq. 4).

    L(N, D, h) = E + 1 / sum_i C_i h_i^gamma_i + A / N^alpha + B / D^beta

Centred form (see ``bayesmix.lawkit``): ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i
w_i (k h_i)^gamma_i`` with shares ``w = softmax(u)``, so ``exp(m)`` is the term at the
uniform mixture and ``C_i = exp(-m) w_i k^gamma_i``; ``A = exp(a) N_ref^alpha``;
``B = exp(b) D_ref^beta``; ``E`` is derived from ``loss_ref``, the loss at
``(N_ref, D_ref, h = 1/k)``. The exponents are sampled through the elasticities
``log_e = log(w gamma)`` (``lawkit.shares_and_exponents`` says why).

Parameters (6 + 2k sampled, 5 + 2k identified): loss_ref (gives E), a, alpha, b,
beta, m, u (k), log_e (k) (gives gamma).
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

NAME = "additive"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i + A/N^alpha + B/D^beta"
REFERENCE = "Shukor et al. 2025, eq. 4"
USES = ("N", "D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    shares = jax.nn.softmax(params["u"])
    mixture = jnp.sum(shares * power_of_weights(h, params["gamma"]), axis=-1)
    n_term = jnp.exp(params["a"] - params["alpha"] * log_n)
    d_term = jnp.exp(params["b"] - params["beta"] * log_d)
    return params["E"] + jnp.exp(params["m"]) / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale),
        "alpha": exponent("alpha"),
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
        "m": amplitude("m", 0.1 * loss_scale),
    }
    params["u"], params["gamma"] = shares_and_exponents(k)
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k))
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params


def natural(params, n_ref, d_ref, k):
    """The paper's parameters from the centred ones."""
    return {
        "E": params["E"],
        "A": jnp.exp(params["a"] + params["alpha"] * jnp.log(n_ref)),
        "alpha": params["alpha"],
        "B": jnp.exp(params["b"] + params["beta"] * jnp.log(d_ref)),
        "beta": params["beta"],
        "C": jnp.exp(-params["m"] + jax.nn.log_softmax(params["u"])
                     + params["gamma"] * jnp.log(k)),
        "gamma": params["gamma"],
    }
