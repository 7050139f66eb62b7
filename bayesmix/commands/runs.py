"""``bayesmix runs``: check that a run table loads, and summarise it."""

from __future__ import annotations

import argparse

from bayesmix.commands.common import add_input_options, emit_json, table_from_args
from bayesmix.runs import runs_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs", help="summarise a run table (checks that it loads)",
        description="Load a run table with the column options and summarise it: rows, domains, "
                    "targets, model sizes, token range, distinct mixtures and missing cells.",
    )
    add_input_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = runs_summary(table_from_args(args))
    if args.json:
        emit_json(summary)
        return 0
    sizes = ", ".join(f"{n:.4g}" for n in summary["model_sizes"])
    missing = {t: c for t, c in summary["missing_cells"].items() if c}
    print(f"runs file:          {summary['source']}")
    print(f"rows:               {summary['rows']}")
    print(f"domains ({len(summary['domains'])}):        {', '.join(summary['domains'])}")
    print(f"targets ({len(summary['targets'])}):        {', '.join(summary['targets'])}")
    if summary["unmeasured"]:
        print(f"not targets:        {', '.join(summary['unmeasured'])} (a loss column with no "
              f"value in these rows)")
    print(f"model sizes N:      {sizes}")
    print(f"tokens D:           {summary['tokens']['min']:.4g} to {summary['tokens']['max']:.4g} "
          f"({summary['token_counts']} distinct)")
    print(f"distinct mixtures:  {summary['distinct_mixtures']}")
    print("missing loss cells: " + (", ".join(f"{t} {c}" for t, c in missing.items()) or "none"))
    return 0
