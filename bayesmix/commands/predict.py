"""``bayesmix predict``: posterior (or point) predictions of a fit at a table's runs."""

from __future__ import annotations

import argparse
import json

from bayesmix.commands.common import (
    add_discrepancy_option,
    add_input_options,
    chosen_posteriors,
    emit_json,
    key_from_args,
    table_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict losses from a fit directory",
        description="For every row of RUNS and every target T of the fit: posterior mean, "
                    "median, 5 %, 25 %, 75 % and 95 % quantiles of the law's mean (T_mean, "
                    "T_median, T_q05, T_q25, T_q75, T_q95) and of the posterior predictive "
                    "with noise (T_pp_q05 ... T_pp_q95), after the input columns.",
    )
    parser.add_argument("fit", help="fit directory (from bayesmix fit or bayesmix baseline)")
    add_input_options(parser, "--runs", runs_help="run table to predict at")
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--out", help="write predictions to this CSV")
    output.add_argument("--json", action="store_true", help="print predictions as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the predictive noise")
    add_discrepancy_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bayesmix.predict import predict_table
    from bayesmix.runs import write_runs
    from bayesmix.store import load_posteriors

    posteriors = chosen_posteriors(args, load_posteriors(args.fit))
    table = table_from_args(args)
    frame = predict_table(key_from_args(args), posteriors, table)
    if args.out:
        write_runs(frame, args.out)
        print(f"wrote {len(frame)} rows x {len(posteriors)} target(s) to {args.out}")
    else:
        emit_json(json.loads(frame.to_json(orient="records")))
    return 0
