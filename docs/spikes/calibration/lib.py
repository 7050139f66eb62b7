"""Spike helpers: Laplace posteriors, fold definitions, saved predictions."""
from __future__ import annotations
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from _paper import start_jax, load_paper_runs, TRAIN_WHERE, EVAL_WHERE, TARGETS, DOMAINS  # noqa
jax = start_jax(2)
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import constrain_fn
import numpyro
from bayesmix.fit import find_start, _inputs, _model, _start_design_effect
from bayesmix.model import TargetPosterior
from bayesmix.predict import predict_draws

SIZE_WHERE = {310e6: "(N == 310e6 and D >= 3.99e9)", 680e6: "(N == 680e6 and D >= 7e9)",
              937e6: "(N == 937e6 and D >= 7e9)", 1235e6: "(N == 1235e6 and D >= 13e9)",
              2718e6: "(N == 2718e6 and D >= 20e9)"}
SETS = {"S2": (310e6, 680e6), "S3": (310e6, 680e6, 937e6), "S4": (310e6, 680e6, 937e6, 1235e6)}
ALL_SIZES = (310e6, 680e6, 937e6, 1235e6, 2718e6)


def where(sizes):
    return " or ".join(SIZE_WHERE[s] for s in sizes)


def laplace_posterior(key, law, table, target, n_draws=400, n_starts=int(os.environ.get("NSTARTS", 20))):
    """MAP (best of n_starts L-BFGS) + Laplace (covariance x design effect) draws."""
    inputs = _inputs(law, table, target)
    loss = jnp.asarray(inputs.data.loss)
    k1, k2 = jax.random.split(key)
    start = find_start(k1, law, inputs.k, inputs.scales, inputs.log_n, inputs.log_d,
                       inputs.h, loss, "log", n_starts=n_starts)
    deff = _start_design_effect(inputs, start, "log")
    flat, unravel = ravel_pytree({k: jnp.asarray(v) for k, v in start.unconstrained.items()})
    cov = start.covariance * deff
    z = np.random.default_rng(int(jax.random.randint(k2, (), 0, 2**31 - 1))).multivariate_normal(
        np.asarray(flat), cov, size=n_draws, method="eigh")
    model = _model(law, inputs.k, inputs.scales, "log", weight=1.0 / deff)
    args = (inputs.log_n, inputs.log_d, inputs.h, loss)

    def con(x):
        return constrain_fn(model, args, {}, unravel(x), return_deterministic=True)
    with numpyro.validation_enabled(False):
        draws = jax.jit(jax.vmap(con))(jnp.asarray(z))
    names = [n for n in draws if n not in ("mu", "sigma", "nu")]
    from bayesmix.fit import _param_names
    pnames = _param_names(law, inputs.k, inputs.scales.loss_scale)
    post = TargetPosterior(law=law, target=target, domains=tuple(table.domains),
                           scales=inputs.scales,
                           params={n: np.asarray(draws[n], float) for n in pnames},
                           noise={"sigma": np.asarray(draws["sigma"], float),
                                  "nu": np.asarray(draws["nu"], float)}, likelihood="log")
    mode = TargetPosterior(law=law, target=target, domains=tuple(table.domains),
                           scales=inputs.scales,
                           params={n: np.asarray(start.constrained[n], float)[None] for n in pnames},
                           noise=None)
    return post, mode, deff, start
