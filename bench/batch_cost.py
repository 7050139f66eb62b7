"""What one program for all targets would cost on this CPU (issue 17, bar 2).

Bar 2 asks ``--all-targets`` (8 targets) for at most twice one target's time, by running
the targets' chains in one vmapped program. Two things set what that can give on a CPU,
and this script measures both:

(1) **A gradient of a batch.** ``value_and_grad`` of the law's potential on the paper
    split (1534 rows), for B = 1, 4, 8, 32 members vmapped (different points and, for
    B = 8 and 32, the 8 targets' losses), 500 times inside one ``lax.scan`` (no
    dispatch, as inside NUTS), float32 as the fit samples, each member at its target's
    posterior mode moved by a draw of the Laplace approximation. Printed: microseconds
    a member's gradient, and a batch's gradient against B single un-vmapped ones (a
    vmap of one member is printed too: XLA runs it several times slower).
(2) **Lockstep.** A vmapped NUTS iteration lasts as long as the longest trajectory in its
    batch. From a saved ``bayesmix fit --all-targets`` (``--fit DIR``), every kept draw's
    leapfrog steps per chain and target: the sum over draws of the batch's largest
    against the sum of all members' steps, for the 4 chains of one target and for the
    32 chains of the 8 targets.

A vmapped all-targets program costs about (1)'s ratio at B = 32 times (2)'s factor of the
time of the 32 chains one after the other; bar 2 needs that product at most 2 / 8 of
the sequential time (8 targets at once in twice one target's time).

Usage::

    python bench/batch_cost.py [--law additive] [--fit DIR]

Reads ``../shared/data/dmsl_slimpajama``; exits 0 with a message when it is absent.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _paper import TARGETS, TRAIN_WHERE, data_present, load_paper_runs

REPEATS = 500
BATCHES = (1, 4, 8, 32)


def gradient_costs(law_name: str) -> dict[int, float]:
    """Microseconds a member's gradient, per batch size (best of three runs)."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy

    from bayesmix.laws import load_law
    from bayesmix.model import bound_model, model_args, target_inputs
    from bayesmix.start import find_start

    law = load_law(law_name)
    table = load_paper_runs(TRAIN_WHERE)
    inputs = [target_inputs(law, table, t) for t in TARGETS]
    n = min(len(i.data.loss) for i in inputs)  # a few targets miss a few losses: every
    # member gets the same rows
    args = [tuple(jnp.asarray(a)[:n] if np.ndim(a) and np.shape(a)[0] == len(i.data.loss)
                  else jnp.asarray(a) for a in model_args(i, 1.0, dtype="float32"))
            for i in inputs]
    model = bound_model(law, inputs[0].k)
    # each member at its target's posterior mode, moved by a draw of the Laplace
    # approximation there: where the sampler's gradients are taken
    rng = np.random.default_rng(0)
    modes = []
    for t, i in enumerate(inputs):
        found = find_start(jax.random.key(t), law, i.k, i.scales, i.log_n, i.log_d, i.h,
                           jnp.asarray(i.data.loss))
        mode, unravel = ravel_pytree({s: jnp.asarray(v) for s, v in
                                      found.unconstrained.items()})
        modes.append((np.asarray(mode), 0.5 * (found.covariance + found.covariance.T)))
    points = [jnp.asarray(mode + rng.multivariate_normal(np.zeros(mode.size), covariance,
                                                         check_valid="ignore"), jnp.float32)
              for mode, covariance in (modes[b % len(modes)] for b in range(max(BATCHES)))]

    def grad(x: jax.Array, a: tuple) -> jax.Array:
        return jax.grad(lambda y: potential_energy(model, a, {}, unravel(y)))(x)

    def timed(step: Callable, x0: jax.Array, a: tuple) -> float:
        """Seconds of REPEATS steps in one scan, best of three."""
        def many(x: jax.Array, a: tuple) -> jax.Array:
            def body(c: jax.Array, _: None) -> tuple[jax.Array, None]:
                return c - 1e-9 * step(c, a), None
            return jax.lax.scan(body, x, None, length=REPEATS)[0]

        program = jax.jit(many)
        program(x0, a).block_until_ready()
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            program(x0, a).block_until_ready()
            best = min(best, time.perf_counter() - t)
        return best

    costs = {0: timed(grad, points[0], args[0]) / REPEATS * 1e6}  # 0: one, no vmap
    for size in BATCHES:
        batch = jax.tree.map(lambda *leaves: jnp.stack(leaves),
                             *[args[b % len(args)] for b in range(size)])
        costs[size] = timed(jax.vmap(grad), jnp.stack(points[:size]),
                            batch) / REPEATS / size * 1e6
    return costs


def lockstep(fit_dir: Path) -> dict[str, float]:
    """Largest-in-batch over summed leapfrog steps of the kept draws, per batching."""
    from bayesmix import load_fit

    steps = {t: np.asarray(tf.idata.sample_stats["n_steps"].values, float)
             for t, tf in load_fit(fit_dir).targets.items()}  # (chains, draws) each
    draws = min(s.shape[1] for s in steps.values())
    every = np.stack([s[:, :draws] for s in steps.values()])  # (targets, chains, draws)

    def factor(batches: np.ndarray) -> float:  # (batches, members, draws)
        return float(np.sum(batches.max(axis=1)) * batches.shape[1] / batches.sum())

    return {"one target's chains": factor(every),
            f"all {len(steps)} targets' chains": factor(every.reshape(1, -1, draws))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--law", default="additive")
    parser.add_argument("--fit", default=None,
                        help="a saved `bayesmix fit --all-targets` directory for (2)")
    args = parser.parse_args()
    if not data_present():
        print("../shared/data/dmsl_slimpajama is absent: nothing to measure")
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    print(f"commit {commit}, law {args.law}, {time.strftime('%Y-%m-%d %H:%M')}")
    costs = gradient_costs(args.law)
    print("     batch  us a member's gradient  a batch's gradient / B single ones")
    for size, cost in costs.items():
        label = "1, no vmap" if size == 0 else str(size)
        print(f"{label:>10}  {cost:25.1f}  {cost / costs[0]:34.2f}")
    if args.fit:
        factors = lockstep(Path(args.fit))
        for label, factor in factors.items():
            print(f"lockstep, {label}: {factor:.2f}x the members' summed steps")
        print(f"vmapped all targets / sequential, predicted: "
              f"{costs[32] / costs[0] * list(factors.values())[-1]:.2f}"
              f" (bar 2 needs <= {2 / len(TARGETS):.2f})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
