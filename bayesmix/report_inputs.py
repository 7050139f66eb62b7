"""What a report reads besides the fits: their training runs, a decision, a suggestion.

A fit directory keeps each target's training rows (``N``, ``D``, weights and the
observed loss, in its InferenceData), so :func:`training_table` rebuilds the run table
a fit saw without the original file. :func:`read_optimum` reads an ``optimize --out``
directory and recomputes its decision from the fits with the settings it records (the
objective's draws are not stored), checking that it finds the same ``h_bayes``;
:func:`read_suggestion` reads a ``suggest --out`` directory's ``suggestion.json``.
Every problem is a one-line :class:`~bayesmix.BayesmixError` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError, first_line
from bayesmix.decision import OptimumReport, decide
from bayesmix.fit import Fit, TargetFit
from bayesmix.model import TargetPosterior
from bayesmix.runs import RunTable, load_runs

__all__ = [
    "OPTIMUM_FILE",
    "SUGGESTION_FILE",
    "StoredOptimum",
    "decision_targets",
    "read_optimum",
    "read_suggestion",
    "training_table",
]

OPTIMUM_FILE = "optimum.json"
SUGGESTION_FILE = "suggestion.json"
H_BAYES_TOL = 1e-3
"""Largest difference per weight between a stored and a recomputed ``h_bayes``."""


def _target_frame(fit: TargetFit) -> pd.DataFrame:
    """One target's training rows: ``N``, ``D``, ``h_<domain>``, ``loss_<target>``."""
    data = fit.idata.constant_data
    observed = np.asarray(fit.idata.observed_data["obs"].values, float)
    loss = np.exp(observed) if fit.likelihood == "log" else observed
    weights = np.asarray(data["weights"].values, float)
    frame = pd.DataFrame(weights, columns=[f"h_{d}" for d in fit.domains],
                         index=np.asarray(data["rows"].values, int))
    frame.insert(0, "D", np.asarray(data["D"].values, float))
    frame.insert(0, "N", np.asarray(data["N"].values, float))
    frame[f"loss_{fit.target}"] = loss
    return frame


def _fit_frame(fit: Fit) -> pd.DataFrame:
    frame = None
    for target_fit in fit.targets.values():
        part = _target_frame(target_fit)
        frame = part if frame is None else frame.combine_first(part)
    if frame is None:
        raise BayesmixError("a fit without targets has no training runs")
    columns = ["N", "D", *[f"h_{d}" for d in fit.domains],
               *[f"loss_{t}" for t in fit.targets]]
    return frame.sort_index()[columns]


def training_table(fits: Fit | Mapping[str, Fit]) -> RunTable:
    """The training runs of a fit (or the union of several fits' runs) as a run table.

    Rows of fits made from the same source are matched by their row numbers there,
    so a run two fits share appears once; each target's loss is the one its fit saw.

    Parameters
    ----------
    fits : Fit or dict label -> Fit

    Returns
    -------
    RunTable
        Validated by :func:`bayesmix.load_runs`; rows numbered from 1.
    """
    fits = {"fit": fits} if isinstance(fits, Fit) else dict(fits)
    by_source: dict[str, pd.DataFrame] = {}
    for fit in fits.values():
        frame = _fit_frame(fit)
        old = by_source.get(fit.source)
        by_source[fit.source] = frame if old is None else old.combine_first(frame)
    frame = pd.concat(list(by_source.values()), ignore_index=True)
    first = next(iter(fits.values()))
    columns = ["N", "D", *[f"h_{d}" for d in first.domains],
               *dict.fromkeys(c for c in frame.columns if c.startswith("loss_"))]
    return load_runs(frame[columns], name=f"training runs of {', '.join(by_source)}")


def decision_targets(fits: Mapping[str, Fit]) -> dict[str, tuple[str, TargetFit]]:
    """For every target, the first fit (in the order given) that holds it.

    Returns
    -------
    dict target -> (label, TargetFit)

    Raises
    ------
    BayesmixError
        No fit, or fits over different training domains.
    """
    if not fits:
        raise BayesmixError("a report needs at least one fit")
    out: dict[str, tuple[str, TargetFit]] = {}
    domains = next(iter(fits.values())).domains
    for label, fit in fits.items():
        if not isinstance(fit, Fit):
            raise BayesmixError(f"{label} is not a Bayesian fit (a baseline? pass it as "
                                f"the baseline)")
        if fit.domains != domains:
            raise BayesmixError(f"fit {label} has domains {fit.domains} but the first fit "
                                f"has {domains}: fits in one report share their domains")
        for target, target_fit in fit.targets.items():
            out.setdefault(target, (label, target_fit))
    return out


def _read_json(path: Path, what: str, writer: str) -> dict[str, Any]:
    directory = path.parent
    if not directory.is_dir():
        raise BayesmixError(f"{what} directory {directory} does not exist")
    if not path.is_file():
        raise BayesmixError(f"{directory} has no {path.name} (write one with {writer})")
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BayesmixError(f"cannot read {path}: {first_line(exc)}") from None
    if not isinstance(payload, dict):
        raise BayesmixError(f"{path} is not a bayesmix {what} file")
    return payload


class StoredOptimum(NamedTuple):
    """A decision read from an ``optimize --out`` directory and recomputed.

    Attributes
    ----------
    report : OptimumReport
        Recomputed from the fits with the file's scale, target weights, bounds and
        mixtures.
    path : list of dict or None
        The file's ``h*(N, D)`` path (``--path-flops``), None when it has none.
    source : str
        The file.
    """

    report: OptimumReport
    path: list[dict[str, Any]] | None
    source: str


def read_optimum(directory: str | Path, posteriors: Mapping[str, TargetPosterior], *,
                 key: jax.Array | None = None) -> StoredOptimum:
    """Read ``optimum.json`` and recompute its decision from ``posteriors``.

    ``optimum.json`` holds summaries, not the objective's draws, so the decision is
    made again (:func:`bayesmix.decide`) at the file's ``N``, ``D``, with its target
    weights, bounds and compared mixtures (a baseline's optimum among them, as a fixed
    mixture). The recomputed ``h_bayes`` must match the file's within
    :data:`H_BAYES_TOL` per weight: otherwise the file was made from other fits.

    Parameters
    ----------
    directory : str or Path
        Written by ``bayesmix optimize ... --out DIR``.
    posteriors : dict target -> TargetPosterior
        The fits the decision was made from.
    key : jax.Array, optional
        PRNG key of the discrepancy draws (default ``jax.random.key(0)``, as
        ``optimize``'s default ``--seed 0``).

    Returns
    -------
    StoredOptimum

    Raises
    ------
    BayesmixError
        Missing directory or file, unreadable or malformed JSON, other domains or
        targets than the fits', or an ``h_bayes`` the fits do not reproduce.
    """
    path = Path(directory) / OPTIMUM_FILE
    payload = _read_json(path, "optimum", "bayesmix optimize FIT... --N --D --out DIR")
    try:
        domains = tuple(payload["h_bayes"])
        stored = np.array([float(payload["h_bayes"][d]) for d in domains])
        weights = {str(t): float(w) for t, w in payload["target_weights"].items()}
        lower = np.array([float(payload["bounds"][d]["min"]) for d in domains])
        upper = np.array([float(payload["bounds"][d]["max"]) for d in domains])
        mixtures = {str(name): np.array([float(row["mixture"][d]) for d in domains])
                    for name, row in payload["objective"].items() if name != "h_bayes"}
        n_params, n_tokens = float(payload["N"]), float(payload["D"])
        trail = payload.get("path")
        # as optimize made it: a file without cross_target is from before the coupling
        cross = payload.get("cross_target")
        coupled = cross is not None and not cross.get(
            "disabled", "on request" in (cross.get("note") or ""))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BayesmixError(f"{path} is malformed ({type(exc).__name__}: {exc})") from None
    first = next(iter(posteriors.values()))
    if domains != first.domains:
        raise BayesmixError(f"{path} is over domains {', '.join(domains)} but the fits over "
                            f"{', '.join(first.domains)}")
    missing = sorted(set(weights) - set(posteriors))
    if missing:
        raise BayesmixError(f"{path} weighs target(s) {', '.join(missing)} that no FIT holds")
    report = decide({t: posteriors[t] for t in weights}, n_params, n_tokens,
                    target_weights=weights, lower=lower, upper=upper, references=mixtures,
                    key=key, couple_targets=coupled)
    gap = float(np.max(np.abs(report.h_bayes - stored)))
    if gap > H_BAYES_TOL:
        raise BayesmixError(f"{path} was not made from these fits: its h_bayes differs from "
                            f"theirs by up to {gap:.3g}")
    return StoredOptimum(report=report, path=trail if isinstance(trail, list) else None,
                         source=str(path))


def read_suggestion(directory: str | Path) -> dict[str, Any]:
    """``suggestion.json`` of a ``suggest --out`` directory (see the README's JSON formats).

    Raises
    ------
    BayesmixError
        Missing directory or file, unreadable JSON, or no ``runs`` list in it.
    """
    path = Path(directory) / SUGGESTION_FILE
    payload = _read_json(path, "suggestion", "bayesmix suggest FIT... --N --D --out DIR")
    if not isinstance(payload.get("runs"), list) or "reason" not in payload:
        raise BayesmixError(f"{path} is not a bayesmix suggestion file (no runs or reason)")
    return payload
