"""Ye et al. 2024, law M2 (Shukor et al. 2025, appendix B.1, "Ye M2"; checked against the text).

    L(h) = E + C sum_i exp(gamma_i h_i)

M1 with one amplitude shared by the domains. For runs at one ``N`` and ``D``.

Centred form (see ``bayesmix.lawkit``)::

    L = E + exp(a + logsumexp_i(gamma_i h_i) - logsumexp_i(gamma_i / k))

so ``exp(a)`` is the reducible term at the uniform mixture and maps back as
``C = exp(a - logsumexp_i(gamma_i / k))``; ``E`` is derived from ``loss_ref``, the
loss at the uniform mixture. ``h_i = 0`` is an ordinary point.

Parameters (k + 2, all identified): loss_ref (gives E), a, gamma (k).
``natural`` returns ``E, C, gamma (k)``.
"""

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from bayesmix.lawkit import amplitude_and_slopes, with_irreducible_loss

NAME = "ye_m2"
EQUATION = "L = E + C sum_i exp(gamma_i h_i)"
REFERENCE = "Ye et al. 2024; Shukor et al. 2025, appendix B.1 (Ye M2)"
USES = ("h",)


def _log_c(params, k):
    return params["a"] - logsumexp(params["gamma"] / k)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    k = h.shape[-1]
    return params["E"] + jnp.exp(_log_c(params, k) + logsumexp(params["gamma"] * h, axis=-1))


def sample_params(k, loss_scale):
    """Priors: the reducible term ~ a tenth of the loss at the uniform mixture."""
    params = amplitude_and_slopes(k, loss_scale)
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's ``E, C, gamma_i`` from the centred parameters."""
    return {"E": params["E"], "C": jnp.exp(_log_c(params, k)), "gamma": params["gamma"]}
