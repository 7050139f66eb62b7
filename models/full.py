"""Full law (Shukor et al. 2025, eqs. 10-11, as read here).

    L(N, D, h) = E + 1 / sum_i C_i h_i^gamma_i + A^h / N^alpha^h + B^h / D^beta^h
    A^h = (sum_i C^A_i h_i)^gamma^A,   B^h = (sum_i C^B_i h_i)^gamma^B,
    alpha^h = sum_i alpha_i h_i,       beta^h = sum_i beta_i h_i

The joint law whose exponents also depend on the mixture. The paper's text of eqs.
10-11 could not be checked in this workplace; this is the nested "richer than joint"
form its Table 4 ranks above the joint law.

Centred form as in ``joint.py``. With exponents that depend on ``h``, the unit of
``N`` and ``D`` is part of the law (changing it multiplies ``A^h`` by an
``h``-dependent factor), so here ``N`` and ``D`` are measured in units of ``N_ref``
and ``D_ref``, the geometric means of the training runs.

Parameters (6k + 6 sampled, 6k + 3 identified): loss_ref (gives E), a, alpha (k),
gamma_A, g_A (k) (gives u_A), b, beta (k), gamma_B, g_B (k) (gives u_B), m, u (k),
log_e (k) (gives gamma).
"""

import jax
import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    irreducible_loss,
    log_mixed_power,
    mixing_power,
    power_of_weights,
    shares_and_exponents,
    uniform_weights,
)

NAME = "full"
EQUATION = (
    "L = E + 1/sum_i C_i h_i^gamma_i + A^h/N^(sum_i alpha_i h_i) + B^h/D^(sum_i beta_i h_i), "
    "A^h = (sum_i CA_i h_i)^gammaA, B^h = (sum_i CB_i h_i)^gammaB"
)
REFERENCE = "Shukor et al. 2025, eqs. 10-11 (form as read here)"
USES = ("N", "D", "h")



def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    shares = jax.nn.softmax(params["u"])
    mixture = jnp.sum(shares * power_of_weights(h, params["gamma"]), axis=-1)
    alpha_h = jnp.sum(params["alpha"] * h, axis=-1)
    beta_h = jnp.sum(params["beta"] * h, axis=-1)
    n_term = jnp.exp(
        params["a"] + log_mixed_power(params["u_A"], params["gamma_A"], h) - alpha_h * log_n
    )
    d_term = jnp.exp(
        params["b"] + log_mixed_power(params["u_B"], params["gamma_B"], h) - beta_h * log_d
    )
    return params["E"] + jnp.exp(params["m"]) / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale),
        "alpha": exponent("alpha", shape=(k,)),
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta", shape=(k,)),
        "m": amplitude("m", 0.1 * loss_scale),
    }
    params["gamma_A"], params["u_A"] = mixing_power("_A", k)
    params["gamma_B"], params["u_B"] = mixing_power("_B", k)
    params["u"], params["gamma"] = shares_and_exponents(k)
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)[None, :])[0]
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
