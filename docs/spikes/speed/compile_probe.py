"""Compile time inside fit_target, and whether the persistent cache saves it.

python spike/compile_probe.py TAG target [cache=DIR] [starts=2] [warmup=20] [draws=20]
Records every backend compile duration (jax.monitoring) and cache hits.
"""
import importlib
import json
import os
import sys
import time
from collections import defaultdict

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
import jax

jax.config.update("jax_enable_x64", True)
opts = dict(a.split("=", 1) for a in sys.argv[3:])
if "cache" in opts:
    jax.config.update("jax_compilation_cache_dir", opts["cache"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
events = defaultdict(float)
counts = defaultdict(int)


def listener(event, duration, **kw):
    events[event] += duration
    counts[event] += 1


jax.monitoring.register_event_duration_secs_listener(listener)
hits = defaultdict(int)
jax.monitoring.register_event_listener(lambda e, **kw: hits.__setitem__(e, hits[e] + 1))
sys.path.insert(0, "/work/scratch_speed/bench")
from _paper import TRAIN_WHERE, load_paper_runs  # noqa: E402

F = importlib.import_module("bayesmix.fit")
from bayesmix.laws import load_law  # noqa: E402

tag, target = sys.argv[1:3]
table = load_paper_runs(TRAIN_WHERE)
t = time.perf_counter()
r = F.fit_target(jax.random.key(0), load_law(opts.get("law", "additive")), table, target,
                 warmup=int(opts.get("warmup", 20)), draws=int(opts.get("draws", 20)),
                 max_draws=int(opts.get("draws", 20)), n_starts=int(opts.get("starts", 2)))
wall = time.perf_counter() - t
out = {"tag": tag, "wall": wall, "timings": r.timings,
       "durations": {k: round(v, 2) for k, v in events.items() if "compil" in k or "trac" in k
                     or "lower" in k},
       "counts": {k: counts[k] for k in events if "compil" in k}, "events": dict(hits)}
print(json.dumps(out, indent=1))
json.dump(out, open(f"/work/scratch_speed/spike/out/{tag}.json", "w"), indent=1)
