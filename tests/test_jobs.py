"""Fit jobs: the same fits in this process and in worker processes, failures by name,
a dead worker's job run again."""

import jax
import numpy as np
import pytest
import xarray as xr

from bayesmix import BayesmixError
from bayesmix.calibrate import learn_discrepancy
from bayesmix.fit import fit
from bayesmix.jobs import JobFailure, _job_table, fit_in_jobs, fit_job, run_jobs, unpack_fit
from bayesmix.laws import load_law
from bayesmix.runs import RunTable
from bayesmix.simulate import simulate_runs

TRUTH = {"loss_ref": 3.0, "a": -1.2, "alpha": 0.35, "b": -1.0, "beta": 0.3}  # test_fit's
SETTINGS = {"chains": 2, "warmup": 300, "draws": 400}
"""tests/test_fit.py's Chinchilla fit: the same programs, compiled once a session."""


@pytest.fixture(scope="module")
def runs():
    """tests/test_fit.py's Chinchilla-law runs (four sizes: a discrepancy is learnt)."""
    table, _ = simulate_runs(jax.random.key(7), load_law("chinchilla"), 2, targets=["d0"],
                             sites={"d0": TRUTH}, noise=0.003, run_noise=0.004)
    return table


def _posterior(result, target):
    return {name: np.asarray(v) for name, v in
            result.targets[target].idata.posterior.data_vars.items()}


def _same_draws(a, b):
    for target in a.targets:
        left, right = _posterior(a, target), _posterior(b, target)
        assert left.keys() == right.keys()
        for name in left:
            np.testing.assert_array_equal(left[name], right[name], err_msg=f"{target} {name}")
        terms = [result.targets[target].discrepancy for result in (a, b)]
        assert terms[0].to_dict() == terms[1].to_dict()


def _job(name, table, law=None, targets=("d0",), seed=5):
    law = law or load_law("chinchilla")
    return fit_job(name, jax.random.key(seed), law, table, targets,
                   discrepancy_key=jax.random.key(6), **SETTINGS)


def test_a_job_carries_its_rows_exactly(runs):
    back = _job_table(_job("a", runs))
    assert back.domains == runs.domains and back.targets == runs.targets
    # and only its own targets' losses
    frame = runs.frame.assign(loss_d1=runs.frame["loss_d0"])
    two = RunTable(frame, runs.domains, ("d0", "d1"), runs.source)
    assert _job_table(_job("b", two, targets=("d1",))).targets == ("d1",)
    np.testing.assert_array_equal(back.frame.index, runs.frame.index)
    for column in runs.frame.columns:
        np.testing.assert_array_equal(back.frame[column].to_numpy(),
                                      runs.frame[column].to_numpy(), err_msg=column)


@pytest.fixture(scope="module")
def here(runs):
    """Two jobs (two keys) run in this process."""
    law = load_law("chinchilla")
    jobs = [_job("a", runs), _job("b", runs, seed=8)]
    return run_jobs(jobs, {"a": law, "b": law}), jobs, law


def test_a_job_in_this_process_is_the_fit_it_describes(runs, here):
    results, _, law = here
    direct = fit(jax.random.key(5), law, runs, ["d0"], **SETTINGS)
    direct = direct.with_discrepancy(learn_discrepancy(jax.random.key(6), direct, runs))
    assert results["a"].targets["d0"].discrepancy is not None
    _same_draws(results["a"], direct)
    # negative control: another key is other draws
    with pytest.raises(AssertionError):
        _same_draws(results["b"], direct)


def test_a_failing_job_is_reported_by_name_and_the_others_finish(runs, here):
    _, _, law = here
    good = fit_job("good", jax.random.key(5), law, runs, ["d0"], **SETTINGS)
    jobs = [good, _job("bad", runs, targets=("nope",))]
    out = run_jobs(jobs, {"good": law, "bad": law})
    assert isinstance(out["bad"], JobFailure) and "nope" in str(out["bad"])
    assert str(out["bad"]).startswith("job bad: ")
    assert not isinstance(out["good"], JobFailure)
    with pytest.raises(BayesmixError, match="not a fit archive"):
        unpack_fit(b"not a tar file", law)


def _mortal_law(law, directory):
    """``law`` from a file that kills its process while a marker file exists (only one
    process can take the marker, so only one dies); the law and the marker."""
    marker = directory / "die-once"
    dying = directory / law.path.name
    dying.write_text(
        f"import os as _os\ntry:\n    _os.rename({str(marker)!r}, {str(marker)!r} + '.taken')\n"
        f"except OSError:\n    pass\nelse:\n    _os._exit(3)\n" + law.path.read_text())
    mortal = load_law(dying)  # before the marker exists
    marker.touch()
    return mortal, marker


@pytest.mark.slow  # 20 s; the demo's test runs its laws through a pool every time
def test_worker_processes_give_the_same_draws_when_one_dies(runs, here, tmp_path):
    """Two workers, one of which dies loading the law: the jobs run again in a new pool,
    and every fit has the draws of the jobs run in this process."""
    results, _, law = here
    mortal, marker = _mortal_law(law, tmp_path)
    done = []
    jobs = [_job("a", runs, law=mortal), _job("b", runs, law=mortal, seed=8)]
    out = run_jobs(jobs, {"a": mortal, "b": mortal}, workers=2,
                   on_done=lambda name, outcome: done.append(name))
    assert not marker.exists()  # a worker died
    assert sorted(done) == ["a", "b"] and list(out) == ["a", "b"]
    for name in out:
        assert not isinstance(out[name], JobFailure), out[name]
        _same_draws(out[name], results[name])


def test_an_unpacked_fit_outlives_its_files(here):
    """The job's archive is unpacked to a temporary directory, deleted at once: every
    group of every target's InferenceData was read into memory (a lazy group reopens
    its file once xarray's cache of open files lets it go; a cache of one forces it)."""
    results, _, _ = here
    idata = results["a"].targets["d0"].idata
    with xr.set_options(file_cache_maxsize=1):
        for group in idata.groups():
            for name, values in getattr(idata, group).data_vars.items():
                assert np.asarray(values.values).size > 0, (group, name)


# ------------------------------------------------------------------ a Dask cluster


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes (one thread each), as ``dask scheduler``
    and two ``dask worker`` would make."""
    import distributed  # in the test extra: CI runs these
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local.scheduler_address


def test_targets_in_jobs_on_a_cluster_are_the_fit_of_all(runs, cluster, tmp_path):
    """One job per target (``bayesmix fit --scheduler``), the law's file killing the
    first worker that loads it: the scheduler gives that job to another worker, and the
    fits are those of both targets in one call here, bit for bit; a target that fails
    is named and the others kept."""
    frame = runs.frame.copy()
    frame["loss_d1"] = frame["loss_d0"] * 1.01
    two = RunTable(frame, runs.domains, ("d0", "d1"), runs.source)
    law, options = load_law("chinchilla"), {"seed": 3, **SETTINGS}
    whole = fit(jax.random.key(9), law, two, ["d0", "d1"], **options)
    mortal, marker = _mortal_law(law, tmp_path)
    seen = []
    split, failures = fit_in_jobs(jax.random.key(9), mortal, two, ["d0", "d1", "nope"],
                                  scheduler=cluster, on_target=lambda *a: seen.append(a[:2]),
                                  **options)
    assert not marker.exists()  # a worker died
    assert [f.name for f in failures] == ["nope"] and list(split.targets) == ["d0", "d1"]
    assert sorted(seen) == [("d0", 0), ("d1", 1), ("nope", 2)]
    assert split.seed == whole.seed == 3
    for target in ("d0", "d1"):
        left, right = _posterior(split, target), _posterior(whole, target)
        for name in left:
            np.testing.assert_array_equal(left[name], right[name], err_msg=f"{target} {name}")


def test_an_unreachable_scheduler_is_one_line(here, monkeypatch):
    import bayesmix.jobs

    monkeypatch.setattr(bayesmix.jobs, "CONNECT_TIMEOUT", 2)
    _, jobs, law = here
    with pytest.raises(BayesmixError, match="cannot reach the Dask scheduler"):
        run_jobs(jobs[:1], {"a": law}, scheduler="tcp://127.0.0.1:9")


def test_fit_command_refuses_no_workers(runs, tmp_path, capsys):
    from bayesmix.cli import main

    path = tmp_path / "runs.csv"
    runs.frame.to_csv(path, index=False)
    out = tmp_path / "fit"
    assert main(["fit", str(path), "--law", "chinchilla", "--target", "d0", "--workers", "0",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "workers must be at least 1, got 0" in err
    assert not out.exists()
