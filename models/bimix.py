"""BiMix (Ge et al. 2024; Shukor et al. 2025, appendix B.2).

    L_i(D, h) = A_i / h_i^alpha_i * (B_i / D^beta_i + C_i)

The loss on domain ``i`` depends only on that domain's own weight ``h_i``, so the
target must be a training domain; bayesmix passes this law only the target's weight
(``DOMAINS = "target"``, so ``h`` has shape ``(n, 1)``). ``h_i = 0`` gives an infinite
loss. ``A_i`` and ``C_i`` enter only as their product, so the centred form is

    L = exp(a - alpha * log h) * (1 + exp(b - beta * log(D / D_ref)))

with ``exp(a) = A_i C_i`` and ``exp(b) = B_i / (C_i D_ref^beta)``.

Parameters (4): a, alpha, b, beta.
"""

import jax.numpy as jnp

from bayesmix.lawkit import amplitude, exponent

NAME = "bimix"
EQUATION = "L_i = A_i/h_i^alpha_i * (B_i/D^beta_i + C_i)"
REFERENCE = "Ge et al. 2024 (BiMix); Shukor et al. 2025, appendix B.2"
USES = ("D", "h")
DOMAINS = "target"


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_d`` shape ``(n,)``, ``h`` shape ``(n, 1)`` (the target's weight)."""
    own = h[..., 0]
    mixture_factor = jnp.exp(params["a"] - params["alpha"] * jnp.log(own))
    return mixture_factor * (1.0 + jnp.exp(params["b"] - params["beta"] * log_d))


def sample_params(k, loss_scale):
    """Priors: the loss at ``h_i = 1`` ~ the typical loss; the data term ~ a tenth of it."""
    return {
        "a": amplitude("a", 0.9 * loss_scale),
        "alpha": exponent("alpha", typical=0.1),
        "b": amplitude("b", 0.1),
        "beta": exponent("beta"),
    }
