"""``bayesmix demo``: the main job on a built-in default."""

from __future__ import annotations

import argparse
import inspect
import sys

from bayesmix.commands.common import emit_json, key_from_args
from bayesmix.demo import run_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="simulate runs, fit the additive law, choose a mixture",
        description="Simulate runs of the additive law on three domains, fit every domain's "
                    "loss with NUTS, and print the optimal mixture at a larger scale with its "
                    "uncertainty, beside the truth the runs were simulated from, and which "
                    "runs to launch next.",
    )
    parser.add_argument("--seed", type=int, default=0)
    defaults = inspect.signature(run_demo).parameters
    for name in ("chains", "warmup", "draws"):
        parser.add_argument(f"--{name}", type=int, default=defaults[name].default,
                            help=f"NUTS {name} per target (default {defaults[name].default})")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.json:
        sys.stderr.write("bayesmix demo: simulating runs and fitting 3 targets with NUTS...\n")
    result = run_demo(key_from_args(args), chains=args.chains, warmup=args.warmup,
                      draws=args.draws)
    if args.json:
        emit_json(result.to_dict())
    else:
        print(result)
    return 0
