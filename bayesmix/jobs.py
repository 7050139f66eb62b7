"""Many independent fits: in this process, in local worker processes, or on a Dask cluster.

A study fits several laws, targets and folds, each independent of the others. A
:class:`FitJob` carries only what its fit needs: the run table's rows as CSV text
(every digit, the source's row numbers, only the job's own loss columns), the law
file's text, the targets, the PRNG key's data and the fit's settings. A worker turns
it into a fit directory (:func:`bayesmix.store.save_fit`) packed as bytes, and the
caller unpacks it (:func:`unpack_fit`): nothing crosses a process boundary but data,
so no closure is pickled and a worker needs only bayesmix installed. Keys come with
the job, not from the order in which jobs finish, so every way of running gives the
same draws.

:func:`run_jobs` runs jobs one after the other in this process (``workers=1``), in a
pool of ``workers`` processes started fresh (``spawn``), or on the workers of a Dask
scheduler (``scheduler=``). Every worker gets this process's number of JAX host
devices (so the chains are mapped the same way) and precision, and a pool worker its
compilation cache. On a machine with idle cores a pool overlaps one fit's XLA
compilation, which uses one core, with another fit's sampling. A pool worker that
dies has its jobs run again in a new pool (on Dask the scheduler gives them to
another worker), and a job that fails is reported by name while the others finish.
:func:`fit_in_jobs` is :func:`bayesmix.fit.fit` with one job per target.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError, first_line
from bayesmix.calibrate import try_learn_discrepancy
from bayesmix.fit import Fit, fit
from bayesmix.laws import Law, load_law
from bayesmix.runs import RunTable
from bayesmix.store import load_fit, save_fit

__all__ = ["FitJob", "JobFailure", "check_workers", "default_workers", "fit_in_jobs",
           "fit_job", "run_fit_job", "run_jobs", "unpack_fit"]

_RETRIES = 1
"""Times the jobs of a pool whose worker died are run again, in a new pool."""
CONNECT_TIMEOUT = 30
"""Seconds to wait for a Dask scheduler."""


@dataclass(frozen=True)
class FitJob:
    """One fit (and its discrepancy) as data.

    Attributes
    ----------
    name : str
        The job's name in results and messages.
    law : str
        The law's name.
    law_text : str
        The law file's text (the worker loads the law from it, so a worker with
        another copy of bayesmix fits the same law).
    law_file : str
        The law file's name.
    runs : str
        The run table as CSV, the source's row numbers in the first column, with the
        loss columns of the job's targets only.
    domains, targets : tuple of str
        The table's domains; the targets to fit.
    source : str
        The table's source, as the fit records it.
    key : tuple of int
        The PRNG key's data (``jax.random.key_data``); target ``j`` of the job is fitted
        with ``fold_in(key, first + j)`` (:func:`bayesmix.fit.fit` with ``first``).
    first : int
        The index of the job's first target among the study's.
    discrepancy_key : tuple of int or None
        Learn the fit's discrepancy (:func:`bayesmix.calibrate.try_learn_discrepancy`)
        with this key; None for none.
    settings : tuple of (str, value)
        Keyword arguments of :func:`bayesmix.fit.fit`.
    """

    name: str
    law: str
    law_text: str
    law_file: str
    runs: str
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    source: str
    key: tuple[int, ...]
    first: int
    discrepancy_key: tuple[int, ...] | None
    settings: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class JobFailure:
    """A job that did not finish: its name and why, in one line."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"job {self.name}: {self.message}"


def _key_data(key: jax.Array) -> tuple[int, ...]:
    return tuple(int(x) for x in np.asarray(jax.random.key_data(key)).ravel())


def _key(data: tuple[int, ...]) -> jax.Array:
    return jax.random.wrap_key_data(np.asarray(data, dtype=np.uint32))


def fit_job(name: str, key: jax.Array, law: Law, table: RunTable, targets: Sequence[str],
            *, first: int = 0, discrepancy_key: jax.Array | None = None,
            **settings: Any) -> FitJob:
    """A job that fits ``targets`` of ``table`` with ``law`` as :func:`bayesmix.fit.fit`
    would, then learns the discrepancy when ``discrepancy_key`` is given.

    Parameters
    ----------
    name : str
    key : jax.Array
        The fit's key (as :func:`bayesmix.fit.fit` takes it).
    law : Law
    table : RunTable
    targets : sequence of str
    first : int
        The index of ``targets[0]`` in a longer list that ``key`` is for: the job's
        fits are then those of :func:`bayesmix.fit.fit` on the whole list.
    discrepancy_key : jax.Array, optional
    **settings
        Keyword arguments of :func:`bayesmix.fit.fit` (``chains``, ``warmup``, ...).

    Raises
    ------
    BayesmixError
        A setting that is not plain data (a number, string, bool or None).
    """
    for option, value in settings.items():
        if not isinstance(value, (int, float, str, bool, type(None))):
            raise BayesmixError(f"job {name}: setting {option}={value!r} is not plain data")
    # only the columns the fit reads: N, D, the weights, the run ids, these targets' losses
    keep = [c for c in table.frame.columns
            if not c.startswith("loss_") or c.removeprefix("loss_") in targets]
    buffer = io.StringIO()
    table.frame[keep].to_csv(buffer, float_format="%.17g")
    return FitJob(name=name, law=law.name, law_text=law.path.read_text(), law_file=law.path.name,
                  runs=buffer.getvalue(), domains=tuple(table.domains),
                  targets=tuple(targets), source=table.source, key=_key_data(key),
                  first=first,
                  discrepancy_key=None if discrepancy_key is None
                  else _key_data(discrepancy_key),
                  settings=tuple(sorted(settings.items())))


def _job_table(job: FitJob) -> RunTable:
    frame = pd.read_csv(io.StringIO(job.runs), index_col=0)
    frame.index = frame.index.astype(int)
    return RunTable(frame, job.domains, tuple(c.removeprefix("loss_") for c in frame.columns
                                              if c.startswith("loss_")), job.source)


def run_fit_job(job: FitJob) -> bytes:
    """Run ``job`` here: the fit directory it makes, as the bytes of a tar archive.

    Raises
    ------
    BayesmixError
        The fit's own errors (too few rows, an unknown target, ...).
    """
    with tempfile.TemporaryDirectory(prefix="bayesmix-job-") as tmp:
        path = Path(tmp) / job.law_file
        path.write_text(job.law_text)
        law = load_law(path)
        if law.name != job.law:
            raise BayesmixError(f"job {job.name}: its law file defines law '{law.name}', "
                                f"not '{job.law}'")
        table = _job_table(job)
        result = fit(_key(job.key), law, table, list(job.targets), first=job.first,
                     **dict(job.settings))
        if job.discrepancy_key is not None:  # kept without it if learning it fails
            result, _ = try_learn_discrepancy(_key(job.discrepancy_key), result, table)
        save_fit(result, Path(tmp) / "fit")
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w") as archive:
            archive.add(Path(tmp) / "fit", arcname="fit")
        return packed.getvalue()


def unpack_fit(data: bytes, law: Law) -> Fit:
    """The fit a job's bytes hold, with ``law`` (the caller's own) attached.

    Raises
    ------
    BayesmixError
        The bytes are not a fit archive, or hold a fit of another law.
    """
    with tempfile.TemporaryDirectory(prefix="bayesmix-job-") as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: no path escapes
                    archive.extractall(tmp, filter="data")
                else:  # pragma: no cover
                    archive.extractall(tmp)  # noqa: S202 - our own workers' archives
        except (tarfile.TarError, OSError) as exc:
            raise BayesmixError(f"a job's result is not a fit archive ({exc})") from None
        return load_fit(Path(tmp) / "fit", law=law)


def _failure(job: FitJob, exc: Exception) -> JobFailure:
    """A job's error as one line: a BayesmixError's message, else the error's type too."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    if not isinstance(exc, BayesmixError):
        message = f"{type(exc).__name__}: {message}"
    return JobFailure(job.name, message)


def _worker_setup(devices: int, x64: bool, cache: str | None) -> None:
    """In a new worker, before JAX starts: this process's devices, default precision
    and compilation cache."""
    import numpyro

    from bayesmix._jaxutil import use_compilation_cache

    numpyro.set_host_device_count(devices)
    jax.config.update("jax_enable_x64", x64)
    use_compilation_cache(cache)  # None: the worker's own (BAYESMIX_JAX_CACHE, or ~/.cache)


def run_jobs(jobs: Sequence[FitJob], laws: dict[str, Law], *, workers: int = 1,
             scheduler: str | None = None,
             on_done: Callable[[str, Fit | JobFailure], None] | None = None,
             ) -> dict[str, Fit | JobFailure]:
    """Run fit jobs here, in ``workers`` processes or on a Dask cluster; the same fits
    every way.

    Parameters
    ----------
    jobs : sequence of FitJob
    laws : mapping of job name -> Law
        The law each job's fit is given back with.
    workers : int
        1 runs the jobs one after the other in this process; more starts that many
        worker processes (at most one per job).
    scheduler : str, optional
        The address of a Dask scheduler (``tcp://host:8786``): the jobs run on its
        workers instead (needs ``bayesmix[distributed]``; ``workers`` is then unused).
        Each worker is set up as this process is (JAX host devices, precision) before
        its first job, a job whose worker dies runs again on another, and a job that
        raises is a :class:`JobFailure`.
    on_done : callable, optional
        ``on_done(name, Fit or JobFailure)`` as each job finishes.

    Returns
    -------
    dict of job name -> Fit or JobFailure
        In the order of ``jobs``; a job that raised, or whose worker died in the
        first pool and again in the second, is a :class:`JobFailure` and the others
        are kept.

    Raises
    ------
    BayesmixError
        Two jobs of one name; a scheduler without ``distributed`` installed, or that
        cannot be reached.
    """
    check_workers(workers)
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise BayesmixError(f"job names must be unique, got {names}")
    results: dict[str, Fit | JobFailure] = {}

    def finished(name: str, outcome: bytes | JobFailure) -> None:
        results[name] = outcome if isinstance(outcome, JobFailure) else unpack_fit(
            outcome, laws[name])
        if on_done is not None:
            on_done(name, results[name])

    if scheduler is not None:
        _on_cluster(jobs, scheduler, finished)
    elif workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            try:
                outcome: bytes | JobFailure = run_fit_job(job)
            except Exception as exc:  # noqa: BLE001 - reported by name; the others run
                outcome = _failure(job, exc)
            finished(job.name, outcome)
    else:
        pending = list(jobs)
        for attempt in range(_RETRIES + 1):
            pending = _pool_round(pending, min(workers, len(pending)), finished,
                                  last=attempt == _RETRIES)
            if not pending:
                break
    return {name: results[name] for name in names}


def _pool_round(jobs: list[FitJob], workers: int,
                finished: Callable[[str, bytes | JobFailure], None], *,
                last: bool) -> list[FitJob]:
    """Run ``jobs`` in one pool; returns those lost to a dead worker (unless ``last``,
    when they fail)."""
    cache = jax.config.jax_compilation_cache_dir
    lost = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(
            "spawn"), initializer=_worker_setup,
            initargs=(jax.local_device_count(), bool(jax.config.jax_enable_x64), cache)) as pool:
        futures: dict[Future, FitJob] = {pool.submit(run_fit_job, job): job for job in jobs}
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                job = futures[future]
                try:
                    outcome: bytes | JobFailure = future.result()
                except BrokenProcessPool:
                    if not last:
                        lost.append(job)
                        continue
                    outcome = JobFailure(job.name, "its worker process died, twice")
                except Exception as exc:  # noqa: BLE001 - reported by name; the others run
                    outcome = _failure(job, exc)
                finished(job.name, outcome)
    return lost


def _jax_plugin(devices: int, x64: bool) -> Any:
    """A Dask worker plugin that sets up JAX as :func:`_worker_setup` does, on every
    worker that joins (one restarted after dying too), before its first job."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class JaxSetup(WorkerPlugin):
        name = "bayesmix-jax"
        idempotent = True

        def setup(self, worker: Any) -> None:
            _worker_setup(devices, x64, None)

    return JaxSetup()


def _check_address(scheduler: str) -> None:
    """Refuse an address Dask would spend its whole timeout failing to parse."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(scheduler)
        if protocol in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise BayesmixError(f"--scheduler {scheduler!r} is not a scheduler address such "
                            f"as tcp://host:8786 ({first_line(exc)})") from None


def _on_cluster(jobs: Sequence[FitJob], scheduler: str,
                finished: Callable[[str, bytes | JobFailure], None]) -> None:
    """Run ``jobs`` on the Dask cluster at ``scheduler``."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise BayesmixError("--scheduler needs dask.distributed: pip install "
                            "'bayesmix[distributed]'") from None
    _check_address(scheduler)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BayesmixError(f"cannot reach the Dask scheduler at {scheduler} "
                            f"({type(exc).__name__}: {exc})") from None
    with client:
        client.register_plugin(_jax_plugin(jax.local_device_count(),
                                           bool(jax.config.jax_enable_x64)))
        # a job whose worker dies is given to another by the scheduler (up to its
        # allowed-failures, 3 by default); a job that raises is not run again
        futures = {client.submit(run_fit_job, job, key=f"bayesmix-{job.name}-{id(job)}",
                                 pure=False): job for job in jobs}
        for future in as_completed(futures, loop=client.loop):
            job = futures[future]
            if future.status == "finished":
                outcome: bytes | JobFailure = future.result()
            else:
                error = future.exception()
                outcome = (JobFailure(job.name, "its worker died on every try")
                           if type(error).__name__ == "KilledWorker" else _failure(job, error))
            finished(job.name, outcome)


def fit_in_jobs(key: jax.Array, law: Law, table: RunTable, targets: Sequence[str], *,
                workers: int = 1, scheduler: str | None = None, seed: int | None = None,
                on_target: Callable[[str, int, Any], None] | None = None,
                **options: Any) -> tuple[Fit, list[JobFailure]]:
    """:func:`bayesmix.fit.fit` with one job per target (see :func:`run_jobs`).

    The draws are those of ``fit(key, law, table, targets, **options)``, bit for bit.

    Parameters
    ----------
    key : jax.Array
    law : Law
    table : RunTable
    targets : sequence of str
    workers, scheduler
        As :func:`run_jobs`.
    seed : int, optional
        Recorded with the fit.
    on_target : callable, optional
        ``on_target(target, index, TargetFit or None)`` as each target finishes (None
        when it failed).
    **options
        Passed to :func:`bayesmix.fit.fit_target`.

    Returns
    -------
    Fit
        The targets that finished, in the order of ``targets``.
    list of JobFailure
        The targets that did not, each with why.

    Raises
    ------
    BayesmixError
        No target, a bad option, or (as :func:`run_jobs`) an unreachable scheduler.
    """
    if not targets:
        raise BayesmixError("no target to fit: targets is empty")
    jobs = [fit_job(target, key, law, table, [target], first=i, seed=seed, **options)
            for i, target in enumerate(targets)]
    index = {target: i for i, target in enumerate(targets)}

    def done(target: str, outcome: Fit | JobFailure) -> None:
        if on_target is not None:
            on_target(target, index[target],
                      None if isinstance(outcome, JobFailure) else outcome.targets[target])

    out = run_jobs(jobs, dict.fromkeys(targets, law), workers=workers, scheduler=scheduler,
                   on_done=done)
    fits = {t: r.targets[t] for t, r in out.items() if not isinstance(r, JobFailure)}
    failures = [r for r in out.values() if isinstance(r, JobFailure)]
    return Fit(law=law, targets=fits, domains=tuple(table.domains),
               seed=-1 if seed is None else int(seed), source=table.source), failures


def check_workers(workers: int) -> None:
    """Refuse fewer than one worker (:class:`BayesmixError`, one line)."""
    if workers < 1:
        raise BayesmixError(f"workers must be at least 1, got {workers}")


def default_workers(jobs: int) -> int:
    """Worker processes for ``jobs`` jobs on this machine: one per job, at most one per
    core, and none (run here) on one core."""
    return max(1, min(jobs, os.cpu_count() or 1))
