"""Run tables: load, validate and summarise the training runs a law is fit to.

A run table has one row per observed (run, checkpoint) and canonical columns ``N``
(parameters), ``D`` (tokens), ``h_<domain>`` (domain weights, a point on the
simplex), ``loss_<target>`` (one per target) and optionally ``run``. Files and data
frames with other names load through :func:`load_runs`'s mapping options, and other
layouts (a long table, Olmix's pair of files) through :mod:`bayesmix.ingest`; every
:class:`RunTable` a user gets has been through :func:`load_runs`'s validation.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError
from bayesmix._io import atomic_file
from bayesmix.ingest import Source, _names, _rows, read_table

__all__ = ["MIXTURE_DECIMALS", "SAME_SIZE", "Fold", "RunTable", "TargetData", "load_runs",
           "model_sizes", "run_index", "runs_summary", "write_runs"]

SIMPLEX_TOL = 1e-3


class Fold(NamedTuple):
    """Rows (masks over a run table's rows) to refit on and to score."""

    name: str
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class TargetData:
    """The rows of a run table usable for one target (its loss cell is present).

    Attributes
    ----------
    n_params, n_tokens : ndarray, shape ``(n,)``
        Parameters and tokens of each run.
    weights : ndarray, shape ``(n, k)``
        Domain weights.
    loss : ndarray, shape ``(n,)``
        Observed loss on the target.
    rows : ndarray of int, shape ``(n,)``
        Row numbers in the source file (1-based data rows).
    run : ndarray of int, shape ``(n,)``
        Training run of each row, ``0..R-1`` (see :func:`run_index`).
    """

    n_params: np.ndarray
    n_tokens: np.ndarray
    weights: np.ndarray
    loss: np.ndarray
    rows: np.ndarray
    run: np.ndarray


SAME_SIZE = 0.01
"""Model sizes (and token counts) this close in log (1 %) are one: two files counting a
model's parameters slightly differently make no second size."""
MIXTURE_DECIMALS = 6
"""Mixtures whose weights agree to this many decimals are one (float32 differs at the 8th)."""


def model_sizes(n_params: Any) -> np.ndarray:
    """The distinct model sizes among ``n_params``, ascending: values each within
    :data:`SAME_SIZE` in log of the next are one size, its largest value."""
    sizes = np.unique(np.asarray(n_params, float))
    if sizes.size == 0:
        return sizes
    return sizes[np.append(np.diff(np.log(sizes)) > SAME_SIZE, True)]


def run_index(n_params: Any, weights: Any, run: Any = None) -> np.ndarray:
    """Which training run each row belongs to, as ids ``0..R-1`` by first appearance.

    From the table's ``run`` column when it has one; otherwise a run is the rows
    with the same ``N`` and weights (its checkpoints at several ``D``). A run's
    checkpoints share one model and one data order, so their deviations from a law
    are correlated; the fit weights its likelihood by the runs' design effect
    (:func:`bayesmix.model.design_effect`).
    """
    if run is not None:
        return pd.factorize(pd.Series(run).astype(str))[0].astype(np.int32)
    keys = np.column_stack([np.log(np.asarray(n_params, float)),
                            np.asarray(weights, float).reshape(len(n_params), -1)])
    _, first, inverse = np.unique(np.round(keys, 9), axis=0, return_index=True,
                                  return_inverse=True)
    order = np.argsort(np.argsort(first))  # relabel by first appearance
    return order[inverse.ravel()].astype(np.int32)


@dataclass(frozen=True)
class RunTable:
    """A validated run table in canonical columns.

    Attributes
    ----------
    frame : DataFrame
        Columns ``N``, ``D``, ``h_<domain>``..., ``loss_<target>``..., and ``run`` if
        given. The index holds the 1-based row numbers of the source file.
    domains, targets : tuple of str
        Training domains and loss targets, in file order.
    source : str
        Where the table came from (for messages).
    unmeasured : tuple of str
        Loss columns with no value in the selected rows (a target measured only at
        other sizes, say): not targets, named so that asking for one says why.
    """

    frame: pd.DataFrame
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    source: str = "<memory>"
    unmeasured: tuple[str, ...] = ()

    @property
    def weights(self) -> np.ndarray:
        """Domain weights, shape ``(n_rows, k)``."""
        return self.frame[[f"h_{d}" for d in self.domains]].to_numpy(float)

    @property
    def unseen_domains(self) -> tuple[str, ...]:
        """Domains with weight 0 in every row: the runs say nothing of them."""
        seen = self.weights.max(axis=0, initial=0.0) > 0
        return tuple(d for d, s in zip(self.domains, seen, strict=True) if not s)

    def target_index(self, target: str) -> int | None:
        """Index of ``target`` among the training domains, or None."""
        return self.domains.index(target) if target in self.domains else None

    def check_target(self, target: str) -> None:
        """Raise a one-line error when ``target`` is not a loss column."""
        if target in self.unmeasured:
            raise BayesmixError(f"target '{target}' has no loss value in the selected rows of "
                                f"{self.source}")
        if target not in self.targets:
            raise BayesmixError(
                f"target '{target}' is not in {self.source} (targets: {', '.join(self.targets)})"
            )

    def target_data(self, target: str) -> TargetData:
        """The rows usable for ``target``: a missing loss cell drops that row only."""
        self.check_target(target)
        frame = self.frame[self.frame[f"loss_{target}"].notna()]
        n_params = frame["N"].to_numpy(float)
        weights = frame[[f"h_{d}" for d in self.domains]].to_numpy(float)
        return TargetData(
            n_params=n_params,
            n_tokens=frame["D"].to_numpy(float),
            weights=weights,
            loss=frame[f"loss_{target}"].to_numpy(float),
            rows=frame.index.to_numpy(int),
            run=run_index(n_params, weights, frame["run"] if "run" in frame else None),
        )

    def select(self, where: str | np.ndarray | pd.Series | None) -> RunTable:
        """The rows matching ``where``, a subset of a validated table.

        Parameters
        ----------
        where : str, boolean array of shape ``(n_rows,)``, or None
            A pandas query on the canonical names (``N``, ``D``, ``h_x``, ``loss_x``),
            or a row mask; None (or an empty query) keeps every row.

        Returns
        -------
        RunTable
            The same domains and source, the index keeping the source's row numbers;
            a target with no loss value in the rows selected becomes unmeasured.
        """
        if where is None or (isinstance(where, str) and not where):
            return self
        if isinstance(where, str):
            try:
                frame = self.frame.query(where)
            except Exception as exc:  # pandas raises many types for a bad expression
                # (a non-boolean expression raises a KeyError listing the whole index)
                why = ("it is not a condition on the rows" if isinstance(exc, KeyError)
                       else f"{type(exc).__name__}: {str(exc)[:200]}")
                raise BayesmixError(f"where {where!r} failed on {self.source}: {why}"
                                    ) from None
            described = f"where {where!r}"
        else:
            mask = np.asarray(where, bool)
            if mask.shape != (len(self.frame),):
                raise BayesmixError(
                    f"row mask of shape {mask.shape} given for {len(self.frame)} rows of "
                    f"{self.source}"
                )
            frame = self.frame[mask]
            described = "the row mask"
        if len(frame) == 0:
            raise BayesmixError(f"{described} selects no rows of {self.source}")
        targets, empty = _measured(frame, self.targets)
        return RunTable(frame, self.domains, targets, self.source, (*self.unmeasured, *empty))


def _measured(frame: pd.DataFrame, targets: tuple[str, ...]
              ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``targets`` split into those with a loss value in ``frame`` and those without."""
    empty = tuple(t for t in targets if frame[f"loss_{t}"].isna().all())
    return tuple(t for t in targets if t not in empty), empty


def _glob_names(pattern: str, columns: list[str], argument: str, source: str,
                required: bool = True, taken: tuple[str, str, Any] | None = None
                ) -> dict[str, str]:
    """Map matching columns to the names the glob's wildcards matched; ``taken``:
    ``(argument, pattern, columns)`` of a glob that took its columns first."""
    regex = re.compile(
        "".join("(.*)" if ch == "*" else ("(.)" if ch == "?" else re.escape(ch)) for ch in pattern)
        + r"\Z"
    )
    names: dict[str, str] = {}
    for col in columns:
        if fnmatch.fnmatchcase(col, pattern):
            match = regex.match(col)
            groups = match.groups() if match else ()
            names[col] = "".join(groups) if groups else col
    if not names and required:
        if taken and any(fnmatch.fnmatchcase(c, pattern) for c in taken[2]):
            raise BayesmixError(f"every column of {source} matching {argument} '{pattern}' "
                                f"also matches {taken[0]} '{taken[1]}'; narrow {taken[0]}")
        raise BayesmixError(f"no column of {source} matches {argument} '{pattern}'")
    return names


def _at(mask: np.ndarray, frame: pd.DataFrame) -> str:
    """The rows, and their run ids when the table has them: ``3, 7 (runs a, b)``."""
    rows = _rows(mask, frame.index)
    if "run" not in frame:
        return rows
    runs = pd.unique(frame["run"].to_numpy()[mask])
    return f"{rows} ({'run' if len(runs) == 1 else 'runs'} {_names(runs)})"


def _check_finite_positive(frame: pd.DataFrame, column: str, what: str, source: str) -> None:
    arr = frame[column].to_numpy(float)
    for mask, problem in (
        (np.isnan(arr), "missing or NaN"),
        (np.isinf(arr), "infinite"),
        (arr <= 0, "non-positive"),
    ):
        if mask.any():
            raise BayesmixError(
                f"column '{column}' ({what}) of {source} is {problem} in rows "
                f"{_at(mask, frame)}"
            )


def load_runs(
    source: Source | None = None,
    *,
    ratios: Source | None = None,
    metrics: Source | None = None,
    tokens_per_step: float | None = None,
    n_col: str = "N",
    d_col: str = "D",
    weight_cols: str = "h_*",
    loss_cols: str = "loss_*",
    run_col: str = "run",
    where: str | None = None,
    renormalize: bool = False,
    n_value: float | None = None,
    d_value: float | None = None,
    name: str | None = None,
    losses_required: bool = True,
) -> RunTable:
    """Load and validate a run table: a file (CSV, or Parquet with pyarrow) or a frame.

    The table is wide (one row per run and checkpoint), long (one row per run,
    checkpoint and metric; it has a ``metric`` column), or an Olmix-style pair of
    ``ratios`` and ``metrics`` joined on the run id (see :mod:`bayesmix.ingest`). The
    column options apply to the wide table a long one pivots to, or a pair joins to.

    Parameters
    ----------
    source : str, Path or DataFrame
        The file, or a pandas DataFrame with the same columns a file would have. A
        frame gets the same checks and messages as a file; its rows are numbered
        from 1 in its order (its own index is not used).
    ratios, metrics : str, Path or DataFrame, optional
        Instead of ``source``: a ratios table (``run_col`` and the domain weights, one
        row per run) and a metrics table (``run_col`` with N, D and losses, one or more
        rows per run; wide or long). Rows are numbered as in the metrics table.
    tokens_per_step : float, optional
        For a long table with a ``step`` column instead of ``tokens``: D = step *
        tokens_per_step.
    n_col, d_col : str
        Columns holding parameters ``N`` and tokens ``D``.
    weight_cols, loss_cols : str
        Globs for the domain-weight and loss columns; a domain's (target's) name is
        what the glob's ``*`` matched.
    run_col : str
        The run-id column: optional in a wide table; a long table and both tables of a
        pair need it.
    where : str, optional
        A pandas query on the canonical names (``N``, ``D``, ``h_x``, ``loss_x``).
    renormalize : bool
        Divide each row's weights by their sum instead of rejecting rows off the
        simplex.
    n_value, d_value : float, optional
        Constant ``N`` (``D``) for files with no such column (fixed-scale sweeps); a
        long table takes D from its tokens.
    name : str, optional
        How messages and :attr:`RunTable.source` name the table; default the path,
        or ``"<DataFrame>"`` for a frame (for a pair, the metrics table's name joined
        with the ratios table's).
    losses_required : bool
        With False a table without loss columns loads (runs to predict at, not yet
        trained). Either way a loss column with no value in the selected rows is not
        a target (:attr:`RunTable.unmeasured`); with True at least one must have values.

    Returns
    -------
    RunTable

    Raises
    ------
    BayesmixError
        With a one-line message naming the problem and the column and rows.

    Examples
    --------
    The paper's file::

        load_runs("dmsl_llm_slimpajama.csv", n_col="model_size", d_col="n_tokens",
                  weight_cols="weight_*", loss_cols="*_loss")

    Olmix's pair of files, and a long table of losses per step::

        load_runs(ratios="ratios.csv", metrics="metrics.csv")
        load_runs("losses_long.csv", tokens_per_step=4 * 2048 * 256)

    A frame in a notebook::

        load_runs(pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], "h_web": [0.3, 0.6],
                                "h_code": [0.7, 0.4], "loss_web": [3.1, 2.9]}))
    """
    table = read_table(source, ratios=ratios, metrics=metrics, run_col=run_col, d_col=d_col,
                       tokens_per_step=tokens_per_step, name=name)
    if table.pivoted and d_value is not None:
        raise BayesmixError(f"d_value does not apply to {table.what}: D is its tokens")
    raw, source, what = table.frame, table.source, table.what
    if n_col == d_col and n_value is None and d_value is None:
        raise BayesmixError(f"n_col and d_col both name column '{n_col}' of {what}")
    columns = list(raw.columns)
    frame = pd.DataFrame(index=raw.index)
    for canon, col, value, meaning in (
        ("N", n_col, n_value, "parameters"),
        ("D", d_col, d_value, "tokens"),
    ):
        argument = "n" if canon == "N" else "d"
        if value is not None and col in columns:
            raise BayesmixError(
                f"{what} has a column '{col}' ({canon}, {meaning}) and {argument}_value "
                f"{value} was given too; drop one (or name another {argument}_col)")
        if value is not None:
            frame[canon] = float(value)
        elif col not in columns:
            raise BayesmixError(
                f"{what} has no column '{col}' ({canon}, {meaning}); "
                f"name it with {argument}_col or give a constant {argument}_value"
            )
        else:
            frame[canon] = table.numbers(col)
    taken = {n_col, d_col, run_col}
    weights = _glob_names(weight_cols, [c for c in columns if c not in taken], "weight_cols",
                          source)
    losses = _glob_names(loss_cols, [c for c in columns if c not in taken and c not in weights],
                         "loss_cols", source, losses_required,
                         taken=("weight_cols", weight_cols, weights))
    for names, kind in ((weights, "domain"), (losses, "target")):
        seen: dict[str, str] = {}
        for col, name in names.items():
            if name in seen:
                raise BayesmixError(
                    f"columns '{seen[name]}' and '{col}' of {source} give the same {kind} '{name}'"
                )
            seen[name] = col
    for col, name in weights.items():
        frame[f"h_{name}"] = table.numbers(col)
    for col, name in losses.items():
        frame[f"loss_{name}"] = table.numbers(col)
    if run_col in columns:
        frame["run"] = raw[run_col].astype(str)
    runs = RunTable(frame, tuple(weights.values()), tuple(losses.values()), source).select(where)
    per_run = table.per_run(list(weights), runs.frame.index)
    if per_run is not None:  # a pair: check the weights where they are, one row per run
        per_run = per_run.rename(columns={col: f"h_{name}" for col, name in weights.items()})
        _checked_weights(per_run, weights, table.ratios_source, renormalize)
    return _validated(runs, renormalize, weights, losses, losses_required)


def _validated(
    table: RunTable, renormalize: bool, weights: dict[str, str], losses: dict[str, str],
    losses_required: bool,
) -> RunTable:
    frame = table.frame.copy()
    source = table.source
    _check_finite_positive(frame, "N", "parameters", source)
    _check_finite_positive(frame, "D", "tokens", source)
    frame = _checked_weights(frame, weights, source, renormalize)
    for col, name in losses.items():
        values = frame[f"loss_{name}"].to_numpy(float)
        present = ~np.isnan(values)
        for mask, problem in ((present & np.isinf(values), "infinite"),
                              (present & (values <= 0), "non-positive")):
            if mask.any():
                raise BayesmixError(
                    f"loss column '{col}' of {source} is {problem} in rows "
                    f"{_at(mask, frame)}"
                )
    targets, empty = _measured(frame, table.targets)
    if losses_required and losses and not targets:
        raise BayesmixError(f"loss column{'s' if len(losses) > 1 else ''} "
                            f"{', '.join(repr(c) for c in losses)} of {source} "
                            f"{'have' if len(losses) > 1 else 'has'} no values")
    return RunTable(frame, table.domains, targets, source, (*table.unmeasured, *empty))


def _checked_weights(frame: pd.DataFrame, weights: dict[str, str], source: str,
                     renormalize: bool) -> pd.DataFrame:
    """``frame`` with its weights checked, and divided by their sum with ``renormalize``."""
    for col, name in weights.items():
        values = frame[f"h_{name}"].to_numpy(float)
        for mask, problem in ((~np.isfinite(values), "NaN or infinite"), (values < 0, "negative")):
            if mask.any():
                raise BayesmixError(
                    f"weight column '{col}' of {source} is {problem} in rows "
                    f"{_at(mask, frame)}"
                )
    h_cols = [f"h_{name}" for name in weights.values()]
    sums = frame[h_cols].sum(axis=1).to_numpy(float)
    off = np.abs(sums - 1.0) > SIMPLEX_TOL
    if off.any() and not renormalize:
        first = frame.index[off][0]
        raise BayesmixError(
            f"weights of {source} do not sum to 1 (within {SIMPLEX_TOL:g}) in rows "
            f"{_at(off, frame)} (row {first} sums to {sums[off][0]:.6g}); "
            "fix the file or load it with renormalize"
        )
    if renormalize:
        if (sums <= 0).any():
            raise BayesmixError(
                f"weights of {source} are all zero in rows {_at(sums <= 0, frame)}"
            )
        frame[h_cols] = frame[h_cols].div(sums, axis=0)
    return frame


def runs_summary(table: RunTable) -> dict[str, Any]:
    """What a run table holds: rows, domains, targets, sizes, token range, mixtures, gaps.

    Model sizes and token counts each within :data:`SAME_SIZE` of the next count as one
    (:func:`model_sizes`), as the fit's discrepancy folds count them."""
    frame = table.frame
    weights = np.round(table.weights, MIXTURE_DECIMALS)
    return {
        "source": table.source,
        "rows": int(len(frame)),
        "domains": list(table.domains),
        "targets": list(table.targets),
        "model_sizes": [float(n) for n in model_sizes(frame["N"])],
        "tokens": {"min": float(frame["D"].min()), "max": float(frame["D"].max())},
        "token_counts": int(len(model_sizes(frame["D"]))),
        "distinct_mixtures": int(len(np.unique(weights, axis=0))),
        "missing_cells": {t: int(frame[f"loss_{t}"].isna().sum()) for t in table.targets},
        "unmeasured": list(table.unmeasured),  # loss columns with no value: not targets
    }


def write_runs(table: RunTable | pd.DataFrame, path: str | Path) -> None:
    """Write a run table in canonical columns to CSV (or Parquet by suffix), atomically.

    Parameters
    ----------
    table : RunTable or DataFrame
        A table (its canonical frame is written) or a frame in canonical columns.
    path : str or Path
        ``.parquet`` / ``.pq`` write Parquet (needs pyarrow); anything else CSV. The
        file appears whole or not at all, with the mode the user's umask gives.
    """
    frame = table.frame if isinstance(table, RunTable) else table
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        with atomic_file(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    else:
        with atomic_file(path, "w") as handle:
            frame.to_csv(handle, index=False, float_format="%.10g")
