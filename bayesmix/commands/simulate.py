"""``bayesmix simulate``: draw a run table from a law."""

from __future__ import annotations

import argparse
import json

from bayesmix._errors import BayesmixError, first_line
from bayesmix.commands.common import key_from_args
from bayesmix.laws import load_law
from bayesmix.runs import write_runs
from bayesmix.simulate import DEFAULT_SIZES, DEFAULT_TOKENS_PER_PARAM, simulate_runs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="simulate training runs from a law",
        description="Simulate a canonical run table from a law with given or prior-drawn "
                    "parameters, on a paper-like design (every mixture at every size and "
                    "token count) with relative noise.",
    )
    parser.add_argument("--law", default="additive", help="law name or law file")
    parser.add_argument("--domains", type=int, default=3, help="number of training domains")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output run table (.csv or .parquet)")
    parser.add_argument("--sizes", default=",".join(f"{n:g}" for n in DEFAULT_SIZES),
                        help="model sizes N, comma-separated")
    parser.add_argument("--tokens-per-param",
                        default=",".join(f"{r:g}" for r in DEFAULT_TOKENS_PER_PARAM),
                        help="checkpoints D/N, comma-separated")
    parser.add_argument("--mixtures", type=int, default=12, help="number of distinct mixtures")
    parser.add_argument("--min-weight", type=float, default=0.02)
    parser.add_argument("--noise", type=float, default=0.003,
                        help="relative noise on the loss (default 0.003, i.e. 0.3%%)")
    parser.add_argument("--run-noise", type=float, default=0.0,
                        help="relative offset shared by a run's checkpoints (default 0)")
    parser.add_argument("--loss-scale", type=float, default=3.0,
                        help="typical loss, the prior's scale for drawn parameters")
    parser.add_argument("--params", default=None,
                        help="JSON file {target: {site: value}} of parameters to use instead "
                             "of prior draws")
    parser.add_argument("--truth-out", default=None,
                        help="write the parameters used to this JSON file")
    parser.set_defaults(func=run, outputs={"out": "file", "truth_out": "file"})


def _floats(text: str, option: str) -> list[float]:
    """Parse comma-separated numbers (the library checks that they are positive)."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BayesmixError(f"{option} expects comma-separated numbers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from bayesmix._io import atomic_file

    law = load_law(args.law)
    sites = None
    if args.params:
        try:
            with open(args.params) as handle:
                sites = json.load(handle)
        except (OSError, ValueError) as exc:  # ValueError: JSON or UTF-8 decoding
            raise BayesmixError(f"cannot read --params {args.params}: "
                                f"{first_line(exc)}") from None
    table, truth = simulate_runs(
        key_from_args(args), law, args.domains,
        sites=sites,
        sizes=_floats(args.sizes, "--sizes"),
        tokens_per_param=_floats(args.tokens_per_param, "--tokens-per-param"),
        n_mixtures=args.mixtures, min_weight=args.min_weight, noise=args.noise,
        run_noise=args.run_noise,
        loss_scale=args.loss_scale,
    )
    write_runs(table, args.out)
    if args.truth_out:
        with atomic_file(args.truth_out) as handle:
            json.dump({t: {k: v.tolist() for k, v in s.items()} for t, s in truth.items()},
                      handle, indent=2)
    print(f"wrote {len(table.frame)} rows ({args.domains} domains, law {law.name}) to {args.out}")
    return 0
