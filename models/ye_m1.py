"""Ye et al. 2024, law M1 (Shukor et al. 2025, appendix B.1, "Ye M1"; checked against the text).

    L(h) = E + sum_i C_i exp(gamma_i h_i)

One exponential per domain, added: no interaction between domains. For runs at one
``N`` and ``D`` (the appendix fits it at one (N, D), Table 13).

Centred form (see ``bayesmix.lawkit``)::

    L = E + sum_i exp(a_i + gamma_i (h_i - 1/k))

so ``exp(a_i)`` is domain ``i``'s term at the uniform mixture and maps back as
``C_i = exp(a_i - gamma_i / k)``; ``E`` is derived from ``loss_ref``, the loss at the
uniform mixture. ``h_i = 0`` is an ordinary point (the term is ``C_i``).

Parameters (2k + 1, all identified): loss_ref (gives E), a (k), gamma (k).
``natural`` returns ``E, C (k), gamma (k)``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import amplitude_and_slopes, with_irreducible_loss

NAME = "ye_m1"
EQUATION = "L = E + sum_i C_i exp(gamma_i h_i)"
REFERENCE = "Ye et al. 2024; Shukor et al. 2025, appendix B.1 (Ye M1)"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    k = h.shape[-1]
    terms = jnp.exp(params["a"] + params["gamma"] * (h - 1.0 / k))
    return params["E"] + jnp.sum(terms, axis=-1)


def sample_params(k, loss_scale):
    """Priors: the k terms together ~ a tenth of the loss at the uniform mixture."""
    params = amplitude_and_slopes(k, loss_scale, per_domain=True)
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's ``E, C_i, gamma_i`` from the centred parameters."""
    return {
        "E": params["E"],
        "C": jnp.exp(params["a"] - params["gamma"] / k),
        "gamma": params["gamma"],
    }
