"""Ye et al. 2024 baseline M1 (Shukor et al. 2025, appendix B.1, form as read here).

    L = c + k exp(sum_j t_j h_j)

Ye et al.'s data mixing law (their eq. 1): one exponential of a linear function of the
weights. For runs at one ``N`` and ``D``. The appendix's exact list of Ye et al.
variants could not be checked in this workplace; M1 is Ye et al.'s published law, M2-M4
are the variants as read here.

Centred form (``E = c`` is derived from the loss at the uniform mixture)::

    L = E + exp(a + sum_j t_j (h_j - 1/k))

Parameters (k + 2): loss_ref (gives E = c), a, t (k).
"""

import jax.numpy as jnp

from bayesmix.lawkit import amplitude, irreducible_loss, slopes, uniform_weights

NAME = "ye_m1"
EQUATION = "L = c + k exp(sum_j t_j h_j)"
REFERENCE = "Ye et al. 2024; Shukor et al. 2025, appendix B.1"
USES = ("h",)


def _centred_linear(t, h):
    return jnp.sum(t * (h - 1.0 / h.shape[-1]), axis=-1)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    reducible = jnp.exp(params["a"] + _centred_linear(params["t"], h))
    return params["E"] + reducible


def sample_params(k, loss_scale):
    """Priors: the reducible part ~ a tenth of the loss at the uniform mixture."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale),
        "t": slopes("t", k),
    }
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)[None, :])[0]
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
