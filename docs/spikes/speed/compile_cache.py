"""Where a small fit's time goes, and what JAX's persistent cache saves (issue 17, study 2).

Fits two targets of simulated additive-law runs (k = 3, 192 rows; 2 chains, warmup 100,
100 draws) and prints the wall time, each target's time, JAX's compile and cache
counters, and the programs that took longest to compile (with ``--log``).

    python docs/spikes/speed/compile_cache.py nocache SEED
    python docs/spikes/speed/compile_cache.py cache SEED [--log]

``cache`` uses ``$BAYESMIX_JAX_CACHE`` (default /tmp/bayesmix-spike-cache). Run it
twice with the same SEED (same data), then with another SEED (same shapes, other
losses): with the data as arguments of the compiled programs the third run loads them.
Runs against the installed bayesmix (at 12e4ee3 or later).
"""

import collections
import logging
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jax  # noqa: E402
import jax.monitoring  # noqa: E402

jax.config.update("jax_enable_x64", True)

import bayesmix  # noqa: E402

if sys.argv[1] == "cache":
    os.environ.setdefault("BAYESMIX_JAX_CACHE", "/tmp/bayesmix-spike-cache")
    bayesmix.use_compilation_cache()
durations = collections.defaultdict(float)
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **_: durations.__setitem__(name, durations[name] + secs))
by_program, count = collections.Counter(), collections.Counter()
if "--log" in sys.argv:
    class Compiles(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Finished XLA compilation"):
                parts = msg.split(" ")
                by_program[parts[4]] += float(parts[-2])
                count[parts[4]] += 1

    jax.config.update("jax_log_compiles", True)
    log = logging.getLogger("jax")
    log.addHandler(Compiles())
    log.setLevel(logging.WARNING)
    log.propagate = False

law = bayesmix.load_law("additive")
table, _ = bayesmix.simulate_runs(jax.random.key(int(sys.argv[2])), law, 3)
t0 = time.perf_counter()
result = bayesmix.fit(jax.random.key(0), law, table, ["d0", "d1"], chains=2, warmup=100,
                      draws=100)
print(f"wall {time.perf_counter() - t0:.1f} s; per target",
      [round(tf.timings.total, 1) for tf in result.targets.values()])
print({k.rsplit("/", 1)[-1]: round(v, 1) for k, v in durations.items()
       if "compile" in k or "cache" in k})
for name, secs in by_program.most_common(10):
    print(f"{secs:6.2f} s {count[name]:4d} x {name}")
