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

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError
from bayesmix._fitfile import is_file, is_number, read_json, unreadable
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
    try:
        exists = directory.is_dir()
    except OSError as exc:
        raise unreadable(directory, exc) from None
    if not exists:
        raise BayesmixError(f"{what} directory {directory} does not exist")
    if not is_file(path, directory):
        raise BayesmixError(f"{directory} has no {path.name} (write one with {writer})")
    return read_json(path, what)


def _number(value: Any, path: Path, field: str, *, positive: bool = False,
            finite: bool = True) -> float:
    """``value`` if it is a number (finite, positive when asked), else a one-line error
    naming the file and the field. Where a non-finite number is allowed, null (how the
    CLI writes one) reads as NaN."""
    if value is None and not finite:
        return float("nan")
    if (not is_number(value) or (finite and not math.isfinite(value))
            or (positive and not value > 0)):
        kind = ("a finite positive number" if positive else
                "a finite number" if finite else "a number")
        raise BayesmixError(f"{path} is malformed ({field} is {value!r}, not {kind})")
    return float(value)


def _mapping(value: Any, path: Path, field: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise BayesmixError(f"{path} is malformed ({field} is not a mapping)")
    return value


def _mixture(value: Any, path: Path, field: str, domains: tuple[str, ...]) -> np.ndarray:
    """A mixture ``{domain: weight}`` over ``domains`` as an array, each weight checked."""
    value = _mapping(value, path, field)
    if set(value) != set(domains):
        raise BayesmixError(f"{path} is malformed ({field} is over {', '.join(value)}, not "
                            f"{', '.join(domains)})")
    return np.array([_number(value[d], path, f"{field}.{d}") for d in domains])


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
    discrepancy : bool
        Whether the decision was made with the fits' discrepancy terms (false: with
        ``--no-discrepancy``, and so recomputed).
    """

    report: OptimumReport
    path: list[dict[str, Any]] | None
    source: str
    discrepancy: bool = True


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
        PRNG key of the discrepancy draws for a file that does not record its ``seed``
        (default ``jax.random.key(0)``, as ``optimize``'s default ``--seed 0``). A
        file's ``seed`` and ``discrepancy`` (false: made with ``--no-discrepancy``)
        are used as ``optimize`` used them.

    Returns
    -------
    StoredOptimum

    Raises
    ------
    BayesmixError
        Missing or unreadable directory or file, unreadable or malformed JSON (``N``
        and ``D`` not finite positive numbers, a weight or bound not a finite number),
        other domains or targets than the fits', or an ``h_bayes`` the fits do not
        reproduce.
    """
    path = Path(directory) / OPTIMUM_FILE
    payload = _read_json(path, "optimum", "bayesmix optimize FIT... --N --D --out DIR")
    try:
        domains = tuple(_mapping(payload["h_bayes"], path, "h_bayes"))
        stored = _mixture(payload["h_bayes"], path, "h_bayes", domains)
        weights = {str(t): _number(w, path, f"target_weights.{t}") for t, w in
                   _mapping(payload["target_weights"], path, "target_weights").items()}
        bounds = _mapping(payload["bounds"], path, "bounds")
        lower = np.array([_number(bounds[d]["min"], path, f"bounds.{d}.min") for d in domains])
        upper = np.array([_number(bounds[d]["max"], path, f"bounds.{d}.max") for d in domains])
        mixtures = {str(name): _mixture(row["mixture"], path, f"objective.{name}.mixture",
                                        domains)
                    for name, row in _mapping(payload["objective"], path, "objective").items()
                    if name != "h_bayes"}
        n_params = _number(payload["N"], path, "N", positive=True)
        n_tokens = _number(payload["D"], path, "D", positive=True)
        trail = payload.get("path")
        # as optimize made it: a file without cross_target is from before the coupling
        cross = payload.get("cross_target")
        coupled = cross is not None and not cross.get(
            "disabled", "on request" in (cross.get("note") or ""))
        # files from before these were recorded: optimize's defaults then
        seed = payload.get("seed", None)
        with_term = payload.get("discrepancy", True)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BayesmixError(f"{path} is malformed (seed is {seed!r}, not a whole number)")
        if not isinstance(with_term, bool):
            raise BayesmixError(f"{path} is malformed (discrepancy is {with_term!r}, not "
                                "true or false)")
    except BayesmixError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BayesmixError(f"{path} is malformed ({type(exc).__name__}: {exc})") from None
    first = next(iter(posteriors.values()))
    if domains != first.domains:
        raise BayesmixError(f"{path} is over domains {', '.join(domains)} but the fits over "
                            f"{', '.join(first.domains)}")
    missing = sorted(set(weights) - set(posteriors))
    if missing:
        raise BayesmixError(f"{path} weighs target(s) {', '.join(missing)} that no FIT holds")
    chosen = {t: posteriors[t] for t in weights}
    if not with_term:  # made with --no-discrepancy
        from bayesmix.predict import law_only

        chosen = law_only(chosen)
    if seed is not None:
        key = jax.random.key(seed)
    report = decide(chosen, n_params, n_tokens, target_weights=weights, lower=lower,
                    upper=upper, references=mixtures, key=key, couple_targets=coupled)
    gap = float(np.max(np.abs(report.h_bayes - stored)))
    if gap > H_BAYES_TOL:
        raise BayesmixError(f"{path} was not made from these fits: its h_bayes differs from "
                            f"theirs by up to {gap:.3g}")
    return StoredOptimum(report=report, path=trail if isinstance(trail, list) else None,
                         source=str(path), discrepancy=with_term)


def read_suggestion(directory: str | Path) -> dict[str, Any]:
    """``suggestion.json`` of a ``suggest --out`` directory (see the README's JSON formats).

    Raises
    ------
    BayesmixError
        Missing or unreadable directory or file, unreadable JSON, no ``runs`` list in
        it, or a field the report shows that is not a number (the planned and the
        suggested runs' ``N`` and ``D`` finite and positive), naming the file.
    """
    path = Path(directory) / SUGGESTION_FILE
    payload = _read_json(path, "suggestion", "bayesmix suggest FIT... --N --D --out DIR")
    if not isinstance(payload.get("runs"), list) or "reason" not in payload:
        raise BayesmixError(f"{path} is not a bayesmix suggestion file (no runs or reason)")
    _check_suggestion(payload, path)
    return payload


def _check_suggestion(payload: dict[str, Any], path: Path) -> None:
    """The fields a report shows: the planned run's N and D (finite, positive), the
    regret, the candidates, and each run's N, D, mixture, gains and cost."""
    for field in ("N", "D"):
        _number(payload.get(field), path, field, positive=True)
    for field in ("expected_regret", "relative_regret"):  # null (non-finite) read as NaN
        payload[field] = _number(payload.get(field), path, field, finite=False)
    count = payload.get("n_candidates")
    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        raise BayesmixError(f"{path} is malformed (n_candidates is {count!r}, not a count)")
    for i, run in enumerate(payload["runs"]):
        where = f"runs[{i}]"
        if not isinstance(run, dict):
            raise BayesmixError(f"{path} is malformed ({where} is not a mapping)")
        for field in ("N", "D"):
            _number(run.get(field), path, f"{where}.{field}", positive=True)
        for field in ("cost_flops", "expected_gain", "gain_se", "gain_per_flop"):
            run[field] = _number(run.get(field), path, f"{where}.{field}", finite=False)
        if "expected_gain_alone" in run:  # files from before it was written lack it
            run["expected_gain_alone"] = _number(
                run["expected_gain_alone"], path, f"{where}.expected_gain_alone", finite=False)
        mixture = _mapping(run.get("mixture"), path, f"{where}.mixture")
        _mixture(mixture, path, f"{where}.mixture", tuple(mixture))
    if payload["runs"]:
        batch = _mapping(payload.get("batch"), path, "batch")
        for field in ("expected_gain", "gain_se", "expected_regret_after", "cost_flops"):
            batch[field] = _number(batch.get(field), path, f"batch.{field}", finite=False)
