"""Additive law (Shukor et al. 2025, eq. 4; checked against the text).

    L(N, D, h) = E + 1 / sum_i C_i h_i^gamma_i + A / N^alpha + B / D^beta

Centred form (see ``bayesmix.lawkit``): ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i
w_i (k h_i)^gamma_i`` with shares ``w = softmax(u)``, so ``exp(m)`` is the term at the
uniform mixture and ``C_i = exp(-m) w_i k^gamma_i``; ``A = exp(a) N_ref^alpha``;
``B = exp(b) D_ref^beta``; ``E`` is derived from ``loss_ref``, the loss at
``(N_ref, D_ref, h = 1/k)``. The exponents are sampled through the elasticities
``log_e = log(w gamma)`` (``lawkit.shares_and_exponents`` says why).

Parameters (5 + 2k sampled, all identified): a, alpha, b, beta, m, sticks (k - 1)
(give the shares, deterministic u = log w), log_e (k) (gives gamma), loss_ref (gives E).
``natural`` returns ``E, A, alpha, B, beta, C (k), gamma (k)``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    mixture_natural,
    mixture_priors,
    mixture_term,
    power_priors,
    power_term,
    power_terms_natural,
    with_irreducible_loss,
)

NAME = "additive"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i + A/N^alpha + B/D^beta"
REFERENCE = "Shukor et al. 2025, eq. 4"
USES = ("N", "D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    mixture = mixture_term(params["u"], params["gamma"], h)
    n_term = power_term(params["a"], params["alpha"], log_n)
    d_term = power_term(params["b"], params["beta"], log_d)
    return params["E"] + jnp.exp(params["m"]) / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        **power_priors(loss_scale),
        **mixture_priors(k, loss_scale),
    }
    return with_irreducible_loss(params, mean, k, loss_scale, run_axis=False)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters from the centred ones."""
    return {
        "E": params["E"],
        **power_terms_natural(params, n_ref, d_ref),
        **mixture_natural(params, k),
    }
