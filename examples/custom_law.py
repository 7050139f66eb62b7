"""Write your own law as a file, fit it with NUTS, and compare it with a built-in law.

A law file defines ``NAME``, ``EQUATION``, ``USES``, ``mean(params, log_n, log_d, h)``
and ``sample_params(k, loss_scale)`` (priors, as NumPyro sites), built from
``bayesmix.lawkit`` so that the reference point and the irreducible loss are handled
the way the built-in laws handle them. This one is the additive law (eq. 4) with one
exponent shared by every domain, ``L = E + 1 / sum_i C_i h_i^gamma + A/N^alpha +
B/D^beta``: ``k - 1`` fewer parameters. Fitted beside the additive law on runs
simulated from the additive law, PSIS-LOO says whether the saving costs fit.

Run ``python examples/custom_law.py`` (``--tiny`` for a short smoke run; ``--out DIR``
keeps the law file). The same file works on the command line:
``bayesmix fit runs.csv --law DIR/shared_gamma.py --all-targets --out fit/``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

LAW_FILE = '''"""Additive law with one mixture exponent shared by all domains."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayesmix.lawkit import (
    amplitude, exponent, mixing_logits, mixture_term, power_priors, power_term,
    with_irreducible_loss,
)

NAME = "shared_gamma"
EQUATION = "L = E + 1/sum_i C_i h_i^gamma + A/N^alpha + B/D^beta"
USES = ("N", "D", "h")


def mean(params, log_n, log_d, h):
    k = h.shape[-1]
    gamma = jnp.full((k,), params["gamma"])
    mixture = mixture_term(params["u"], gamma, h)
    return (params["E"] + jnp.exp(params["m"]) / mixture
            + power_term(params["a"], params["alpha"], log_n)
            + power_term(params["b"], params["beta"], log_d))


def sample_params(k, loss_scale):
    params = {**power_priors(loss_scale),
              "m": amplitude("m", 0.1 * loss_scale),
              "u": mixing_logits("u", k),
              "gamma": exponent("gamma")}
    return with_irreducible_loss(params, mean, k, loss_scale, run_axis=False)
'''


def main(tiny: bool = False, out: str | None = None) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)  # program start: float64 for the fit

    from bayesmix import fit, load_law, simulate_runs
    from bayesmix.compare import compare

    directory = Path(out) if out else Path(tempfile.mkdtemp(prefix="bayesmix-law-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "shared_gamma.py"
    path.write_text(LAW_FILE)
    custom = load_law(path)  # checks the file: a missing NAME or mean is a one-line error
    print(f"loaded {custom.name}: {custom.equation} ({custom.n_params(3)} parameters "
          f"for 3 domains)")

    key_sim, key_fit = jax.random.split(jax.random.key(0))
    domains = ("web", "code", "books")
    table, _ = simulate_runs(key_sim, load_law("additive"), len(domains),
                             domain_names=domains, n_mixtures=6 if tiny else 10)
    settings = dict(chains=2, warmup=100, draws=100) if tiny else {}
    fits = {law.name: fit(key_fit, law, table, ["web"], **settings)
            for law in (custom, load_law("additive"))}
    comparison = compare(jax.random.key(1), fits)
    print(comparison.table())
    return {"law_file": str(path), "preferred": comparison.preferred("web"),
            "loo": {s.label: s.elpd for s in comparison.loo}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=None, help="keep the law file in this directory")
    arguments = parser.parse_args()
    main(arguments.tiny, arguments.out)
