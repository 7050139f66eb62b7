"""BiMix (Ge et al. 2024; Shukor et al. 2025, appendix B.2, "Ge 24"; checked against the text).

    L_i(h, D) = (B / D^beta + E) * C / h_i^gamma

The loss on domain ``i`` depends only on that domain's own weight ``h_i``, so the
target must be a training domain; bayesmix passes this law only the target's weight
(``DOMAINS = "target"``, so ``h`` has shape ``(n, 1)``).

Centred form: ``C`` multiplies both ``B`` and ``E``, so only ``C E`` and ``B / E``
are identified (four of the five published parameters)::

    L = exp(a - alpha * log h_i) * (1 + exp(b - beta * log(D / D_ref)))

with ``alpha = gamma`` (the site keeps the name it had before this file was checked
against the paper), ``exp(a) = C E`` (the loss at ``h_i = 1`` and ``D -> inf``) and
``exp(b) = B / (E D_ref^beta)``. ``natural`` returns the published parameters with
``C = 1``: ``E = exp(a)``, ``B = exp(a + b) D_ref^beta``.

Zero weights: the published law gives an infinite loss at ``h_i = 0`` (for
``gamma > 0``), and so does this file; runs where the target's own weight is 0
cannot be fitted by this law (the only built-in law with that limit).

Parameters (4, all identified): a, alpha (the paper's gamma), b, beta.
"""

import jax.numpy as jnp

from bayesmix.lawkit import amplitude, exponent

NAME = "bimix"
EQUATION = "L_i = (B/D^beta + E) * C/h_i^gamma"
REFERENCE = "Ge et al. 2024 (BiMix); Shukor et al. 2025, appendix B.2 (Ge 24)"
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


def natural(params, n_ref, d_ref, k):
    """The paper's ``B, beta, E, C, gamma`` with ``C = 1`` (only ``C E``, ``C B`` are seen)."""
    return {
        "B": jnp.exp(params["a"] + params["b"] + params["beta"] * jnp.log(d_ref)),
        "beta": params["beta"],
        "E": jnp.exp(params["a"]),
        "C": jnp.ones_like(params["a"]),
        "gamma": params["alpha"],
    }
