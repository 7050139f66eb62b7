"""The README's first command from a fresh clone, timed (issue 21, bar 1).

Clones this checkout's HEAD into a temporary directory and runs, as the README says,
``python3 -m venv .venv && . .venv/bin/activate && pip install . && bayesmix demo``
(with ``--json`` added so the demo's own stage times can be read), timing the install
and the demo separately. pip's download cache is the user's, as on a machine that has
installed Python packages before; ``--no-cache`` empties it for the run.

Usage::

    python bench/demo_time.py [--keep DIR] [--no-cache]

Prints the install, the demo and the whole command in seconds, the demo's stage times,
and the lines to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", default=None, help="clone here instead of a temp dir")
    parser.add_argument("--no-cache", action="store_true", help="pip without its cache")
    parser.add_argument("--reference", action="store_true",
                        help="then the demo again with --workers 1 and an empty JAX cache "
                             "(the laws one after the other): the ratio of the two")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bayesmix-demo-"))
    clone = base / "bayesmix"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "XLA_FLAGS")}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    env["BAYESMIX_JAX_CACHE"] = str(base / "jax-cache")  # no programs from earlier runs
    if args.no_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    install, _ = _run("python3 -m venv .venv && . .venv/bin/activate && pip install -q .",
                      clone, env)
    demo, printed = _run(". .venv/bin/activate && bayesmix demo --json --out demo", clone,
                         env)
    report = json.loads(printed)
    reference = None
    if args.reference:
        env["BAYESMIX_JAX_CACHE"] = str(base / "jax-cache-reference")
        reference, _ = _run(". .venv/bin/activate && bayesmix demo --json --workers 1 "
                            "--out demo-reference", clone, env)
    print(f"commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"install {install:.0f} s, demo {demo:.0f} s, whole command {install + demo:.0f} s "
          f"(bar: 240 s)")
    if reference is not None:
        print(f"reference (--workers 1, laws one after the other): demo {reference:.0f} s; "
              f"ratio {demo / reference:.2f}")
    for stage, seconds in report["seconds"].items():
        print(f"  {stage:<28} {seconds:6.1f} s")
    warned = sum(len(w) for w in report["warnings"].values())
    print(f"convergence warnings: {warned}; chosen law {report['chosen_law']}; report "
          f"{(clone / 'demo' / 'report.html').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
