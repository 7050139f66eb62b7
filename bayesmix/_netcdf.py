"""A fit's netCDF files, read for :mod:`bayesmix.store` (which owns every save and load).

One ArviZ netCDF per target: all its groups, or only those a command needs (a fit's
``posterior_predictive`` and ``log_likelihood`` hold draws x rows each, 25 MB a target
on the paper split, and ``predict`` and ``optimize`` read the posterior with the small
constant and observed data, the rows and their losses); then
checked to be the fit's own, so that a file copied from another fit is refused by
name instead of failing later inside a computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix._errors import BayesmixError, first_line
from bayesmix._fitfile import unreadable

__all__ = ["read_target_netcdf"]

_UNREADABLE = (OSError, ValueError, KeyError, RuntimeError, TypeError)


def _read(path: Path, groups: tuple[str, ...] | None) -> Any:
    import arviz as az

    if groups is None:
        # every group in memory now: arviz reads lazily by default, and a lazy group
        # reads the file again when first used (gone, for an unpacked job)
        with az.rc_context(rc={"data.load": "eager"}):
            return az.from_netcdf(str(path))
    import h5netcdf
    import xarray as xr

    with h5netcdf.File(str(path), mode="r") as handle:
        present = set(handle.groups)
    read = {}
    for group in (g for g in groups if g in present):
        with xr.open_dataset(str(path), group=f"/{group}", engine="h5netcdf") as data:
            read[group] = data.load()
    return az.InferenceData(**read)


def read_target_netcdf(path: Path, param_names: Sequence[str], rows: np.ndarray,
                       groups: tuple[str, ...] | None = None) -> Any:
    """The InferenceData of one target of a fit: every group, or only ``groups``.

    Raises
    ------
    BayesmixError
        The file cannot be read (permissions), is corrupt, holds no posterior, lacks a
        parameter the fit's metadata names (another law's fit), or was fitted to
        other rows.
    """
    try:
        with open(path, "rb"):  # permissions: say so, not "corrupt"
            pass
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        idata = _read(path, groups)
    except _UNREADABLE as exc:
        raise BayesmixError(f"{path} is corrupt or truncated ({type(exc).__name__}: "
                            f"{first_line(exc)}); refit or restore it") from None
    if "posterior" not in idata.groups():
        raise BayesmixError(f"{path} holds no posterior draws; refit or restore it")
    missing = [n for n in (*param_names, "sigma", "nu") if n not in idata.posterior]
    if missing:
        raise BayesmixError(f"{path} is not this fit's: its draws lack {', '.join(missing)} "
                            f"(a file of another fit?); refit or restore it")
    if "constant_data" in idata.groups() and not np.array_equal(
            np.asarray(idata.constant_data["rows"].values, int), np.asarray(rows, int)):
        raise BayesmixError(f"{path} is not this fit's: it was fitted to other rows (a file "
                            f"of another fit?); refit or restore it")
    return idata
