"""Joint law (Shukor et al. 2025, eq. 5).

    L(N, D, h) = E + 1 / sum_i C_i h_i^gamma_i + A^h / N^alpha + B^h / D^beta
    A^h = (sum_i C^A_i h_i)^gamma^A,   B^h = (sum_i C^B_i h_i)^gamma^B

Centred form (see ``bayesmix.lawkit``): ``A^h / N^alpha =
exp(a + gamma_A * log(sum_i w^A_i k h_i) - alpha * log(N / N_ref))`` with
``w^A = softmax(u^A)``, so ``exp(a)`` is the size of the term at the reference point
and ``C^A_i = k w^A_i * exp(a / gamma_A) * N_ref^(alpha / gamma_A)``. The softmax has
one direction the data cannot see (a common shift of ``u^A``); its ``Normal(0, 1)``
prior holds it. Likewise for ``B^h``.

Parameters (4k + 7 sampled, 4k + 5 identified): loss_ref (gives E), a, alpha,
gamma_A, u_A (k), b, beta, gamma_B, u_B (k), c (k), gamma (k).
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    amplitude,
    exponent,
    irreducible_loss,
    log_mixed_power,
    mixing_logits,
    power_of_weights,
    uniform_weights,
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
    mixture = jnp.sum(jnp.exp(params["c"]) * power_of_weights(h, params["gamma"]), axis=-1)
    n_term = jnp.exp(
        params["a"] + log_mixed_power(params["u_A"], params["gamma_A"], h)
        - params["alpha"] * log_n
    )
    d_term = jnp.exp(
        params["b"] + log_mixed_power(params["u_B"], params["gamma_B"], h)
        - params["beta"] * log_d
    )
    return params["E"] + 1.0 / mixture + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: every reducible term ~ a tenth of the loss at the reference point."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale),
        "alpha": exponent("alpha"),
        "gamma_A": exponent("gamma_A", typical=1.0),
        "u_A": mixing_logits("u_A", k),
        "b": amplitude("b", 0.1 * loss_scale),
        "beta": exponent("beta"),
        "gamma_B": exponent("gamma_B", typical=1.0),
        "u_B": mixing_logits("u_B", k),
        "c": amplitude("c", 1.0 / (0.1 * loss_scale * k), (k,)),
        "gamma": exponent("gamma", shape=(k,)),
    }
    reducible = mean({**params, "E": 0.0}, 0.0, 0.0, uniform_weights(k)[None, :])[0]
    params["E"] = irreducible_loss(reducible, loss_scale)
    return params
