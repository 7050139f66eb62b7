"""Spike (issue 17, fourth study): the shared metric and the common step size.

Runs ``log_gamma.py`` (``bayesmix fit`` on the paper split, the shipped law) with two
switches, and prints every chain's adapted step size before the common one is taken:

- ``STEP_POLICY=min`` (shipped) or ``geo``: every chain samples with the smallest
  adapted step size (floored at half the median), or with their geometric mean;
- ``OLD_METRIC=1``: the shared metric is NumPyro's regularised estimate averaged over
  chains (shipped) instead of ``draws_metric``'s;
- ``SAVE_METRIC=FILE``: pickle both metrics (``adapted``, ``ours``) for
  ``whitened_spectrum.py``.

"Smallest" is the shipped rule: the smallest chain's step, floored at half the median.

``draws_metric`` exists only with ``draws_metric.patch`` applied (``git apply
docs/spikes/speed/draws_metric.patch`` at ``c8e1c35``). Usage::

    [STEP_POLICY=geo] [OLD_METRIC=1] [SAVE_METRIC=FILE]
        python docs/spikes/speed/step_policy.py OUT TARGET [--law joint]
"""
import os
import pickle
import runpy
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import bayesmix.sampling as smp

shipped = smp.smallest_step_size
policy = os.environ.get("STEP_POLICY", "min")


def common_step_size(state):
    step = state.adapt_state.step_size
    print("per-chain step sizes", np.asarray(step), file=sys.stderr)
    if policy == "min":
        return shipped(state)
    common = jnp.exp(jnp.mean(jnp.log(step)))
    return state._replace(adapt_state=state.adapt_state._replace(
        step_size=jnp.full_like(step, common)))


smp.smallest_step_size = common_step_size
metric = smp.draws_metric


def shared_metric(z, adapted):
    if os.environ.get("OLD_METRIC"):
        return adapted
    ours = metric(z, adapted)
    if os.environ.get("SAVE_METRIC"):
        with open(os.environ["SAVE_METRIC"], "wb") as f:
            pickle.dump({name: {k: np.asarray(v) for k, v in m.items()}
                         for name, m in (("adapted", adapted), ("ours", ours))}, f)
    return ours


smp.draws_metric = shared_metric
runpy.run_path(str(Path(__file__).with_name("log_gamma.py")), run_name="__main__")
