"""Reference mixtures a decision is compared with: uniform, natural, or read from a file.

``decide`` compares ``h_bayes`` with each reference (predicted objective, P(h_bayes
better), expected regret). This module turns a user's description of the references
into mixtures; it knows nothing of laws or posteriors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bayesmix._errors import BayesmixError

__all__ = ["read_reference_file", "reference_mixtures"]


def read_reference_file(path: str | Path, domains: Sequence[str], *,
                        what: str = "reference mixtures") -> dict[str, np.ndarray]:
    """Mixtures from a CSV with one mixture per row (``what`` names the file in errors).

    Columns are named by domain, ``h_<domain>`` or ``weight_<domain>``; an optional
    ``name`` column names the rows (otherwise the file's stem, indexed when it has
    several rows).

    Returns
    -------
    dict of name -> ndarray, shape ``(k,)``, in ``domains`` order

    Raises
    ------
    BayesmixError
        Unreadable file, no row, no column for a domain, a blank or non-numeric
        weight, or two rows of one name.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BayesmixError(f"cannot read {what} {path}: {exc}") from None
    if frame.empty:
        raise BayesmixError(f"{what} {path} have no rows")
    columns = []
    for d in domains:
        found = [c for c in (d, f"h_{d}", f"weight_{d}") if c in frame.columns]
        if not found:
            raise BayesmixError(f"{what} {path} have no column for domain '{d}' "
                                f"(expected {d}, h_{d} or weight_{d})")
        columns.append(found[0])
    numbers = frame[columns].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(numbers.to_numpy(float))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise BayesmixError(f"{what} {path}: column '{columns[col]}' is blank, "
                            f"non-numeric or infinite in row {row + 1} "
                            f"('{frame[columns[col]].iloc[row]}')")
    values = numbers.to_numpy(float)
    stem = Path(path).stem
    names = (frame["name"].astype(str).tolist() if "name" in frame.columns
             else [stem if len(frame) == 1 else f"{stem}[{i}]" for i in range(len(frame))])
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise BayesmixError(f"{what} {path}: the name '{twice}' is given to two rows")
    return dict(zip(names, values, strict=True))


def reference_mixtures(items: Sequence[str] | None, domains: Sequence[str],
                       tokens: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """The mixtures named by ``items``: ``"uniform"``, ``"natural"`` or a CSV path.

    Parameters
    ----------
    items : sequence of str, optional
        Default ``["uniform"]``.
    domains : sequence of str
        The order of the weights.
    tokens : mapping domain -> float, optional
        Available tokens per domain; ``"natural"`` is their proportions.

    Raises
    ------
    BayesmixError
        No domain; ``"natural"`` without a token count for every domain, or counts
        summing to 0; an unreadable file.
    """
    if not domains:
        raise BayesmixError("reference mixtures need at least one domain, the fits have none")
    tokens = dict(tokens or {})
    out: dict[str, np.ndarray] = {}
    for item in items or ["uniform"]:
        if item == "uniform":
            out["uniform"] = np.full(len(domains), 1.0 / len(domains))
        elif item == "natural":
            missing = [d for d in domains if d not in tokens]
            if missing:
                raise BayesmixError(f"the natural mixture needs tokens for every domain; "
                                    f"missing {', '.join(missing)}")
            counts = np.array([tokens[d] for d in domains], float)
            if counts.sum() <= 0:
                raise BayesmixError("the natural mixture: tokens sum to zero")
            out["natural"] = counts / counts.sum()
        else:
            out.update(read_reference_file(item, domains))
    return out
