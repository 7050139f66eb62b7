"""Count the programs a ``bayesmix`` command lowers, by the bayesmix line that asked.

Every ``jit`` (and every JAX operation run eagerly, which is a small jitted program) is
traced and lowered to StableHLO in each new process, even when the executable then
comes from the persistent compilation cache. This runs a command in this process with
JAX's ``_pjit_lower`` wrapped, and prints how many lowerings each calling line made and
the seconds spent lowering and compiling (or loading from the cache).

Usage (from the repository root)::

    python docs/spikes/speed/lowerings.py fit RUNS --law additive --target book --out DIR ...
"""

from __future__ import annotations

import collections
import sys
import time
import traceback

from jax._src import pjit
from jax._src.interpreters import pxla

STAGES = ("start", "fit", "sampling", "calibrate", "predict", "idata", "store", "diagnostics")
"""The modules whose lines are reported (the first such frame from the top of the stack)."""

count: collections.Counter = collections.Counter()
seconds: collections.Counter = collections.Counter()


def _site() -> str:
    for frame in reversed(traceback.extract_stack()[:-2]):
        if any(f"/bayesmix/{m}.py" in frame.filename for m in STAGES):
            return f"{frame.filename.rsplit('/', 2)[-2]}/{frame.filename.rsplit('/', 1)[-1]}" \
                   f":{frame.lineno} {frame.name}"
    return "?"


def _timed(fn, name):
    def wrapped(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - t0
            if name == "lower":
                count[_site()] += 1
    return wrapped


def main() -> None:
    pjit._pjit_lower = _timed(pjit._pjit_lower, "lower")
    pxla.MeshComputation.compile = _timed(pxla.MeshComputation.compile, "compile")
    from bayesmix.cli import main as cli

    try:
        cli(sys.argv[1:])
    finally:
        print(f"\n{sum(count.values())} lowerings; lowering {seconds['lower']:.2f} s, "
              f"compiling or loading {seconds['compile']:.2f} s", file=sys.stderr)
        for site, n in count.most_common(20):
            print(f"{n:5d}  {site}", file=sys.stderr)


if __name__ == "__main__":
    main()
