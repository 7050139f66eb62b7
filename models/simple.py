"""Simple law (Shukor et al. 2025, eq. 9, as read here).

    L(N, D, h) = E + 1 / (sum_i C_i h_i)^gamma + A / N^alpha + B / D^beta

The additive law with one shared mixture exponent (``k + 5`` parameters instead of
``2k + 5``). The paper's text of eq. 9 could not be checked in this workplace; this
is the nested "simpler than additive" form its Table 4 ranks below the additive law.

Centred form: ``(sum_i C_i h_i)^gamma = exp(c + gamma * log(sum_i w_i k h_i))`` with
``w = softmax(u)``; the logits are sampled as ``g = gamma u / k``, which the runs pin
(``lawkit.mixing_power``), and one common shift of ``g`` is unseen, held by its prior.

Parameters (k + 6 sampled, k + 5 identified): loss_ref (gives E), a, alpha, b, beta,
c, gamma, g (k) (gives u).
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    irreducible_loss,
    log_mixed_power,
    mixing_power,
    uniform_weights,
)

NAME = "simple"
EQUATION = "L = E + 1/(sum_i C_i h_i)^gamma + A/N^alpha + B/D^beta"
REFERENCE = "Shukor et al. 2025, eq. 9 (form as read here)"
USES = ("N", "D", "h")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` shape ``(n, k)``."""
    mixture = jnp.exp(params["c"] + log_mixed_power(params["u"], params["gamma"], h))
    n_term = jnp.exp(params["a"] - params["alpha"] * log_n)
    d_term = jnp.exp(params["b"] - params["beta"] * log_d)
    return params["E"] + 1.0 / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale),
        "alpha": exponent("alpha"),
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
        "c": amplitude("c", 1.0 / (0.1 * loss_scale)),
    }
    params["gamma"], params["u"] = mixing_power("", k, typical=0.3)
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)[None, :])[0]
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
