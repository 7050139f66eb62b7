"""Read what a fit left on disk: a Bayesian fit dir or a point-estimate baseline dir.

Every command that consumes a fit (predict, optimize, compare, ...) calls
:func:`load_posteriors`, which returns one :class:`~bayesmix.model.TargetPosterior`
per target whatever the method, and refuses directories written by another
format or another bayesmix version in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bayesmix._errors import BayesmixError
from bayesmix.laws import Law, load_law
from bayesmix.model import TargetPosterior

__all__ = ["BASELINE_FORMAT", "FIT_FORMAT", "check_fit_dir", "law_of_fit", "load_posteriors"]

FIT_FORMAT = 1
"""Version of the layout of a fit directory (``fit.json`` ``"format"``)."""
BASELINE_FORMAT = 1
"""Version of the layout of a baseline directory (``baseline.json`` ``"format"``)."""
_FORMATS = {"fit.json": FIT_FORMAT, "baseline.json": BASELINE_FORMAT}
_KINDS = {"fit.json": "bayes", "baseline.json": "baseline"}


def _major_minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def check_fit_dir(path: str | Path, name: str) -> dict[str, Any]:
    """Read ``path/name`` and check its format and bayesmix version.

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
        Missing or unreadable file, or another format or bayesmix major.minor version.
    """
    from bayesmix import __version__

    path = Path(path)
    meta_path = path / name
    if not meta_path.is_file():
        raise BayesmixError(f"{path} is not a fit directory (no {name})")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BayesmixError(f"cannot read {meta_path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("kind", _KINDS[name]) != _KINDS[name]:
        raise BayesmixError(f"{meta_path} is not a bayesmix {name} file")
    written = str(meta.get("versions", {}).get("bayesmix", "unknown"))
    fmt = meta.get("format")
    if fmt != _FORMATS[name] or _major_minor(written) != _major_minor(__version__):
        raise BayesmixError(
            f"fit directory {path} was written by bayesmix {written} (format {fmt}); "
            f"refit with this version ({__version__}, format {_FORMATS[name]})"
        )
    return meta


def law_of_fit(name: str, path: str | None) -> Law:
    """The law a fit was made with: its file if it is still there, else the built-in name.

    Raises
    ------
    BayesmixError
        The file now defines a law of another name.
    """
    file = Path(path) if path else None
    law = load_law(file) if file is not None and file.is_file() else load_law(name)
    if law.name != name:
        raise BayesmixError(
            f"law file {law.path} now defines law '{law.name}'; the fit was made with '{name}'"
        )
    return law


def load_posteriors(path: str | Path) -> dict[str, TargetPosterior]:
    """Posteriors (or point estimates) per target from a fit or baseline directory.

    Parameters
    ----------
    path : str or Path
        A directory holding ``fit.json`` (from ``bayesmix fit``) or ``baseline.json``
        (from ``bayesmix baseline``).

    Returns
    -------
    dict of target -> TargetPosterior

    Raises
    ------
    BayesmixError
        Not a fit directory, or written by another format or bayesmix version.
    """
    path = Path(path)
    if not path.is_dir():
        raise BayesmixError(f"fit directory {path} does not exist")
    if (path / "fit.json").is_file():
        from bayesmix.fit import load_fit

        return load_fit(path).posteriors
    if (path / "baseline.json").is_file():
        from bayesmix.baseline import load_baseline

        return load_baseline(path)
    raise BayesmixError(f"{path} is not a fit directory (no fit.json or baseline.json)")
