"""Ye et al. 2024, law M3 (Shukor et al. 2025, appendix B.1, "Ye M3"; checked against the text).

    L(h) = E + C exp(prod_i gamma_i h_i)

For runs at one ``N`` and ``D``. The paper reports trouble fitting it (its Table 13
errors for M3 are an order of magnitude above the other laws'), and that Ye et al.
also found it underperforms.

What the runs can see: the ``gamma_i`` enter only through their product, so of the
published ``k + 2`` parameters three are identified: ``E``, ``C`` and
``p = prod_i gamma_i / k^k``, the exponent at the uniform mixture. With
``prod_i gamma_i h_i = p * prod_i (k h_i)`` and ``0 <= prod_i (k h_i) <= 1`` on the
simplex (the AM-GM inequality; 1 only at the uniform mixture, 0 as soon as one
``h_i = 0``), the centred form is::

    L = E + exp(a + p * (prod_i (k h_i) - 1))

``exp(a)`` is the reducible term at the uniform mixture, and ``log`` of the term
moves by at most ``|p|`` over the whole simplex, which sets the prior scale of ``p``
(``Normal(0, 3)``, as for the other Ye laws' exponents). It maps back as
``C = exp(a - p)`` and ``prod_i gamma_i = p k^k``; ``natural`` returns the equal
``|gamma_i| = k |p|^(1/k)``, the first carrying the sign of ``p`` (any ``gamma``
with that product is the same law). Every run with a zero weight has the loss
``E + C``: on sweeps such as RegMix the law cannot tell those runs apart.

Parameters (3, all identified): loss_ref (gives E), a, p.
``natural`` returns ``E, C, gamma (k)``.
"""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayesmix.lawkit import amplitude, with_irreducible_loss

NAME = "ye_m3"
EQUATION = "L = E + C exp(prod_i gamma_i h_i)"
REFERENCE = "Ye et al. 2024; Shukor et al. 2025, appendix B.1 (Ye M3)"
USES = ("h",)


def mean(params, log_n, log_d, h):
    """Predicted loss; ``h`` shape ``(n, k)``; ``log_n``, ``log_d`` unused."""
    k = h.shape[-1]
    product = jnp.prod(k * h, axis=-1)
    return params["E"] + jnp.exp(params["a"] + params["p"] * (product - 1.0))


def sample_params(k, loss_scale):
    """Priors: the reducible term ~ a tenth of the loss at the uniform mixture."""
    params = {
        "a": amplitude("a", 0.1 * loss_scale),
        "p": numpyro.sample("p", dist.Normal(0.0, 3.0)),
    }
    return with_irreducible_loss(params, mean, k, loss_scale)


def natural(params, n_ref, d_ref, k):
    """The paper's ``E, C, gamma_i`` (one choice of ``gamma`` with the fitted product)."""
    p = jnp.asarray(params["p"])
    size = k * jnp.abs(p) ** (1.0 / k)
    sign = jnp.where(jnp.arange(k) == 0, jnp.where(p < 0, -1.0, 1.0), 1.0)
    return {"E": params["E"], "C": jnp.exp(params["a"] - p), "gamma": sign * size}
