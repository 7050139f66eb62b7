"""The metadata files of fit and baseline directories: their schema, and what every
value read from them (and from a fit's netCDFs) must be.

:mod:`bayesmix.store` owns every save and load and re-exports what is public here.
This module holds the metadata's schema (:func:`metadata`), reads it
(:func:`read_metadata`: kind, format, version) and checks, once, as it is read, each
value a later stage relies on, so that a corrupt, hand-edited or foreign file is
refused in one line that names the file (and the target and the field) instead of
failing later inside a prediction, a decision or a report, or giving NaN results:

- the directory and its files can be read (permissions);
- the metadata names a law, lists targets and domains (non-empty, no name twice) and
  has an entry for every target;
- reference scales are finite positive numbers, a likelihood is one of
  :data:`~bayesmix.model.LIKELIHOODS`, rows are row numbers, parameter names are names;
- a fit's draws are its law's: every parameter the law returns (what prediction reads)
  for the fit's domains, of the shape the law gives it (the sampler's own coordinates
  may differ: a fit from before they changed still predicts); the domains the draws
  were fitted over are those ``fit.json`` lists;
- a baseline's sampled sites are finite and of the shapes its law samples.

A valid file loads as before: the checks read what is already in memory and trace the
law's shapes once per load (shapes only, nothing computed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpyro import handlers

from bayesmix._errors import BayesmixError, first_line
from bayesmix.laws import Law, trace_shapes
from bayesmix.model import LIKELIHOODS, Scales

__all__ = [
    "BASELINE_FILE",
    "FIT_FILE",
    "FORMAT",
    "arrays",
    "check_draws",
    "check_entry",
    "check_metadata",
    "check_param_names",
    "check_sites",
    "checked_dir",
    "is_file",
    "is_number",
    "LawShapes",
    "law_shapes",
    "likelihood",
    "malformed",
    "metadata",
    "read_json",
    "read_metadata",
    "row_numbers",
    "scales",
    "unreadable",
    "versions",
]

_SCALES = ("n_ref", "d_ref", "loss_scale")
_SCALES_OPTIONAL = ("n_max", "d_max")
_NOISE = ("sigma", "nu")
_NOT_NUMBERS = ("bfmi", "worst_rhat")  # the diagnostics' lists


# --------------------------------------------------------------------------- files


def unreadable(path: Path, exc: OSError) -> BayesmixError:
    """``cannot read PATH: <reason>`` for an OSError met reading ``path``."""
    return BayesmixError(f"cannot read {path}: {exc.strerror or first_line(exc)}")


def is_file(path: Path, directory: Path | None = None) -> bool:
    """``path.is_file()``; a directory that cannot be searched (permissions) is a
    one-line error naming ``directory`` (default ``path``'s parent)."""
    try:
        return path.is_file()
    except OSError as exc:
        raise unreadable(path.parent if directory is None else directory, exc) from None


def checked_dir(path: Path) -> None:
    """Refuse a missing, empty or unreadable fit directory, or a file in its place."""
    try:
        if not path.exists():
            raise BayesmixError(f"fit directory {path} does not exist")
        if not path.is_dir():
            raise BayesmixError(f"{path} is not a fit directory (not a directory)")
        if not any(path.iterdir()):
            raise BayesmixError(f"fit directory {path} is empty")
    except OSError as exc:
        raise unreadable(path, exc) from None


# --------------------------------------------------------------------------- metadata


FORMAT = 2
"""Version of the layout of fit and baseline directories (the metadata's ``"format"``)."""
FIT_FILE = "fit.json"
BASELINE_FILE = "baseline.json"
_KINDS = {FIT_FILE: "fit", BASELINE_FILE: "baseline"}


def versions() -> dict[str, str]:
    """The versions of bayesmix and of the libraries a fit depends on, for the metadata."""
    from bayesmix._version import __version__

    out = {"bayesmix": __version__}
    for package in ("numpyro", "jax", "arviz", "scipy"):
        try:
            out[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:  # pragma: no cover - installed
            out[package] = "unknown"
    return out


def metadata(kind: str, law_name: str, law_path: str, source: str | None,
             targets: list[str], domains: list[str], seed: int | None,
             settings: dict[str, Any], per_target: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a fit or baseline directory (the schema in :mod:`bayesmix.store`)."""
    return {"kind": kind, "format": FORMAT, "versions": versions(),
            "law": {"name": law_name, "path": law_path}, "source": source,
            "targets": targets, "domains": domains, "seed": seed, "settings": settings,
            "per_target": per_target}


def read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in the file ``path`` (a bayesmix ``what`` file).

    Raises
    ------
    BayesmixError
        An unreadable file, text that is not JSON, or JSON that is not an object.
    """
    try:
        payload = json.loads(path.read_text())
    except OSError as exc:
        raise unreadable(path, exc) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BayesmixError(f"cannot read {path}: {first_line(exc)}") from None
    if not isinstance(payload, dict):
        raise BayesmixError(f"{path} is not a bayesmix {what} file")
    return payload


def _major_minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def read_metadata(path: str | Path, name: str) -> dict[str, Any]:
    """Read ``path/name`` and check its kind, format and bayesmix version.

    Parameters
    ----------
    path : str or Path
        The directory.
    name : {"fit.json", "baseline.json"}

    Returns
    -------
    dict
        The metadata.

    Raises
    ------
    BayesmixError
        Missing, empty or unreadable directory; missing, unreadable or non-JSON file; a
        file of another kind, format or bayesmix major.minor version.
    """
    from bayesmix._version import __version__

    path = Path(path)
    checked_dir(path)
    meta_path = path / name
    if not is_file(meta_path, path):
        raise BayesmixError(f"{path} is not a fit directory (no {name})")
    meta = read_json(meta_path, _KINDS[name])
    recorded = meta.get("versions")
    written = str(recorded.get("bayesmix", "unknown") if isinstance(recorded, dict)
                  else "unknown")
    fmt = meta.get("format")
    if fmt != FORMAT or _major_minor(written) != _major_minor(__version__):
        raise BayesmixError(
            f"{meta_path} was written by bayesmix {written} (format {fmt}); "
            f"refit with this version ({__version__}, format {FORMAT})"
        )
    if meta.get("kind") != _KINDS[name]:
        raise BayesmixError(f"{meta_path} is not a bayesmix {_KINDS[name]} file "
                            f"(kind {meta.get('kind')!r})")
    return meta


# --------------------------------------------------------------------------- values


def malformed(where: Path, problem: str, target: str | None = None) -> BayesmixError:
    """``WHERE is malformed ([target 't': ]problem); refit``."""
    at = "" if target is None else f"target '{target}': "
    return BayesmixError(f"{where} is malformed ({at}{problem}); refit")


def is_number(value: Any) -> bool:
    """A JSON number: an int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _names(value: Any, field: str, where: Path, target: str | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(where, f"{field} is not a list of names", target)
    if not value:
        raise malformed(where, f"it lists no {field}" if target is None
                        else f"{field} is empty", target)
    if len(set(value)) < len(value):
        twice = next(v for v in value if value.count(v) > 1)
        raise malformed(where, f"{field} names '{twice}' twice", target)
    return value


def check_metadata(meta: Mapping[str, Any], where: Path) -> tuple[list[str], list[str]]:
    """The targets and domains of a fit's or baseline's metadata (``where``).

    Checks the law's name (and path), the targets and domains (non-empty lists of
    distinct names), an entry per target in ``per_target`` and the seed.

    Raises
    ------
    BayesmixError
        The first problem, naming ``where``.
    """
    law = meta.get("law")
    if not isinstance(law, dict) or not isinstance(law.get("name"), str) or not law["name"]:
        raise malformed(where, "law has no name")
    if law.get("path") is not None and not isinstance(law["path"], str):
        raise malformed(where, f"law.path is {law['path']!r}, not a path")
    targets = _names(meta.get("targets"), "targets", where)
    domains = _names(meta.get("domains"), "domains", where)
    per_target = meta.get("per_target")
    if not isinstance(per_target, dict):
        raise malformed(where, "per_target is not a mapping")
    for target in targets:
        if not isinstance(per_target.get(target), dict):
            raise malformed(where, "per_target has no entry for it", target)
    seed = meta.get("seed")
    if seed is not None and not (is_number(seed) and float(seed).is_integer()):
        raise malformed(where, f"seed is {seed!r}, not an integer")
    return targets, domains


def scales(data: Any, where: Path, target: str) -> Scales:
    """The reference scales of ``target``: every one a finite positive number."""
    if not isinstance(data, dict):
        raise malformed(where, "scales is not a mapping", target)
    unknown = sorted(set(data) - {*_SCALES, *_SCALES_OPTIONAL})
    missing = [name for name in _SCALES if name not in data]
    if unknown or missing:
        problem = (f"has no {', '.join(missing)}" if missing
                   else f"has unknown field(s) {', '.join(map(str, unknown))}")
        raise malformed(where, f"scales {problem}", target)
    for name, value in data.items():
        if not (is_number(value) and math.isfinite(value) and value > 0):
            raise malformed(where, f"scales.{name} is {value!r}, not a finite positive "
                                   f"number", target)
    return Scales(**data)


def likelihood(value: Any, where: Path, target: str, field: str = "likelihood") -> str:
    """``value`` if it is one of :data:`~bayesmix.model.LIKELIHOODS`."""
    if not isinstance(value, str) or value not in LIKELIHOODS:
        raise malformed(where, f"{field} is {value!r}, not one of {', '.join(LIKELIHOODS)}",
                        target)
    return value


def row_numbers(value: Any, where: Path, target: str, *, empty: bool = False) -> np.ndarray:
    """A list of row numbers as an int array (an empty list only if ``empty``)."""
    array = np.asarray(value) if isinstance(value, list) else np.zeros((0, 0))
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu") or (
            not array.size and not empty):
        raise malformed(where, "rows is not a list of row numbers", target)
    return array.astype(int)


def arrays(data: Any, where: Path, target: str, field: str, *, finite: bool = True,
           optional: bool = False) -> dict[str, np.ndarray] | None:
    """``{name: number or nested list}`` as float arrays; finite ones if ``finite``.
    ``optional``: None, or an empty mapping, is allowed too."""
    if data is None and optional:
        return None
    if not isinstance(data, dict) or not (data or optional):
        raise malformed(where, f"{field} is not a mapping of parameter values", target)
    out = {}
    for name, value in data.items():
        try:
            array = np.asarray(value)
        except ValueError:  # ragged lists
            array = np.asarray(None)
        if array.dtype.kind not in "iuf":
            raise malformed(where, f"{field}.{name} is not a number or an array of numbers",
                            target)
        if finite and not np.all(np.isfinite(array)):
            raise malformed(where, f"{field}.{name} is not finite", target)
        out[name] = array.astype(float)
    return out


def check_entry(info: Mapping[str, Any], where: Path, target: str) -> None:
    """The fields of a fit's ``per_target`` entry that are not read elsewhere with a
    check: its netCDF file name, warnings, diagnostics and timings."""
    name = info.get("file")
    if not isinstance(name, str) or Path(name).name != name or not name:
        raise malformed(where, f"file is {name!r}, not a file name", target)
    warnings = info.get("warnings")
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise malformed(where, "warnings is not a list of messages", target)
    for field, names in (("diagnostics", _NOT_NUMBERS), ("timings", ())):
        values = info.get(field)
        if not isinstance(values, dict):
            raise malformed(where, f"{field} is not a mapping", target)
        for key, value in values.items():
            if key not in names and not is_number(value):
                raise malformed(where, f"{field}.{key} is {value!r}, not a number", target)
    effect = info["diagnostics"].get("design_effect", 1.0)
    if not (math.isfinite(effect) and effect > 0):
        raise malformed(where, f"diagnostics.design_effect is {effect!r}, not a finite "
                               f"positive number", target)


def check_param_names(value: Any, where: Path, target: str) -> list[str]:
    """A fit's ``param_names``: a non-empty list of distinct names."""
    return list(_names(value, "param_names", where, target))


# --------------------------------------------------------------------------- the law


class LawShapes(NamedTuple):
    """What a law samples and returns for a number of domains (:func:`law_shapes`).

    Attributes
    ----------
    sampled : dict of name -> shape
        The sampled (free) sites, as :meth:`Law.site_shapes`.
    held : dict of name -> shape
        Everything a fit's draws hold of the law: sampled and deterministic sites and
        the parameters ``sample_params`` returns.
    params : tuple of str
        The names ``sample_params`` returns (a fit's ``param_names``).
    """

    sampled: dict[str, tuple[int, ...]]
    held: dict[str, tuple[int, ...]]
    params: tuple[str, ...]


def law_shapes(law: Law, k: int) -> LawShapes:
    """The shapes of ``law``'s sites and parameters for ``k`` domains.

    One shape-only trace of the law's priors, as :meth:`Law.site_shapes` makes.
    """
    k_seen = law.domains_seen(k)

    def values(key: Any) -> tuple[dict[str, Any], ...]:
        tracer = handlers.trace(handlers.seed(law.sample_params, key))
        params = dict(tracer(k_seen, 1.0))
        sampled = {name: site["value"] for name, site in tracer.trace.items()
                   if site["type"] == "sample" and not site["is_observed"]}
        derived = {name: site["value"] for name, site in tracer.trace.items()
                   if site["type"] == "deterministic"}
        return sampled, {**sampled, **derived, **params}, params

    sampled, held, params = trace_shapes(values)
    return LawShapes({name: tuple(np.shape(v)) for name, v in sampled.items()},
                     {name: tuple(np.shape(v)) for name, v in held.items()}, tuple(params))


def _listed(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(name + (f"[{','.join(map(str, s))}]" if s else "")
                     for name, s in sorted(shapes.items()))


def check_sites(sites: Mapping[str, np.ndarray], law: Law, shapes: LawShapes,
                where: Path, target: str) -> None:
    """A baseline's sampled sites: the names and shapes ``law`` samples (``shapes``)."""
    stored = {name: tuple(np.shape(v)) for name, v in sites.items()}
    sampled = shapes.sampled
    if stored != sampled:
        raise BayesmixError(
            f"{where}: target '{target}' stores the parameters {_listed(stored)}, but law "
            f"'{law.name}' samples {_listed(sampled)} (written by another version of "
            f"bayesmix or of the law file); refit it")


def check_draws(idata: Any, nc: Path, where: Path, target: str, law: Law,
                domains: tuple[str, ...], shapes: LawShapes,
                param_names: list[str]) -> None:
    """A fit's draws (``nc``) against its metadata (``where``) and law.

    The constant data (when read) must be over the domains ``where`` lists; the
    posterior must hold ``law``'s parameters for those domains (``shapes.params``, what
    prediction reads, from :func:`law_shapes`) with their shapes; the metadata's
    ``param_names`` must be the law's. Sampled-only sites may differ: a fit written
    before a law's sampling coordinates changed (the shares' sticks, 2026-12-06) holds
    the same parameters and still predicts.

    Raises
    ------
    BayesmixError
        Naming ``nc`` (draws of another law, or over other domains) or ``where``.
    """
    if "constant_data" in idata.groups() and "weight_domain" in idata.constant_data.coords:
        fitted = tuple(str(d) for d in idata.constant_data["weight_domain"].values)
        if fitted != tuple(domains):
            raise BayesmixError(f"{where} lists the domains {', '.join(domains)} but {nc} "
                                f"was fitted over {', '.join(fitted)}; refit or restore it")
    post = idata.posterior
    held = {name: shapes.held[name] for name in shapes.params}
    stored = {str(name): tuple(post[name].shape[2:]) for name in post.data_vars
              if name not in _NOISE}
    lacking = sorted(set(held) - set(stored))
    problems = [f"{name} of shape {stored[name]}, not {shape}"
                for name, shape in sorted(held.items())
                if name in stored and stored[name] != shape]
    if lacking:
        problems.insert(0, f"no draws of {', '.join(lacking)}")
    if problems:
        raise BayesmixError(
            f"{nc}: target '{target}' stores parameters that are not those of law "
            f"'{law.name}' for {len(domains)} domains ({'; '.join(problems)}): a fit of "
            f"another law or other domains, or written by another version of bayesmix or "
            f"of the law file; refit it")
    if sorted(param_names) != sorted(shapes.params):
        raise malformed(where, f"param_names {', '.join(param_names)} are not the "
                               f"parameters of law '{law.name}', "
                               f"{', '.join(shapes.params)}", target)
    if post.sizes.get("chain", 0) * post.sizes.get("draw", 0) == 0:
        raise BayesmixError(f"{nc} holds no posterior draws; refit or restore it")
