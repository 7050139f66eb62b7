"""Ingest: run tables as they come, read into one wide table in the user's column names.

Three layouts reach :func:`bayesmix.runs.load_runs`, which maps the columns and
validates:

- **wide**: one file or frame, one row per (run, checkpoint);
- **long**: one row per (run, tokens or step, metric, value), pivoted to wide. A table
  with a ``metric`` column is long. Each metric becomes a column of that name, D is the
  ``tokens`` column (or ``step`` times ``tokens_per_step``), and a row whose tokens
  (step) cell is empty holds a per-run value (N, a weight) for every checkpoint of
  its run. A pivoted row is numbered by its first line in the long table;
- **pair** (Olmix's layout): a ratios table (the run id and the domain weights, one
  row per run) and a metrics table (the run id and N, D and losses; one or more rows
  per run; wide or long), joined on the run id. Rows are numbered as in the metrics
  table; a column of the ratios table is parsed there, so that its messages name the
  ratios table's own rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError, first_line

__all__ = ["RawTable", "read_table"]

Source = str | Path | pd.DataFrame
LONG_HINT = "a long table has columns {run}, metric, value, and tokens or step"
_ROLES = {"runs": ("runs file", "run table"), "ratios": ("ratios file", "ratios table"),
          "metrics": ("metrics file", "metrics table")}


@dataclass(frozen=True)
class RawTable:
    """A run table as read, in the user's column names (a long table already pivoted).

    Attributes
    ----------
    frame : DataFrame
        One row per (run, checkpoint); the index holds row numbers counted from 1.
    source : str
        How column and row messages name the table.
    what : str
        How table-level messages name it (``"runs file x.csv"``).
    pivoted : bool
        D comes from a long table's tokens (or step) column.
    ratios : DataFrame, optional
        A pair's ratios table as read, without its run ids (rows numbered from 1); its
        columns are also in ``frame``, copied to each row of their run.
    ratios_source : str
        How messages name the ratios table.
    position : ndarray of int, optional
        The ratios table's row (0-based position) of each row of ``frame``.
    ratios_runs : Series, optional
        The run id of each row of ``ratios``.
    """

    frame: pd.DataFrame
    source: str
    what: str
    pivoted: bool = False
    ratios: pd.DataFrame | None = None
    ratios_source: str = ""
    position: np.ndarray | None = None
    ratios_runs: pd.Series | None = None

    def _borrowed(self, column: str) -> bool:
        return self.ratios is not None and column in self.ratios.columns

    def numbers(self, column: str) -> pd.Series:
        """A column as floats; a bad cell is named in the table it was read from."""
        if not self._borrowed(column):
            return _to_number(self.frame[column], column, self.source)
        values = _to_number(self.ratios[column], column, self.ratios_source).to_numpy()
        return pd.Series(values[self.position], index=self.frame.index)

    def per_run(self, columns: list[str], rows: pd.Index) -> pd.DataFrame | None:
        """A pair's ``columns`` as floats in the ratios table's rows of the runs of ``rows``.

        None unless every column comes from a pair's ratios table. The frame has the
        ratios table's row numbers and its run ids in ``run``.
        """
        if not columns or not all(self._borrowed(c) for c in columns):
            return None
        used = np.unique(self.position[self.frame.index.get_indexer(rows)])
        frame = pd.DataFrame({c: _to_number(self.ratios[c], c, self.ratios_source)
                              for c in columns})
        return frame.assign(run=self.ratios_runs).iloc[used]


def _rows(mask: np.ndarray, index: pd.Index, limit: int = 5) -> str:
    rows = [str(r) for r in index[mask][:limit]]
    more = int(mask.sum()) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")


def _names(names: Any, limit: int = 5) -> str:
    """``a, b, c, d, e and 3 more``."""
    names = list(names)
    more = len(names) - limit
    return ", ".join(map(str, names[:limit])) + (f" and {more} more" if more > 0 else "")


def _to_number(series: pd.Series, column: str, source: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype(float)  # a frame's numbers, taken as they are
    text = series.astype(str).str.strip()
    missing = text.isin(["", "nan", "NaN", "NA", "null", "None"]) | series.isna()
    numbers = pd.to_numeric(text.where(~missing, None), errors="coerce")
    bad = numbers.isna().to_numpy() & ~missing.to_numpy()
    if bad.any():
        first = series.index[bad][0]
        raise BayesmixError(
            f"column '{column}' of {source} has non-numeric cells in rows "
            f"{_rows(bad, series.index)} (row {first}: {series[first]!r})"
        )
    return numbers.astype(float)


def _ids(series: pd.Series) -> pd.Series:
    """Run ids or metric names as text (whole numbers without ``.0``); empty as ``""``."""
    values = series.to_numpy()
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.to_numpy(float)
        if np.all(np.isnan(numbers) | (numbers == np.round(numbers))):
            values = [("" if np.isnan(x) else str(int(x))) for x in numbers]
    text = pd.Series(values, index=series.index, dtype=object).astype(str).str.strip()
    return text.where(series.notna().to_numpy(), "")


def _read_file(path: Path, what: str) -> pd.DataFrame:
    if path.is_dir():
        raise BayesmixError(f"{what} is a directory, not a file")
    if not path.is_file():
        raise BayesmixError(f"{what} does not exist")
    if path.stat().st_size == 0:
        raise BayesmixError(f"{what} is empty")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise BayesmixError(
                    f"reading {path} needs pyarrow: pip install 'bayesmix[parquet]'"
                ) from None
            frame = pd.read_parquet(path)
        else:
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), [])
            dupes = sorted({c for c in header if header.count(c) > 1})
            if dupes:
                raise BayesmixError(f"{what} repeats column(s) {', '.join(dupes)}")
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except BayesmixError:
        raise
    except Exception as exc:  # unreadable: encoding, parser, permissions...
        raise BayesmixError(f"cannot read {what}: {type(exc).__name__}: "
                            f"{first_line(exc)}") from None
    _check_shape(frame, what, "has a header but no rows")
    return frame


def _check_shape(frame: pd.DataFrame, what: str, empty: str) -> None:
    if frame.columns.duplicated().any():
        dupes = sorted(set(map(str, frame.columns[frame.columns.duplicated()])))
        raise BayesmixError(f"{what} repeats column(s) {', '.join(dupes)}")
    if len(frame) == 0:
        raise BayesmixError(f"{what} {empty}")


def _read_source(source: Source, name: str | None, role: str = "runs") -> tuple[pd.DataFrame,
                                                                               str, str]:
    """The raw table with 1-based row numbers, its name and how messages call it."""
    as_file, as_frame = _ROLES[role]
    if isinstance(source, pd.DataFrame):
        label = name or ("<DataFrame>" if role == "runs" else f"<{role} DataFrame>")
        what = f"{as_frame} {label}"
        raw = source.copy()
        raw.columns = [str(c) for c in raw.columns]
        _check_shape(raw, what, "has no rows")
    else:
        path = Path(source)
        label = name or str(path)
        what = f"{as_file} {label}"
        raw = _read_file(path, what)
    raw.index = pd.RangeIndex(1, len(raw) + 1)
    return raw, label, what


def _read_one(source: Source, name: str | None, role: str, run_col: str, d_col: str,
              tokens_per_step: float | None) -> RawTable:
    """A wide table as read, or a long one pivoted to wide."""
    raw, label, what = _read_source(source, name, role)
    if "metric" in raw.columns:
        return _pivot(raw, label, f"long table {label}", run_col, d_col, tokens_per_step)
    if tokens_per_step is not None:
        raise BayesmixError(f"tokens_per_step applies to a long table with a step column; "
                            f"{what} is wide (it has no 'metric' column)")
    return RawTable(raw, label, what)


def _pivot(raw: pd.DataFrame, source: str, what: str, run_col: str, d_col: str,
           tokens_per_step: float | None) -> RawTable:
    """One row per (run, D): each metric a column, D in ``d_col``, the run in ``run_col``."""
    hint = LONG_HINT.format(run=run_col)
    for column in (run_col, "value"):
        if column not in raw.columns:
            raise BayesmixError(f"{what} has no column '{column}' ({hint})")
    if ("tokens" in raw.columns) == ("step" in raw.columns):
        has = ("both 'tokens' and 'step'" if "tokens" in raw.columns
               else "neither 'tokens' nor 'step'")
        raise BayesmixError(f"{what} has {has} ({hint})")
    at = "tokens" if "tokens" in raw.columns else "step"
    if at == "step" and tokens_per_step is None:
        raise BayesmixError(f"{what} counts checkpoints in 'step': give tokens_per_step "
                            "(tokens per step) so that D = step * tokens_per_step")
    if at == "tokens" and tokens_per_step is not None:
        raise BayesmixError(f"{what} has a 'tokens' column: tokens_per_step applies to a "
                            "'step' column only")
    if at == "step" and not (np.isfinite(tokens_per_step) and tokens_per_step > 0):
        raise BayesmixError(f"tokens_per_step must be a positive number, got {tokens_per_step}")
    runs, metric = _ids(raw[run_col]), _ids(raw["metric"])
    for cells, column in ((runs, run_col), (metric, "metric")):
        empty = (cells == "").to_numpy()
        if empty.any():
            raise BayesmixError(f"column '{column}' of {what} is empty in rows "
                                f"{_rows(empty, raw.index)}")
    value = _to_number(raw["value"], "value", source).to_numpy()
    tokens = _to_number(raw[at], at, source).to_numpy() * (tokens_per_step or 1.0)
    clash = sorted({d_col, run_col} & set(metric))
    if clash:
        raise BayesmixError(f"metric '{clash[0]}' of {what} has the name of its "
                            f"{'tokens' if clash[0] == d_col else 'run'} column (D is the "
                            f"'{at}' column of a long table, named '{d_col}' after pivoting)")
    keys = pd.DataFrame({"run": runs, "D": tokens, "metric": metric}, index=raw.index)
    _check_repeats(keys, raw[at], at, what)
    per_run = np.isnan(tokens)
    checkpoints = keys[~per_run]
    group = checkpoints.groupby(["run", "D"], sort=False).ngroup().to_numpy()
    first = pd.Series(checkpoints.index).groupby(group).min().to_numpy()
    metrics = list(pd.unique(metric))
    column = {m: j for j, m in enumerate(metrics)}
    values = np.full((len(first), len(metrics)), np.nan)
    values[group, checkpoints["metric"].map(column).to_numpy()] = value[~per_run]
    group_run = runs.loc[first].to_numpy()
    for row, (run, name) in keys[per_run][["run", "metric"]].iterrows():
        mine = group_run == run
        if not mine.any():
            raise BayesmixError(f"run {run} of {what} has per-run rows (row {row}: empty "
                                f"'{at}') but no row with a '{at}' value")
        if not np.isnan(values[mine, column[name]]).all():
            raise BayesmixError(f"metric '{name}' of run {run} of {what} is given per run "
                                f"(row {row}) and at a checkpoint: keep one")
        values[mine, column[name]] = value[row - 1]
    frame = pd.DataFrame(values, index=pd.Index(first), columns=metrics)
    frame.insert(0, d_col, tokens[first - 1])
    frame.insert(0, run_col, group_run)
    return RawTable(frame, source, what, pivoted=True)


def _check_repeats(keys: pd.DataFrame, at_cells: pd.Series, at: str, what: str) -> None:
    repeated = keys.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    groups = keys[repeated].groupby(["run", "D", "metric"], sort=False, dropna=False)
    rows = list(groups.groups.values())
    row = rows[0][0]
    at_text = f"'{at}' {at_cells[row]}" if not np.isnan(keys.at[row, "D"]) else f"no '{at}'"
    more = f" (and {len(rows) - 1} more repeated)" if len(rows) > 1 else ""
    raise BayesmixError(
        f"{what} repeats (run, {at}, metric) in rows {_names(rows[0])} (run "
        f"{keys.at[row, 'run']}, {at_text}, metric '{keys.at[row, 'metric']}'){more}; "
        "a long table has one row per run, checkpoint and metric"
    )


def _join(ratios: Source, metrics: Source, run_col: str, d_col: str,
          tokens_per_step: float | None, name: str | None) -> RawTable:
    """The metrics table's rows with the ratios table's columns of the same run id."""
    weights, weights_label, weights_what = _read_source(ratios, None, "ratios")
    if "metric" in weights.columns:
        raise BayesmixError(f"{weights_what} has a 'metric' column: a ratios table is wide, "
                            f"one row per run ({run_col} and the domain weights)")
    table = _read_one(metrics, None, "metrics", run_col, d_col, tokens_per_step)
    for frame, what in ((weights, weights_what), (table.frame, table.what)):
        if run_col not in frame.columns:
            raise BayesmixError(f"{what} has no run-id column '{run_col}'; name it with run_col")
    ids, metric_ids = _ids(weights[run_col]), _ids(table.frame[run_col])
    for cells, what in ((ids, weights_what), (metric_ids, table.what)):
        empty = (cells == "").to_numpy()
        if empty.any():
            raise BayesmixError(f"run-id column '{run_col}' of {what} is empty in rows "
                                f"{_rows(empty, cells.index)}")
    repeated = ids.duplicated(keep=False).to_numpy()
    if repeated.any():
        raise BayesmixError(f"{weights_what} repeats run id(s) {_names(pd.unique(ids[repeated]))} "
                            f"(rows {_rows(repeated, ids.index)}); it has one row per run")
    for mine, theirs, what, other in ((metric_ids, ids, table.what, weights_what),
                                      (ids, metric_ids, weights_what, table.what)):
        alone = pd.unique(mine[~mine.isin(set(theirs))])
        if len(alone):
            raise BayesmixError(f"run id(s) {_names(alone)} of {what} are not in {other}; "
                                f"every run needs a row in both (joined on '{run_col}')")
    shared = [c for c in weights.columns if c != run_col and c in table.frame.columns]
    if shared:
        raise BayesmixError(f"column(s) {_names(shared)} are in both {weights_what} and "
                            f"{table.what}; give each column in one of them")
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy()).loc[metric_ids].to_numpy()
    frame = table.frame.copy()
    frame[run_col] = metric_ids
    columns = weights.columns.drop(run_col)
    for column in columns:
        frame[column] = weights[column].to_numpy()[position]
    source = name or f"{table.source} (joined with {weights_label} on '{run_col}')"
    what = f"{table.what} (joined with {weights_what} on '{run_col}')"
    return RawTable(frame, source, what, table.pivoted, weights[columns], weights_label,
                    position, ids)


def read_table(
    source: Source | None = None,
    *,
    ratios: Source | None = None,
    metrics: Source | None = None,
    run_col: str = "run",
    d_col: str = "D",
    tokens_per_step: float | None = None,
    name: str | None = None,
) -> RawTable:
    """Read a wide or long table (``source``), or a ratios and metrics pair, as one table.

    Parameters
    ----------
    source : str, Path or DataFrame, optional
        A wide table, or a long one (it has a ``metric`` column).
    ratios, metrics : str, Path or DataFrame, optional
        Olmix's layout, instead of ``source``: the run id and domain weights (one row per
        run), and the run id with N, D and losses (wide or long), joined on ``run_col``.
    run_col : str
        The run-id column.
    d_col : str
        The column a long table's tokens go to (where :func:`~bayesmix.runs.load_runs`
        looks for D).
    tokens_per_step : float, optional
        Tokens per step of a long table with a ``step`` column: D = step * tokens_per_step.
    name : str, optional
        How messages name the table.

    Returns
    -------
    RawTable
    """
    if source is not None and (ratios is not None or metrics is not None):
        raise BayesmixError("give a run table as source, or as ratios and metrics, not both")
    if source is not None:
        return _read_one(source, name, "runs", run_col, d_col, tokens_per_step)
    if ratios is None or metrics is None:
        given, missing = ("ratios", "metrics") if metrics is None else ("metrics", "ratios")
        if ratios is None and metrics is None:
            raise BayesmixError("no run table: give source, or ratios and metrics")
        raise BayesmixError(f"{given} given without {missing}: the pair is a ratios table (run "
                            "id and domain weights) and a metrics table (run id, N, D, losses)")
    return _join(ratios, metrics, run_col, d_col, tokens_per_step, name)
