"""Additive law at fixed model size (Shukor et al. 2025, appendix B.2; checked against the text).

    L(D, h) = E + 1 / sum_i C_i h_i^gamma_i + B / D^beta

Centred form: ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i w_i (k h_i)^gamma_i`` with
shares ``w = softmax(u)`` (``exp(m)`` is the term at the uniform mixture, ``C_i =
exp(-m) w_i k^gamma_i``; the exponents are sampled through the elasticities
``log_e = log(w gamma)``, see ``lawkit.shares_and_exponents``),
``B / D^beta = exp(b - beta * log(D / D_ref))``.

``B = exp(b) D_ref^beta``.

Parameters (3 + 2k sampled, all identified): b, beta, m, sticks (k - 1) (give the
shares, u = log w), log_e (k) (gives gamma), loss_ref (gives E).
``natural`` returns ``E, B, beta, C (k), gamma (k)``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    mixture_natural,
    mixture_priors,
    mixture_term,
    power_coefficient,
    power_term,
    with_irreducible_loss,
)

NAME = "additive_fixed_n"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i + B/D^beta"
REFERENCE = "Shukor et al. 2025, appendix B.2"
USES = ("D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``; ``log_n`` unused."""
    mixture = mixture_term(params["u"], params["gamma"], h)
    d_term = power_term(params["b"], params["beta"], log_d)
    return params["E"] + jnp.exp(params["m"]) / mixture + d_term


def sample_params(k, loss_scale):
    """Priors: each reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
        **mixture_priors(k, loss_scale),
    }
    return with_irreducible_loss(params, mean, k, loss_scale, run_axis=False)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters ("Additive, fixed N") from the centred ones."""
    return {
        "E": params["E"],
        "B": power_coefficient(params["b"], params["beta"], d_ref),
        "beta": params["beta"],
        **mixture_natural(params, k),
    }
