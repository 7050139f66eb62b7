"""Additive law at fixed model size and token count (Shukor et al. 2025, appendix B.1).

Checked against the text ("Additive, fixed (N, D)"):

    L(h) = E + 1 / sum_i C_i h_i^gamma_i

For sweeps where every run has the same ``N`` and ``D`` (e.g. RegMix). Centred
form: ``1 / sum_i C_i h_i^gamma_i = exp(m) / sum_i w_i (k h_i)^gamma_i`` with
shares ``w = softmax(u)`` (``exp(m)`` is the term at the uniform mixture, ``C_i =
exp(-m) w_i k^gamma_i``; the exponents are sampled through the elasticities
``log_e = log(w gamma)``, see ``lawkit.shares_and_exponents``).

Parameters (1 + 2k sampled, all identified): m, sticks (k - 1) (give the shares,
u = log w), log_e (k) (gives gamma), loss_ref (gives E).
``natural`` returns ``E, C (k), gamma (k)``.
"""

import jax.numpy as jnp

from bayesmix.lawkit import (
    mixture_natural,
    mixture_priors,
    mixture_term,
    with_irreducible_loss,
)

NAME = "additive_fixed_nd"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma_i"
REFERENCE = "Shukor et al. 2025, appendix B.1"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    mixture = mixture_term(params["u"], params["gamma"], h)
    return params["E"] + jnp.exp(params["m"]) / mixture


def sample_params(k, loss_scale):
    """Priors: the mixture term ~ a tenth of the loss at the uniform mixture."""
    return with_irreducible_loss(mixture_priors(k, loss_scale), mean, k, loss_scale, run_axis=False)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters ("Additive, fixed (N, D)") from the centred ones."""
    return {
        "E": params["E"],
        **mixture_natural(params, k),
    }
