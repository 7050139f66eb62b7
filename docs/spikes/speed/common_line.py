"""The potential along every ``log_e`` moved together (docs/speed.md, ninth study).

Loads a fit saved by ``bayesmix fit`` (its model as the sampler bound it:
``saved_fit.py``), puts every sampled site at its posterior mean and moves each
domain's ``log_e`` by ``t`` of its own posterior sd; prints the potential's rise.

Usage::

    python docs/spikes/speed/common_line.py FIT_DIR TARGET
"""
from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from numpyro.infer.util import potential_energy
from saved_fit import saved_model


def main() -> int:
    tf, model, args, sites = saved_model(sys.argv[1], sys.argv[2])
    post = tf.idata.posterior
    draws = {n: post[n].values.reshape(-1, *post[n].values.shape[2:]) for n in sites}
    mean = {n: jnp.asarray(v.mean(0)) for n, v in draws.items()}
    sd = jnp.asarray(draws["log_e"].std(0))
    potential = jax.jit(lambda p: potential_energy(model, args, {}, p))
    base = float(potential(mean))
    print("log_e sd", [round(float(s), 2) for s in sd])
    for t in (1, 2, 3, 4, 5):
        moved = {**mean, "log_e": mean["log_e"] + t * sd}
        print(f"t = {t}: potential + {float(potential(moved)) - base:.2f} nats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
