"""Full law (Shukor et al. 2025, eqs. 10-11; checked against the text).

    L(N, D, h) = E + 1 / sum_i C_i h_i^gamma_i + A^h / N^alpha^h + B^h / D^beta^h
    A^h = (sum_i C^A_i h_i)^gamma^A,          B^h = (sum_i C^B_i h_i)^gamma^B,
    alpha^h = (sum_i C^alpha_i h_i)^gamma^alpha,  beta^h = (sum_i C^beta_i h_i)^gamma^beta

The joint law (eq. 5) whose exponents also depend on the mixture, in the same
"power of a weighted sum" form as ``A^h`` and ``B^h``. Published parameters:
``5 + 6k`` (the text says the full law adds ``2k + 1`` to the joint law's ``5 + 4k``;
counting eq. 11, ``alpha`` and ``beta`` give way to ``C^alpha, gamma^alpha, C^beta,
gamma^beta``, ``2k`` more).

Centred form (see ``bayesmix.lawkit``; ``A^h`` and ``B^h`` as in ``joint.py``)::

    A^h / N^alpha^h = exp(a + gamma_A log(sum_i w^A_i k h_i) - alpha^h log(N / N_ref))
    alpha^h = alpha * exp(gamma_alpha log(sum_i w^alpha_i k h_i))

with shares ``w^X = softmax(u_X)``: ``exp(a)`` is the term and ``alpha`` the exponent
at the reference point. With exponents that depend on ``h`` the unit of ``N`` and
``D`` is part of the law (a change of unit multiplies ``A^h`` by an ``h``-dependent
factor), so this file measures ``N`` and ``D`` in units of ``N_ref`` and ``D_ref``,
the geometric means of the training runs, and ``natural`` gives the published
parameters in those units: ``C^A_i = k w^A_i exp(a / gamma_A)``,
``C^alpha_i = k w^alpha_i alpha^(1 / gamma_alpha)`` (likewise for ``B`` and ``beta``),
and ``C_i = exp(-m) w_i k^gamma_i`` for the data term. Each ``g_X = gamma_X u_X / k``
is sampled in place of ``u_X`` (``lawkit.mixing_power``). ``h_i = 0`` is an ordinary
point while one weight is positive.

Parameters (6k + 9 sampled, 6k + 5 identified: each of the four softmaxes of a
weighted sum has one unseen common shift, held by its prior): a, alpha, b, beta, m,
gamma_A, g_A (k), gamma_B, g_B (k), gamma_alpha, g_alpha (k), gamma_beta, g_beta (k),
sticks (k - 1) (give the shares, u = log w), log_e (k)
(gives gamma), loss_ref (gives E). ``natural`` returns ``E, C, gamma, CA, gamma_A,
CB, gamma_B, C_alpha, gamma_alpha, C_beta, gamma_beta``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    log_mixed_power,
    mixed_amplitudes,
    mixed_power_term,
    mixing_power,
    mixture_natural,
    mixture_term,
    power_priors,
    shares_and_exponents,
    sum_coefficients,
    with_irreducible_loss,
)

NAME = "full"
EQUATION = (
    "L = E + 1/sum_i C_i h_i^gamma_i + A^h/N^alpha^h + B^h/D^beta^h, "
    "A^h = (sum_i CA_i h_i)^gammaA, B^h = (sum_i CB_i h_i)^gammaB, "
    "alpha^h = (sum_i Calpha_i h_i)^gammaalpha, beta^h = (sum_i Cbeta_i h_i)^gammabeta"
)
REFERENCE = "Shukor et al. 2025, eqs. 10-11 (N, D in units of N_ref, D_ref)"
USES = ("N", "D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    mixture = mixture_term(params["u"], params["gamma"], h)
    alpha_h = params["alpha"] * jnp.exp(
        log_mixed_power(params["u_alpha"], params["gamma_alpha"], h)
    )
    beta_h = params["beta"] * jnp.exp(log_mixed_power(params["u_beta"], params["gamma_beta"], h))
    n_term = mixed_power_term(params["a"], params["u_A"], params["gamma_A"], h, alpha_h, log_n)
    d_term = mixed_power_term(params["b"], params["u_B"], params["gamma_B"], h, beta_h, log_d)
    return params["E"] + jnp.exp(params["m"]) / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        **power_priors(loss_scale),
        "m": amplitude("m", 0.1 * loss_scale),
        **mixed_amplitudes(k),
    }
    params["gamma_alpha"], params["u_alpha"] = mixing_power("_alpha", k)
    params["gamma_beta"], params["u_beta"] = mixing_power("_beta", k)
    params["u"], params["gamma"] = shares_and_exponents(k)
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters of eqs. 10-11, with ``N``, ``D`` in units of ``N_ref``, ``D_ref``.

    ``n_ref`` and ``d_ref`` are not used: they are the units (see the module docstring).
    """
    return {
        "E": params["E"],
        **mixture_natural(params, k),
        "CA": sum_coefficients(params["u_A"], jnp.exp(params["a"] / params["gamma_A"]), k),
        "gamma_A": params["gamma_A"],
        "CB": sum_coefficients(params["u_B"], jnp.exp(params["b"] / params["gamma_B"]), k),
        "gamma_B": params["gamma_B"],
        "C_alpha": sum_coefficients(
            params["u_alpha"], params["alpha"] ** (1.0 / params["gamma_alpha"]), k
        ),
        "gamma_alpha": params["gamma_alpha"],
        "C_beta": sum_coefficients(
            params["u_beta"], params["beta"] ** (1.0 / params["gamma_beta"]), k
        ),
        "gamma_beta": params["gamma_beta"],
    }
