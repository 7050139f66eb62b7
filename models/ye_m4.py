"""Ye et al. 2024, law M4 (Shukor et al. 2025, appendix B.1, "Ye M4"; checked against the text).

    L(h) = E + C exp(sum_i gamma_i h_i)

Ye et al.'s data mixing law: one exponential of a linear function of the weights.
For runs at one ``N`` and ``D``.

Centred form (see ``bayesmix.lawkit``)::

    L = E + exp(a + sum_i gamma_i (h_i - 1/k))

so ``exp(a)`` is the reducible term at the uniform mixture and maps back as
``C = exp(a - sum_i gamma_i / k)``; ``E`` is derived from ``loss_ref``. On the simplex
a common shift of ``gamma`` is absorbed by ``C``: the runs do not see it and its prior
holds it (``k + 1`` identified). ``h_i = 0`` is an ordinary point.

Parameters (k + 2 sampled, k + 1 identified): loss_ref (gives E), a, gamma (k).
``natural`` returns ``E, C, gamma (k)``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import amplitude_and_slopes, centred_linear, with_irreducible_loss

NAME = "ye_m4"
EQUATION = "L = E + C exp(sum_i gamma_i h_i)"
REFERENCE = "Ye et al. 2024; Shukor et al. 2025, appendix B.1 (Ye M4)"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    return params["E"] + jnp.exp(params["a"] + centred_linear(params["gamma"], h))


def sample_params(k, loss_scale):
    """Priors: the reducible term ~ a tenth of the loss at the uniform mixture."""
    params = amplitude_and_slopes(k, loss_scale)
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's ``E, C, gamma_i`` from the centred parameters."""
    gamma = params["gamma"]
    return {"E": params["E"], "C": jnp.exp(params["a"] - jnp.sum(gamma) / k), "gamma": gamma}
