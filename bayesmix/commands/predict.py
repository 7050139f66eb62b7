"""``bayesmix predict``: posterior (or point) predictions of a fit at a table's runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from bayesmix.commands.common import (
    add_discrepancy_option,
    add_input_options,
    chosen_posteriors,
    emit_json,
    key_from_args,
    table_from_args,
)

__all__ = ["format_predictions", "register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict losses from a fit directory",
        description="For every row of RUNS and every target T of the fit: posterior mean, "
                    "median, 5 %, 25 %, 75 % and 95 % quantiles of the law's mean (T_mean, "
                    "T_median, T_q05, T_q25, T_q75, T_q95) and of the posterior predictive "
                    "with noise (T_pp_q05 ... T_pp_q95). --out writes them after the input "
                    "columns: every column of a wide RUNS as read (its names, its cells, its "
                    "row order; an input column with a prediction column's name is replaced, "
                    "with a note), or the canonical columns (N, D, h_<domain>, "
                    "loss_<target>, run) for a long table or a --ratios/--metrics pair, "
                    "whose rows are not the file's lines. --json prints the canonical "
                    "columns.",
    )
    parser.add_argument("fit", help="fit directory (from bayesmix fit or bayesmix baseline)")
    add_input_options(parser, "--runs", runs_help="run table to predict at")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--out", help="write predictions to this CSV (every row and column; "
                                      ".parquet writes Parquet)")
    output.add_argument("--json", action="store_true", help="print predictions as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the predictive noise")
    add_discrepancy_option(parser)
    parser.set_defaults(func=run, outputs={"out": "file"})


def run(args: argparse.Namespace) -> int:
    from bayesmix.predict import extrapolation_notes, predict_table, with_input_columns
    from bayesmix.runs import write_runs
    from bayesmix.store import load_posteriors

    posteriors = chosen_posteriors(args, load_posteriors(args.fit))
    table = table_from_args(args, losses_required=False)
    frame = predict_table(key_from_args(args), posteriors, table)
    notes = extrapolation_notes(posteriors, table.frame["N"].to_numpy(float),
                                table.frame["D"].to_numpy(float))
    if args.out:
        inputs = _wide_input(args)
        if inputs is not None:
            frame, replaced = with_input_columns(frame, table, inputs)
            if replaced:
                notes.append(f"the prediction columns replace input column(s) "
                             f"{', '.join(replaced)} of {table.source}, which have their names")
            if Path(args.out).suffix.lower() in (".parquet", ".pq"):
                frame = _typed(frame)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        write_runs(frame, args.out)
        print(f"wrote {len(frame)} rows x {len(posteriors)} target(s) to {args.out}")
    elif args.json:
        emit_json(json.loads(frame.to_json(orient="records")))
    else:
        print(format_predictions(frame, list(posteriors)))
    return 0


def _wide_input(args: argparse.Namespace) -> pd.DataFrame | None:
    """RUNS as read when it is one wide table (a row per line), else None."""
    from bayesmix.ingest import read_table

    if args.ratios or args.metrics:
        return None
    raw = read_table(args.runs, run_col=args.run_col, d_col=args.d_col,
                     tokens_per_step=args.tokens_per_step)
    return None if raw.pivoted else raw.frame


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV's text columns as numbers where every non-empty cell is one (for Parquet)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(
                out[column]):
            cells = out[column].mask(out[column] == "")
            try:
                out[column] = pd.to_numeric(cells)
            except (TypeError, ValueError):
                pass
    return out


def format_predictions(frame, targets: list[str], limit: int = 20) -> str:
    """A short table: per row N, D and, per target, the observed loss (when the table has
    it) and the posterior predictive median with its 90 % interval."""
    header = f"{'row':>5}  {'N':>9}  {'D':>9}"
    for t in targets:
        header += f"  {t + ' observed':>14}  {t + ' predicted [90 %]':>28}"
    lines = [header]
    for row, values in frame.head(limit).iterrows():
        line = f"{row:>5}  {values['N']:9.3g}  {values['D']:9.3g}"
        for t in targets:
            observed = values.get(f"loss_{t}")
            seen = "-" if observed is None or observed != observed else f"{observed:.4f}"
            interval = (f"{values[f'{t}_median']:.4f} [{values[f'{t}_pp_q05']:.4f}, "
                        f"{values[f'{t}_pp_q95']:.4f}]")
            line += f"  {seen:>14}  {interval:>28}"
        lines.append(line)
    if len(frame) > limit:
        lines.append(f"... {len(frame) - limit} more rows: --out FILE writes every row and "
                     f"column, --json prints them")
    return "\n".join(lines)
