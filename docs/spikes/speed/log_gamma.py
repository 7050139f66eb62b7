"""Spike (issue 17, fourth study): sample a weak domain's exponent as ``log gamma``.

The shipped additive law samples every domain's elasticity ``log_e = log(w gamma)``
(``bayesmix.lawkit.shares_and_exponents``). For the domains named by ``--weak`` this
spike samples ``log gamma`` instead (the same prior: ``log_e``'s conditional prior
shifted by ``-log w``, a unit Jacobian), everything else as ``bayesmix fit`` does
(paper split, default settings), and prints the fit's sampler figures. Without
``--weak`` it is the shipped law (the control). The site keeps the name ``log_e``
(its meaning changes per domain; ``true_log_e`` is the elasticity); the stick order is
taken from the elasticities, as the shipped sampler does. Prints the posterior sd of
the sampled coordinate (``log gamma`` for a weak domain, ``log_e`` otherwise) and the
elasticities' mean. Run from the repository root, with ``../shared/data`` beside it.

Usage::

    python docs/spikes/speed/log_gamma.py OUT TARGET [--law additive] [--weak d1,d2]
        [--seed S] [-- FIT_OPTIONS]
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

import bayesmix.lawkit as lawkit
from bayesmix import load_fit
from bayesmix.cli import main as cli_main
from bayesmix.paper import CLI_COLUMNS, TRAIN_WHERE
from bayesmix.sticks import ShareSticks, log_shares, share_order

bfit = importlib.import_module("bayesmix.fit")
DATA = (Path(__file__).resolve().parents[4]
        / "shared/data/dmsl_slimpajama/dmsl_llm_slimpajama.csv")
STATE: dict = {"mask": None}
shipped_order = bfit.in_share_order


def shares_and_exponents(k: int, typical: float = 0.3):
    order = share_order(k)
    log_w = log_shares(numpyro.sample("sticks", ShareSticks(k, order)), order)
    mask = jnp.zeros(k) if STATE["mask"] is None else jnp.asarray(STATE["mask"], float)
    x = numpyro.sample("log_e", dist.Normal(jnp.log(typical) + (1 - mask) * log_w,
                                            lawkit._EXPONENT_SD).to_event(1))
    log_e = numpyro.deterministic("true_log_e", x + mask * log_w)
    return (numpyro.deterministic("u", log_w),
            numpyro.deterministic("gamma", jnp.exp(log_e - log_w)))


def in_share_order(start):
    """The shipped order, from the elasticities (not the sampled coordinates)."""
    true = {**start.constrained, "log_e": start.constrained["true_log_e"]}
    return shipped_order(dataclasses.replace(start, constrained=true))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("target")
    p.add_argument("--law", default="additive")
    p.add_argument("--weak", default="")
    p.add_argument("--seed", default="0")
    p.add_argument("extra", nargs="*", help="more `bayesmix fit` options, after --")
    args = p.parse_args()
    domains = list(dict.fromkeys(
        c.removeprefix("weight_") for c in open(DATA).readline().strip().split(",")
        if c.startswith("weight_")))
    names = [d for d in args.weak.split(",") if d]
    STATE["mask"] = np.array([d in names for d in domains], float) if names else None
    lawkit.shares_and_exponents = shares_and_exponents
    bfit.in_share_order = in_share_order
    rc = cli_main(["fit", str(DATA), *CLI_COLUMNS, "--law", args.law, "--target",
                   args.target, "--where", TRAIN_WHERE, "--out", args.out,
                   "--seed", args.seed, *args.extra])
    tf = next(iter(load_fit(args.out).targets.values()))
    d = tf.diagnostics
    step = tf.idata.sample_stats["step_size"].values
    print(f"weak={names} steps={d.mean_steps:.0f} step_size={np.mean(step):.4f} "
          f"bulk={d.min_ess_bulk:.0f} tail={d.min_ess_tail:.0f} "
          f"per1000={d.ess_per_1000_gradients:.2f} rhat={d.max_rhat:.3f}")
    post = tf.idata.posterior
    if "true_log_e" in post:
        x = post["log_e"].values.reshape(-1, len(tf.domains))
        e = post["true_log_e"].values.reshape(-1, len(tf.domains))
        print("sampled-coordinate sd", dict(zip(tf.domains, np.round(x.std(0), 2),
                                                strict=True)))
        print("elasticity log_e mean", dict(zip(tf.domains, np.round(e.mean(0), 2), strict=True)))
    jax.clear_caches()
    return rc


if __name__ == "__main__":
    sys.exit(main())
