"""Chinchilla law (Hoffmann et al. 2022; Shukor et al. 2025, eq. 2; checked against the text).

    L(N, D) = E + A / N^alpha + B / D^beta

The mixture ``h`` is ignored. Centred form (see ``bayesmix.lawkit``):
``A / N^alpha = exp(a - alpha * log(N / N_ref))`` and likewise for ``B``, so
``A = exp(a) * N_ref^alpha`` and ``B = exp(b) * D_ref^beta``. ``E`` is derived from
the loss at the reference point, ``loss_ref``.

Parameters (5, all identified): a, alpha, b, beta, loss_ref (gives E).
``natural`` returns ``E, A, alpha, B, beta``.
"""

from bayesmix.lawkit import (
    power_priors,
    power_term,
    power_terms_natural,
    with_irreducible_loss,
)

NAME = "chinchilla"
EQUATION = "L = E + A/N^alpha + B/D^beta"
REFERENCE = "Hoffmann et al. 2022; Shukor et al. 2025, eq. 2"
USES = ("N", "D")


def mean(params, log_n, log_d, h):
    """Predicted loss; ``log_n``, ``log_d`` shape ``(n,)``, ``h`` unused."""
    n_term = power_term(params["a"], params["alpha"], log_n)
    d_term = power_term(params["b"], params["beta"], log_d)
    return params["E"] + n_term + d_term


def sample_params(k, loss_scale):
    """Priors: each power term ~ a tenth of the loss at the reference point."""
    return with_irreducible_loss(power_priors(loss_scale), mean, k, loss_scale, run_axis=False)


def natural(params, n_ref, d_ref, k):
    """The paper's parameters ``E, A, alpha, B, beta`` from the centred ones."""
    return {
        "E": params["E"],
        **power_terms_natural(params, n_ref, d_ref),
    }
