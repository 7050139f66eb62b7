"""Corrupt, foreign and unreadable fit files: one line naming the file, exit 2.

One tiny fit (2 chains of 50 draws), one baseline, one ``optimize --out`` and one
``suggest --out`` directory are made once for the module from a small simulated table.
Each case copies one of them, corrupts one value that is read from it (or makes the
directory unreadable, by monkeypatching: the tests may run as root, whom permission
bits do not stop), and runs a command: ``bayesmix.cli.main`` must return 2 with one
line on stderr, ``bayesmix: error: ...``, that names the file. The controls: the same
copying and rewriting with nothing changed runs the same commands (exit 0), and the
copies load equal to the originals.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from bayesmix.cli import main
from bayesmix.report_inputs import read_optimum, read_suggestion
from bayesmix.store import load_baseline, load_fit, load_posteriors


class Files(NamedTuple):
    runs: Path
    fit: Path
    base: Path
    optimum: Path
    suggestion: Path


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("fit_files")
    files = Files(*(root / name for name in ("small.csv", "fit", "base", "opt", "sug")))
    planned = ["--N", "1e9", "--D", "2e10"]
    for argv in (
        ["simulate", "--law", "additive", "--domains", "2", "--seed", "1", "--sizes",
         "1e8,2e8,4e8", "--tokens-per-param", "4,8,16", "--mixtures", "5", "--out",
         str(files.runs)],
        ["fit", str(files.runs), "--law", "additive", "--target", "d0", "--out",
         str(files.fit), "--chains", "2", "--warmup", "50", "--draws", "50",
         "--no-discrepancy"],
        ["baseline", str(files.runs), "--law", "additive", "--target", "d0", "--out",
         str(files.base), "--starts", "500", "--keep", "4"],
        ["optimize", str(files.fit), *planned, "--out", str(files.optimum)],
        ["suggest", str(files.fit), *planned, "--mixtures", "5", "--draws", "100",
         "--threshold", "0", "--out", str(files.suggestion)],  # a run suggested
    ):
        assert main(argv) == 0, argv
    return files


# --------------------------------------------------------------------------- cases


def _fit(edit: Callable[[dict, dict], None]) -> Callable[[dict], None]:
    """An edit of fit.json or baseline.json: ``edit(meta, meta's entry for d0)``."""
    return lambda meta: edit(meta, meta["per_target"]["d0"])


def _set(**values: Any) -> Callable[[dict], None]:
    return lambda meta: meta.update(values)


def _entry(**values: Any) -> Callable[[dict], None]:
    return _fit(lambda meta, info: info.update(values))


def _scale(name: str, value: Any) -> Callable[[dict], None]:
    return _fit(lambda meta, info: info["scales"].update({name: value}))


def _site(name: str, value: Any) -> Callable[[dict], None]:
    return _fit(lambda meta, info: info["sites"].update({name: value}))


def _relabel(meta: dict) -> None:
    """An additive fit's fit.json naming the joint law."""
    meta["law"] = {"name": "joint", "path": None}


def _suggested_run(meta: dict) -> None:
    meta["runs"][0]["D"] = -3.0


def _denied(self: Path) -> None:
    raise PermissionError(13, "Permission denied", str(self))


def _unlistable(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """``chmod 000``: the directory cannot be listed."""
    listed = Path.iterdir
    monkeypatch.setattr(Path, "iterdir",
                        lambda self: _denied(self) if self == directory else listed(self))


def _unsearchable(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """``chmod a-x``: the directory lists, but nothing in it can be looked at."""
    looked = Path.is_file
    monkeypatch.setattr(Path, "is_file",
                        lambda self: _denied(self) if self.parent == directory
                        else looked(self))


class Case(NamedTuple):
    source: str  # the Files field copied: its JSON file is rewritten (edited if edit)
    named: str  # the file the error must name, "" for the directory itself
    edit: Callable[[dict], None] | None
    command: str  # a key of _argv
    needle: str
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None


_JSON = {"fit": "fit.json", "base": "baseline.json", "optimum": "optimum.json",
         "suggestion": "suggestion.json"}


PLANNED = ["--N", "1e9", "--D", "2e10"]
CASES = {
    # 1. unreadable directories
    "fit dir unlistable": Case("fit", "", None, "predict", "Permission denied",
                               _unlistable),
    "fit dir unlistable, optimize": Case("fit", "", None, "optimize", "Permission denied",
                                         _unlistable),
    "fit dir unsearchable": Case("fit", "", None, "predict", "Permission denied",
                                 _unsearchable),
    "fit dir unsearchable, report": Case("fit", "", None, "report", "Permission denied",
                                         _unsearchable),
    "baseline dir unlistable": Case("base", "", None, "predict", "Permission denied",
                                    _unlistable),
    "suggestion dir unsearchable": Case("suggestion", "", None, "report-suggest",
                                        "Permission denied", _unsearchable),
    # 2. no targets, for every command
    **{f"fit targets [], {command}": Case("fit", "fit.json", _set(targets=[]), command,
                                          "lists no targets")
       for command in ("predict", "optimize", "compare", "suggest", "report")},
    "baseline targets []": Case("base", "baseline.json", _set(targets=[]), "predict",
                                "lists no targets"),
    "baseline targets [], optimize": Case("base", "baseline.json", _set(targets=[]),
                                          "optimize", "lists no targets"),
    # 3. a baseline's sites
    "baseline sites null": Case("base", "baseline.json", _entry(sites=None), "predict",
                                "target 'd0': sites is not a mapping"),
    "baseline site nan": Case("base", "baseline.json", _site("a", float("nan")), "predict",
                              "target 'd0': sites.a is not finite"),
    "baseline site text": Case("base", "baseline.json", _site("a", "x"), "predict",
                               "sites.a is not a number"),
    "baseline residuals": Case("base", "baseline.json", _entry(residuals="weird"),
                               "predict", "residuals is 'weird'"),
    "baseline 3 domains": Case("base", "baseline.json", _set(domains=["d0", "d1", "d2"]),
                               "predict", "stores the parameters"),
    "baseline n_ref 0": Case("base", "baseline.json", _scale("n_ref", 0), "predict",
                             "scales.n_ref is 0"),
    # 4. a fit relabelled with another law
    "fit of another law": Case("fit", "d0.nc", _relabel, "predict",
                               "not those of law 'joint'"),
    # 5. a fit's fields
    "param_names []": Case("fit", "fit.json", _entry(param_names=[]), "predict",
                           "param_names is empty"),
    "param_names of another law": Case("fit", "fit.json", _entry(param_names=["a"]),
                                       "predict", "param_names a are not the parameters"),
    "n_ref text": Case("fit", "fit.json", _scale("n_ref", "big"), "predict",
                       "target 'd0': scales.n_ref is 'big'"),
    "n_ref nan": Case("fit", "fit.json", _scale("n_ref", float("nan")), "optimize",
                      "scales.n_ref is nan"),
    "n_ref negative": Case("fit", "fit.json", _scale("n_ref", -2.0), "predict",
                           "scales.n_ref is -2.0"),
    "loss_scale missing": Case("fit", "fit.json", _fit(lambda m, i: i["scales"].pop(
        "loss_scale")), "predict", "scales has no loss_scale"),
    "likelihood": Case("fit", "fit.json", _entry(likelihood="weird"), "predict",
                       "likelihood is 'weird'"),
    "fit 3 domains": Case("fit", "fit.json", _set(domains=["d0", "d1", "d2"]), "predict",
                          "lists the domains d0, d1, d2"),
    "fit domains []": Case("fit", "fit.json", _set(domains=[]), "report",
                           "lists no domains"),
    "fit domains [], optimize": Case("fit", "fit.json", _set(domains=[]), "optimize",
                                     "lists no domains"),
    "fit domain twice": Case("fit", "fit.json", _set(domains=["d0", "d0"]), "predict",
                             "domains names 'd0' twice"),
    "rows text": Case("fit", "fit.json", _entry(rows="abc"), "predict",
                      "rows is not a list of row numbers"),
    "warnings text": Case("fit", "fit.json", _entry(warnings="abc"), "predict",
                          "warnings is not a list"),
    "file a path": Case("fit", "fit.json", _entry(file="../d0.nc"), "predict",
                        "not a file name"),
    "law nameless": Case("fit", "fit.json", _set(law={"path": None}), "predict",
                         "law has no name"),
    # 6. suggestion.json and optimum.json as a report reads them
    "suggestion N text": Case("suggestion", "suggestion.json", _set(N="big"),
                              "report-suggest", "N is 'big'"),
    "suggested run D negative": Case("suggestion", "suggestion.json", _suggested_run,
                                     "report-suggest", "runs[0].D is -3.0"),
    "optimum N negative": Case("optimum", "optimum.json", _set(N=-1), "report-optimum",
                               "N is -1"),
    "optimum weight text": Case("optimum", "optimum.json",
                                _set(target_weights={"d0": "1"}), "report-optimum",
                                "target_weights.d0 is '1'"),
    # 7. a Bayesian fit where a baseline goes
    "fit as baseline": Case("fit", "", None, "optimize-baseline", "is a Bayesian fit"),
}


def _argv(command: str, files: Files, bad: Path, out: Path) -> list[str]:
    return {
        "predict": ["predict", str(bad), "--runs", str(files.runs), "--json"],
        "optimize": ["optimize", str(bad), *PLANNED, "--json"],
        "compare": ["compare", str(bad), "--heldout", str(files.runs)],
        "suggest": ["suggest", str(bad), *PLANNED, "--mixtures", "5", "--draws", "100",
                    "--json"],
        "report": ["report", str(bad), "--out", str(out / "r.html")],
        "report-suggest": ["report", str(files.fit), "--suggest", str(bad), "--out",
                           str(out / "r.html")],
        "report-optimum": ["report", str(files.fit), "--optimum", str(bad), "--out",
                           str(out / "r.html")],
        "optimize-baseline": ["optimize", str(files.fit), *PLANNED, "--baseline", str(bad),
                              "--json"],
    }[command]


def _copy(files: Files, source: str, edit: Callable[[dict], None] | None,
          tmp_path: Path) -> Path:
    """A copy of ``source``'s directory with its JSON file read, edited (when ``edit``
    is given) and written again."""
    copy = tmp_path / source
    shutil.copytree(getattr(files, source), copy)
    meta = json.loads((copy / _JSON[source]).read_text())
    if edit is not None:
        edit(meta)
    (copy / _JSON[source]).write_text(json.dumps(meta))
    return copy


@pytest.mark.parametrize("name", list(CASES))
def test_bad_fit_files_one_line_naming_the_file_exit_2(good, tmp_path, capsys,
                                                        monkeypatch, name):
    case = CASES[name]
    bad = _copy(good, case.source, case.edit, tmp_path)
    if case.patch is not None:
        case.patch(monkeypatch, bad)
    capsys.readouterr()
    code = main(_argv(case.command, good, bad, tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("bayesmix: error: "), err
    assert str(bad / case.named if case.named else bad) in err[0], err[0]
    assert case.needle in err[0], err[0]


# --------------------------------------------------------------------------- controls


@pytest.mark.parametrize("command", ["predict", "optimize"])
@pytest.mark.parametrize("source", ["fit", "base"])
def test_rewritten_good_files_still_run(good, tmp_path, capsys, source, command):
    """Negative control of the cases: copied and rewritten with nothing changed, the
    same commands succeed (a check that refused every file would fail here)."""
    copy = _copy(good, source, None, tmp_path)
    assert main(_argv(command, good, copy, tmp_path)) == 0
    assert capsys.readouterr().out.strip()


def test_good_files_load_as_before(good, tmp_path):
    """A rewritten copy loads equal to the original: draws, scales, rows, names, and a
    baseline's every field; the optimum and the suggestion read back."""
    fit_copy = _copy(good, "fit", None, tmp_path)
    before, after = load_fit(good.fit), load_fit(fit_copy)
    for target, tf in before.targets.items():
        back = after.targets[target]
        assert (back.scales, back.likelihood, back.param_names, back.domains) == (
            tf.scales, tf.likelihood, tf.param_names, tf.domains)
        np.testing.assert_array_equal(back.rows, tf.rows)
        for name in tf.param_names:
            np.testing.assert_array_equal(back.idata.posterior[name].values,
                                          tf.idata.posterior[name].values)
    base_copy = _copy(good, "base", None, tmp_path)
    for target, result in load_baseline(good.base).items():
        copied = load_baseline(base_copy)[target]
        assert repr(copied) == repr(result)
        for name, value in result.sites.items():
            np.testing.assert_array_equal(copied.sites[name], value)
    posteriors = load_posteriors(good.fit)
    stored = read_optimum(good.optimum, posteriors)
    assert stored.report.n_params == 1e9
    assert read_suggestion(good.suggestion)["N"] == 1e9


def test_a_fit_from_before_the_sticks_still_loads(good, tmp_path, capsys):
    """A fit written before the shares were sampled in stick coordinates (its netCDF has
    no ``sticks``) holds the same parameters: it loads and predicts (the check is of the
    parameters prediction reads, not of the sampler's coordinates)."""
    import arviz as az

    copy = _copy(good, "fit", None, tmp_path)
    idata = az.from_netcdf(copy / "d0.nc")
    idata.load()
    idata.posterior = idata.posterior.drop_vars("sticks")
    (copy / "d0.nc").unlink()
    idata.to_netcdf(str(copy / "d0.nc"))
    assert "sticks" not in load_fit(copy).targets["d0"].idata.posterior
    assert main(["predict", str(copy), "--runs", str(good.runs)]) == 0
    capsys.readouterr()
