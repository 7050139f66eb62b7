"""Joint law (Shukor et al. 2025, eq. 5; checked against the text).

    L(N, D, h) = E + 1 / sum_i C_i h_i^gamma_i + A^h / N^alpha + B^h / D^beta
    A^h = (sum_i C^A_i h_i)^gamma^A,   B^h = (sum_i C^B_i h_i)^gamma^B

Centred form (see ``bayesmix.lawkit``): ``A^h / N^alpha =
exp(a + gamma_A * log(sum_i w^A_i k h_i) - alpha * log(N / N_ref))`` with
``w^A = softmax(u^A)``, so ``exp(a)`` is the size of the term at the reference point
and ``C^A_i = k w^A_i * exp(a / gamma_A) * N_ref^(alpha / gamma_A)``. The logits are
sampled as ``g_A = gamma_A u_A / k``, which the runs pin while ``gamma_A`` is seen
only through the curvature (``lawkit.mixing_power``); a common shift of ``g_A`` (of
``u_A``) is unseen and held by its prior. Likewise for ``B^h``. The data term is the
additive law's: ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i w_i (k h_i)^gamma_i`` with
shares ``w = softmax(u)`` (``exp(m)`` is the term at the uniform mixture, ``C_i =
exp(-m) w_i k^gamma_i``; the exponents are sampled through the elasticities
``log_e = log(w gamma)``, see ``lawkit.shares_and_exponents``).

Parameters (4k + 7 sampled, 4k + 5 identified: the softmaxes of A^h and B^h each have
one unseen common shift): a, alpha, b, beta, m, gamma_A, g_A (k) (gives u_A), gamma_B,
g_B (k) (gives u_B), sticks (k - 1) (give the shares, u = log w), log_e (k) (gives
gamma), loss_ref (gives E).
``natural`` returns ``E, alpha, beta, C (k), gamma (k), CA (k), gamma_A, CB (k), gamma_B``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    mixed_amplitudes,
    mixed_power_term,
    mixture_natural,
    mixture_term,
    power_priors,
    shares_and_exponents,
    sum_coefficients,
    with_irreducible_loss,
)

NAME = "joint"
EQUATION = (
    "L = E + 1/sum_i C_i h_i^gamma_i + A^h/N^alpha + B^h/D^beta, "
    "A^h = (sum_i CA_i h_i)^gammaA, B^h = (sum_i CB_i h_i)^gammaB"
)
REFERENCE = "Shukor et al. 2025, eq. 5"
USES = ("N", "D", "h")



def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    mixture = mixture_term(params["u"], params["gamma"], h)
    n_term = mixed_power_term(params["a"], params["u_A"], params["gamma_A"], h,
                              params["alpha"], log_n)
    d_term = mixed_power_term(params["b"], params["u_B"], params["gamma_B"], h,
                              params["beta"], log_d)
    return params["E"] + jnp.exp(params["m"]) / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        **power_priors(loss_scale),
        "m": amplitude("m", 0.1 * loss_scale),
        **mixed_amplitudes(k),
    }
    params["u"], params["gamma"] = shares_and_exponents(k)
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters of eq. 5 from the centred ones."""
    log_a = (params["a"] + params["alpha"] * jnp.log(n_ref)) / params["gamma_A"]
    log_b = (params["b"] + params["beta"] * jnp.log(d_ref)) / params["gamma_B"]
    return {
        "E": params["E"],
        "alpha": params["alpha"],
        "beta": params["beta"],
        **mixture_natural(params, k),
        "CA": sum_coefficients(params["u_A"], jnp.exp(log_a), k),
        "gamma_A": params["gamma_A"],
        "CB": sum_coefficients(params["u_B"], jnp.exp(log_b), k),
        "gamma_B": params["gamma_B"],
    }
