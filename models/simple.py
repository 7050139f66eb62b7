"""Simple additive law (Shukor et al. 2025, eq. 9; checked against the text).

    L(N, D, h) = E + (sum_i C_i h_i)^gamma + A / N^alpha + B / D^beta

Eq. 9 prints the power terms as ``A / D^alpha + B / N^beta``; that is only a change of
letters, and this file keeps eq. 2's (``A, alpha`` for ``N``). ``k + 6`` published
parameters, ``k - 1`` fewer than the additive law, as the paper says.

Sign of the exponent: the paper leaves ``gamma``'s sign open; this file fits the
branch where the term falls as ``sum_i C_i h_i`` grows (``gamma < 0``, the additive
law's ``1 / sum_i C_i h_i^gamma_i`` with one exponent). The sampled exponent is its
magnitude, ``gamma_s = -gamma > 0``.

Centred form (see ``bayesmix.lawkit``): ``(sum_i C_i h_i)^gamma =
exp(-c - gamma_s * log(sum_i w_i k h_i))`` with ``w = softmax(u)``, so ``exp(-c)`` is
the term at the uniform mixture; it maps back as ``C_i = k w_i exp(c / gamma_s)``.
The logits are sampled as ``g = gamma_s u / k``, which the runs pin
(``lawkit.mixing_power``); one common shift of ``g`` is unseen, held by its prior.
``A = exp(a) N_ref^alpha``, ``B = exp(b) D_ref^beta``; ``E`` is derived from
``loss_ref``, the loss at the reference point. ``h_i = 0`` is an ordinary point while
one weight is positive.

Parameters (k + 7 sampled, k + 6 identified): a, alpha, b, beta, c, gamma (the
magnitude gamma_s), g (k) (gives u), loss_ref (gives E). ``natural`` returns
``E, A, alpha, B, beta, C (k), gamma`` (the published, negative, gamma).
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    log_mixed_power,
    mixing_power,
    power_priors,
    power_term,
    power_terms_natural,
    sum_coefficients,
    with_irreducible_loss,
)

NAME = "simple"
EQUATION = "L = E + (sum_i C_i h_i)^gamma + A/N^alpha + B/D^beta"
REFERENCE = "Shukor et al. 2025, eq. 9"
USES = ("N", "D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    mixture = jnp.exp(params["c"] + log_mixed_power(params["u"], params["gamma"], h))
    n_term = power_term(params["a"], params["alpha"], log_n)
    d_term = power_term(params["b"], params["beta"], log_d)
    return params["E"] + 1.0 / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        **power_priors(loss_scale),
        "c": amplitude("c", 1.0 / (0.1 * loss_scale)),
    }
    params["gamma"], params["u"] = mixing_power("", k, typical=0.3)
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters of eq. 9 from the centred ones."""
    return {
        "E": params["E"],
        **power_terms_natural(params, n_ref, d_ref),
        "C": sum_coefficients(params["u"], jnp.exp(params["c"] / params["gamma"]), k),
        "gamma": -params["gamma"],
    }
