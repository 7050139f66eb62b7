"""Every save and load of fits and baselines: one metadata schema, one format version.

A fit directory holds ``fit.json`` and one ArviZ netCDF per target (from
:func:`save_fit`); a baseline directory holds ``baseline.json`` (from
:func:`save_baseline`). Both metadata files share one schema::

    {"kind": "fit" | "baseline", "format": 2,
     "versions": {"bayesmix": ..., "numpyro": ..., "jax": ..., "arviz": ..., "scipy": ...},
     "law": {"name": ..., "path": ...}, "source": ..., "targets": [...],
     "domains": [...], "seed": ..., "settings": {...},
     "per_target": {target: {...}}}

Every consumer of a fit (``predict``, ``optimize``, ...) calls :func:`load_posteriors`,
which returns one :class:`~bayesmix.model.TargetPosterior` per target whatever the
method. A missing, empty, unreadable, foreign, older or corrupt directory gives a
one-line :class:`~bayesmix.BayesmixError` naming the file: every value read is checked
as it is read (:mod:`bayesmix._fitfile`: types, finite positive scales, the
likelihood, non-empty targets and domains, the draws against the law), so that no
later stage meets a bad value; the schema, :func:`read_metadata` and the checks
live there, re-exported here. This module sits above :mod:`bayesmix.fit` and
:mod:`bayesmix.baseline`, which do no I/O.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from bayesmix import _fitfile as check
from bayesmix._errors import BayesmixError, first_line
from bayesmix._fitfile import (
    BASELINE_FILE,
    FIT_FILE,
    FORMAT,
    is_file,
    metadata,
    read_metadata,
)
from bayesmix._fitfile import checked_dir as _checked_dir
from bayesmix._io import atomic_dir
from bayesmix._netcdf import read_target_netcdf
from bayesmix.baseline import BaselineResult
from bayesmix.diagnostics import Diagnostics
from bayesmix.discrepancy import Discrepancy
from bayesmix.fit import Fit, NutsSettings, TargetFit, Timings
from bayesmix.laws import Law, load_law
from bayesmix.model import TargetPosterior

__all__ = [
    "BASELINE_FILE",
    "FIT_FILE",
    "FORMAT",
    "law_of_fit",
    "load_baseline",
    "load_baseline_posteriors",
    "load_fit",
    "load_fit_or_posteriors",
    "load_posteriors",
    "read_metadata",
    "save_baseline",
    "save_fit",
]

_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _file_names(targets: list[str]) -> dict[str, str]:
    """A netCDF file name per target: the name with anything but letters, digits, ``.``,
    ``-`` and ``_`` made ``_`` (a target ``paloma/c4`` is no directory), numbered
    where two would collide (case-insensitively, for macOS and Windows)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for target in targets:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", target).lstrip(".") or "target"
        name, i = f"{stem}.nc", 1
        while name.lower() in taken:
            i += 1
            name = f"{stem}_{i}.nc"
        taken.add(name.lower())
        names[target] = name
    return names


def law_of_fit(name: str, path: str | None) -> Law:
    """The law a fit was made with: its file if it is still there (and readable), else
    the built-in name.

    Raises
    ------
    BayesmixError
        The file now defines a law of another name.
    """
    file = Path(path) if path else None
    try:
        readable = file is not None and file.is_file() and os.access(file, os.R_OK)
    except OSError:  # a directory on its path that this user cannot search
        readable = False
    if readable:
        law = load_law(file)
    else:
        try:
            law = load_law(name)
        except BayesmixError as exc:
            raise BayesmixError(f"{exc}: the fit's law file {path or '(none)'} is gone and "
                                f"'{name}' is not a built-in law") from None
    if law.name != name:
        raise BayesmixError(
            f"law file {law.path} now defines law '{law.name}'; the fit was made with '{name}'"
        )
    return law


def _law_of(meta_path: Path, name: str, path: str | None) -> Law:
    try:
        return law_of_fit(name, path)
    except BayesmixError as exc:
        raise BayesmixError(f"{meta_path}: {exc}") from None


# --------------------------------------------------------------------------- fits


def save_fit(fit: Fit, out_dir: str | Path) -> Path:
    """Write a netCDF file per target and ``fit.json`` into ``out_dir``, atomically.

    The directory appears whole or not at all: an interrupted save leaves ``out_dir``
    as it was.

    Parameters
    ----------
    fit : Fit
    out_dir : str or Path

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    files = _file_names(list(fit.targets))
    per_target = {}
    for target, f in fit.targets.items():
        per_target[target] = {
            "file": files[target],
            "scales": f.scales.to_dict(),
            "rows": [int(r) for r in f.rows],
            "param_names": list(f.param_names),
            "likelihood": f.likelihood,
            "diagnostics": f.diagnostics.to_dict(),
            "warnings": list(f.warnings),
            "timings": f.timings._asdict(),
            "settings": None if f.settings is None else f.settings.to_dict(),
            "discrepancy": None if f.discrepancy is None else f.discrepancy.to_dict(),
        }
    first = next(iter(fit.targets.values()), None)
    settings = {} if first is None or first.settings is None else {
        name: value for name, value in first.settings.to_dict().items() if name != "kept_draws"}
    meta = metadata("fit", fit.law.name, str(fit.law.path), fit.source, list(fit.targets),
                     list(fit.domains), fit.seed, settings, per_target)
    with atomic_dir(out_dir) as tmp:
        _drop_replaced_fit(tmp, set(files.values()))
        for target, f in fit.targets.items():
            f.idata.to_netcdf(str(tmp / files[target]))
        (tmp / FIT_FILE).write_text(json.dumps(meta, indent=2, default=float) + "\n")
    return out_dir


def _drop_replaced_fit(folder: Path, keep: set[str]) -> None:
    """The netCDFs of a fit saved in ``folder`` before (named by its ``fit.json``) that
    the new fit does not write: a fit's files all belong to one fit."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        old = json.loads((folder / FIT_FILE).read_text())["per_target"]
        for info in old.values():
            name = Path(str(info["file"])).name
            if name not in keep and name.endswith(".nc"):
                (folder / name).unlink(missing_ok=True)


def _discrepancy(data: Any, where: Path, target: str) -> Discrepancy | None:
    return None if data is None else Discrepancy.from_dict(data, f"{where} ({target})")


def load_fit(path: str | Path, law: Law | None = None, *,
             groups: tuple[str, ...] | None = None) -> Fit:
    """Load a fit directory written by :func:`save_fit`.

    Parameters
    ----------
    path : str or Path
    law : Law, optional
        The law to attach (a fit made elsewhere, whose law file's path is not this
        machine's); by default the law the metadata names (:func:`law_of_fit`).
    groups : tuple of str, optional
        The InferenceData groups to read (default every one). ``("posterior",)`` is
        enough for :attr:`Fit.posteriors` and is read several times faster;
        ``"constant_data"`` beside it checks that each file was fitted to the fit's rows.

    Raises
    ------
    BayesmixError
        See :func:`read_metadata`; also a netCDF named in ``fit.json`` that is missing,
        truncated or corrupt, ``law`` of another name than the fit's, a malformed
        field of ``fit.json`` (no targets or domains, scales that are not finite
        positive numbers, an unknown likelihood, ...) or draws that are not the law's
        for the fit's domains (:mod:`bayesmix._fitfile`).
    """
    path = Path(path)
    meta = read_metadata(path, FIT_FILE)
    where = path / FIT_FILE
    try:
        targets, domain_list = check.check_metadata(meta, where)
        if law is None:
            law = _law_of(where, meta["law"]["name"], meta["law"].get("path"))
        elif law.name != meta["law"]["name"]:
            raise BayesmixError(f"{where} is a fit of law '{meta['law']['name']}', "
                                f"not '{law.name}'")
        domains = tuple(domain_list)
        shapes = check.law_shapes(law, len(domains))
        fits = {}
        for target in targets:
            info = meta["per_target"][target]
            check.check_entry(info, where, target)
            nc = path / info["file"]
            if not is_file(nc, path):
                raise BayesmixError(f"fit directory {path} lacks {info['file']} named in "
                                    f"{FIT_FILE}")
            rows = check.row_numbers(info["rows"], where, target)
            names = check.check_param_names(info["param_names"], where, target)
            idata = read_target_netcdf(nc, names, rows, groups)
            check.check_draws(idata, nc, where, target, law, domains, shapes, names)
            fits[target] = TargetFit(
                target=target, law=law, domains=domains,
                scales=check.scales(info["scales"], where, target), rows=rows,
                likelihood=check.likelihood(info["likelihood"], where, target),
                idata=idata, param_names=names,
                diagnostics=Diagnostics.from_dict(info["diagnostics"]),
                warnings=list(info["warnings"]), timings=Timings(**info["timings"]),
                settings=None if info["settings"] is None else NutsSettings(**info["settings"]),
                discrepancy=_discrepancy(info.get("discrepancy"), where, target),
            )
        seed = -1 if meta["seed"] is None else int(meta["seed"])
    except BayesmixError:
        raise
    except _MALFORMED as exc:
        raise BayesmixError(f"{where} is malformed ({type(exc).__name__}: "
                            f"{first_line(exc)}); refit") from None
    return Fit(law=law, targets=fits, domains=domains, seed=seed,
               source=str(meta.get("source") or "<unknown>"))


# --------------------------------------------------------------------------- baselines


def _jsonable(values: dict[str, np.ndarray] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {name: np.asarray(v, float).tolist() for name, v in values.items()}


def save_baseline(
    results: dict[str, BaselineResult],
    out_dir: str | Path,
    *,
    settings: dict[str, Any] | None = None,
    source: str | None = None,
) -> Path:
    """Write ``baseline.json`` into ``out_dir`` atomically; returns its path.

    Every field of every :class:`~bayesmix.baseline.BaselineResult` is kept, so
    :func:`load_baseline` gives the results back equal. ``settings`` (the options
    used; its ``"seed"`` is recorded as the seed) and ``source`` (the run table) are
    recorded as given.
    """
    if not results:
        raise BayesmixError("no baseline result to save")
    first = next(iter(results.values()))
    per_target = {
        target: {
            "scales": r.scales.to_dict(),
            "sites": _jsonable(r.sites),
            "params": _jsonable(r.params),
            "natural": _jsonable(r.natural),
            "huber": r.huber,
            "train_mre": r.train_mre,
            "n_lbfgs_calls": r.n_lbfgs_calls,
            "n_evaluations": r.n_evaluations,
            "trace": np.asarray(r.trace, float).tolist(),
            "seconds": r.seconds,
            "seconds_to_best": r.seconds_to_best,
            "success": r.success,
            "message": r.message,
            "residuals": r.residuals,
            "delta": r.delta,
            "n_rows": r.n_rows,
            "rows": np.asarray(r.rows, int).tolist(),
            "fixed": dict(r.fixed),
        }
        for target, r in results.items()
    }
    settings = dict(settings or {})
    seed = settings.get("seed")
    meta = metadata("baseline", first.law, first.law_path, source, list(results),
                     list(first.domains), None if seed is None else int(seed), settings,
                     per_target)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / BASELINE_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir / BASELINE_FILE


def _baseline_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.name == BASELINE_FILE and is_file(path) else path


def load_baseline(path: str | Path) -> dict[str, BaselineResult]:
    """Read a baseline directory written by :func:`save_baseline`.

    Parameters
    ----------
    path : str or Path
        The directory (or its ``baseline.json``).

    Returns
    -------
    dict of target -> BaselineResult
        Equal, field by field, to the results that were saved.
    """
    path = _baseline_dir(path)
    meta = read_metadata(path, BASELINE_FILE)
    where = path / BASELINE_FILE
    try:
        targets, domains = check.check_metadata(meta, where)
        law = meta["law"]
        out = {}
        for target in targets:
            e = meta["per_target"][target]
            out[target] = BaselineResult(
                target=target, law=law["name"],
                sites=check.arrays(e["sites"], where, target, "sites"),
                params=check.arrays(e["params"], where, target, "params", finite=False,
                                    optional=True),
                natural=check.arrays(e["natural"], where, target, "natural", finite=False,
                                     optional=True),
                huber=float(e["huber"]), train_mre=float(e["train_mre"]),
                n_lbfgs_calls=int(e["n_lbfgs_calls"]), n_evaluations=int(e["n_evaluations"]),
                trace=np.asarray(e["trace"], float).reshape(-1, 2),
                seconds=float(e["seconds"]), seconds_to_best=float(e["seconds_to_best"]),
                success=bool(e["success"]), message=str(e["message"]),
                scales=check.scales(e["scales"], where, target), domains=tuple(domains),
                residuals=check.likelihood(e["residuals"], where, target, "residuals"),
                delta=float(e["delta"]), n_rows=int(e["n_rows"]),
                rows=check.row_numbers(e["rows"], where, target, empty=True),
                law_path=str(law.get("path") or ""),
                fixed={name: float(v) for name, v in e["fixed"].items()},
            )
    except BayesmixError:
        raise
    except _MALFORMED as exc:
        raise BayesmixError(f"{where} is malformed ({type(exc).__name__}: "
                            f"{first_line(exc)}); refit") from None
    return out


def _baseline_posteriors(path: Path) -> dict[str, TargetPosterior]:
    results = load_baseline(path)  # at least one target
    first = next(iter(results.values()))
    law = _law_of(path / BASELINE_FILE, first.law, first.law_path)
    shapes = check.law_shapes(law, len(first.domains))
    for target, r in results.items():
        check.check_sites(r.sites, law, shapes, path / BASELINE_FILE, target)
    # the derived parameters are recomputed from the stored sites by the law file
    return {target: TargetPosterior.from_sites(
                law, target, r.domains, r.scales,
                {name: jnp.asarray(v, float) for name, v in r.sites.items()},
                likelihood=r.residuals)
            for target, r in results.items()}


def load_baseline_posteriors(path: str | Path) -> dict[str, TargetPosterior]:
    """A baseline directory's point estimates per target (``S = 1``, no noise).

    Parameters
    ----------
    path : str or Path
        A directory holding ``baseline.json`` (from :func:`save_baseline`), or that file.

    Returns
    -------
    dict of target -> TargetPosterior

    Raises
    ------
    BayesmixError
        A Bayesian fit's directory (naming it), or any problem :func:`load_posteriors`
        reports.
    """
    path = _baseline_dir(path)
    _checked_dir(path)
    if is_file(path / FIT_FILE, path):
        raise BayesmixError(f"{path} is a Bayesian fit (it holds {FIT_FILE}), not a "
                            f"baseline (point fit) directory")
    return load_posteriors(path)


# --------------------------------------------------------------------------- either


def load_posteriors(path: str | Path) -> dict[str, TargetPosterior]:
    """Posteriors (or one-draw point estimates) per target from a fit or baseline dir.

    Parameters
    ----------
    path : str or Path
        A directory holding ``fit.json`` (from :func:`save_fit`) or ``baseline.json``
        (from :func:`save_baseline`).

    Returns
    -------
    dict of target -> TargetPosterior

    Raises
    ------
    BayesmixError
        Missing, empty or unreadable directory, neither metadata file, or any problem
        :func:`load_fit` or :func:`load_baseline` reports.
    """
    path = _baseline_dir(path)
    _checked_dir(path)
    if is_file(path / FIT_FILE, path):
        # the draws, and the rows they were fitted to (checked against fit.json) with
        # their losses: how each run moved the draws (bayesmix.coupling)
        groups = ("posterior", "constant_data", "observed_data")
        return load_fit(path, groups=groups).posteriors
    if is_file(path / BASELINE_FILE, path):
        return _baseline_posteriors(path)
    raise BayesmixError(f"{path} is not a fit directory (no {FIT_FILE} or {BASELINE_FILE})")


def load_fit_or_posteriors(path: str | Path) -> Fit | dict[str, TargetPosterior]:
    """A Bayesian fit as a :class:`Fit` (draws, log-likelihood, diagnostics), a baseline
    as its point estimates per target (what :func:`load_posteriors` returns).

    Raises
    ------
    BayesmixError
        See :func:`load_posteriors`.
    """
    path = _baseline_dir(path)
    _checked_dir(path)
    if is_file(path / FIT_FILE, path):
        return load_fit(path)
    return load_posteriors(path)
