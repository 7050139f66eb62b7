"""Many fits three ways: here one after the other, a local pool, a Dask LocalCluster
(issue 20's benchmark).

For each law, ``bayesmix fit RUNS --law L --all-targets --no-discrepancy`` runs as a
fresh process three times, each with its own empty JAX compilation cache: as it is
(the targets one after the other), with ``--workers 2``, and with ``--scheduler`` on a
LocalCluster of two worker processes (one thread each) started here. It prints the
wall times, their ratios to the first, and whether the three fits have the same draws
bit for bit; then the number of jobs and the bytes of a job and of its result for a
simulated study of ``--study-targets`` targets.

Usage::

    python bench/sweep.py [--runs CSV | --paper] [--laws additive,joint] [--domains 4]
        [--chains 4 --warmup 600 --draws 700] [--study-targets 100]

``--runs`` defaults to runs simulated from the additive law on ``--domains`` domains
(every domain a target; a canonical CSV of your own works too); ``--paper`` fits the
paper split's training rows (``bench/_paper.py``: its 8 targets, the CLI's column
options and ``--where``; exits 0 with a message when ``../shared/data`` is absent).
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fit(runs: list[str], law: str, out: Path, cache: Path, nuts: list[str], extra: list[str]
         ) -> float:
    env = {**os.environ, "BAYESMIX_JAX_CACHE": str(cache)}
    command = [sys.executable, "-m", "bayesmix.cli", "fit", *runs, "--law", law,
               "--all-targets", "--no-discrepancy", "--out", str(out), *nuts, *extra]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def _same_draws(a: Path, b: Path) -> bool:
    import arviz as az
    import numpy as np

    for nc in sorted(a.glob("*.nc")):
        left, right = az.from_netcdf(str(nc)), az.from_netcdf(str(b / nc.name))
        for name in left.posterior.data_vars:
            if not np.array_equal(left.posterior[name].values, right.posterior[name].values):
                return False
    return True


def _job_sizes(targets: int, nuts: dict[str, int]) -> tuple[int, float, float]:
    """Jobs of a ``targets``-target study (one per target) and a job's pickled bytes."""
    import jax
    import pandas as pd

    from bayesmix.jobs import fit_job
    from bayesmix.laws import load_law
    from bayesmix.runs import RunTable
    from bayesmix.simulate import simulate_runs

    table, _ = simulate_runs(jax.random.key(0), load_law("additive"), 3)
    names = [f"t{i:03d}" for i in range(targets)]
    losses = pd.DataFrame({f"loss_{name}": table.frame["loss_d0"] * (1 + 0.001 * i)
                           for i, name in enumerate(names)})
    frame = pd.concat([table.frame.drop(columns=[f"loss_{t}" for t in table.targets]),
                       losses], axis=1)
    study = RunTable(frame, table.domains, tuple(names), "simulated")
    jobs = [fit_job(name, jax.random.key(1), load_law("additive"), study, [name], first=i,
                    **nuts) for i, name in enumerate(names)]
    sizes = [len(pickle.dumps(job)) for job in jobs]
    return len(jobs), sum(sizes) / len(sizes) / 1e3, len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--runs", default=None)
    source.add_argument("--paper", action="store_true",
                        help="the paper split's training rows (8 targets)")
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--domains", type=int, default=4)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--draws", type=int, default=700)
    parser.add_argument("--study-targets", type=int, default=100)
    args = parser.parse_args()
    nuts = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws}
    flags = [f"--{k}={v}" for k, v in nuts.items()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="bayesmix-sweep-"))
    if args.paper:
        from _paper import CLI_COLUMNS, DATA, TRAIN_WHERE

        if not DATA.is_file():
            print(f"skipped: {DATA} is absent (the paper's runs live in ../shared/data)")
            return
        runs = DATA
        source = [str(DATA), *CLI_COLUMNS, "--where", TRAIN_WHERE]
    else:
        runs = Path(args.runs) if args.runs else work / "runs.csv"
        source = [str(runs)]
        if args.runs is None:
            subprocess.run([sys.executable, "-m", "bayesmix.cli", "simulate", "--law",
                            "additive", "--domains", str(args.domains), "--out", str(runs)],
                           check=True, capture_output=True)
    print(f"commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"runs {runs}, NUTS {nuts}")
    os.environ["BAYESMIX_JAX_CACHE"] = str(work / "cluster-cache")  # the workers inherit it
    from distributed import LocalCluster

    print("| law | here (one after the other) | --workers 2 | LocalCluster (2 x 1 thread) "
          "| ratios | same draws |")
    print("|---|---|---|---|---|---|")
    for law in args.laws.split(","):
        here = _fit(source, law, work / f"{law}-here", work / f"{law}-cache-here", flags, [])
        pool = _fit(source, law, work / f"{law}-pool", work / f"{law}-cache-pool", flags,
                    ["--workers", "2"])
        cache = work / f"{law}-cache-cluster"
        os.environ["BAYESMIX_JAX_CACHE"] = str(cache)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            on_cluster = _fit(source, law, work / f"{law}-cluster", cache, flags,
                              ["--scheduler", cluster.scheduler_address])
        same = (_same_draws(work / f"{law}-here", work / f"{law}-pool")
                and _same_draws(work / f"{law}-here", work / f"{law}-cluster"))
        print(f"| {law} | {here:.0f} s | {pool:.0f} s | {on_cluster:.0f} s | "
              f"{pool / here:.2f} / {on_cluster / here:.2f} | {'yes' if same else 'NO'} |",
              flush=True)
    jobs, kb, rows = _job_sizes(args.study_targets, nuts)
    files = list((work / f"{args.laws.split(',')[0]}-here").glob("*.nc"))
    result = sum(f.stat().st_size for f in files) / len(files)
    print(f"a {args.study_targets}-target study ({rows} rows): {jobs} jobs (one per target), "
          f"{kb:.0f} kB pickled per job; a job's result (one target's netCDF, the bulk of "
          f"its archive) {result / 1e6:.2f} MB at these NUTS settings")


if __name__ == "__main__":
    main()
