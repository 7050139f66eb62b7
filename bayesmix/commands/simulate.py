"""``bayesmix simulate``: draw a run table from a law."""

from __future__ import annotations

import argparse
import sys

from bayesmix._errors import BayesmixError
from bayesmix.commands.common import key_from_args
from bayesmix.laws import load_law
from bayesmix.runs import write_runs
from bayesmix.simulate import (
    DEFAULT_SIZES,
    DEFAULT_TOKENS_PER_PARAM,
    GivenParams,
    design_reference,
    read_truth,
    simulate_runs,
    write_truth,
)

DEFAULT_LOSS_SCALE = 3.0


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
    parser.add_argument("--loss-scale", type=float, default=None,
                        help="typical loss, the prior's scale for drawn parameters (default "
                             f"--params' loss_scale, else {DEFAULT_LOSS_SCALE:g})")
    parser.add_argument("--params", default=None,
                        help="JSON file of parameters to use instead of prior draws, as "
                             "--truth-out writes it (its sites are centred at its reference "
                             "N and D, whatever --sizes and --tokens-per-param); an older "
                             "{target: {site: value}} file is centred at this design's "
                             "geometric-mean N and D")
    parser.add_argument("--truth-out", default=None,
                        help="write the parameters used to this JSON file: {law, reference: "
                             "{N, D, loss_scale}, targets: {target: {site: value}}}")
    parser.set_defaults(func=run, outputs={"out": "file", "truth_out": "file"})


def _floats(text: str, option: str) -> list[float]:
    """Parse comma-separated numbers (the library checks that they are positive)."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BayesmixError(f"{option} expects comma-separated numbers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    law = load_law(args.law)
    given = GivenParams(None, None, None)
    if args.params:
        given = read_truth(args.params, law, args.domains,
                           [f"d{i}" for i in range(args.domains)], "--params")
    loss_scale = args.loss_scale
    if loss_scale is not None and given.loss_scale is not None and loss_scale != given.loss_scale:
        raise BayesmixError(f"--loss-scale {loss_scale:g} conflicts with loss_scale "
                            f"{given.loss_scale:g} of --params {args.params}; drop one")
    if loss_scale is None:
        loss_scale = given.loss_scale if given.loss_scale is not None else DEFAULT_LOSS_SCALE
    table, truth = simulate_runs(
        key_from_args(args), law, args.domains,
        sites=given.sites,
        sizes=_floats(args.sizes, "--sizes"),
        tokens_per_param=_floats(args.tokens_per_param, "--tokens-per-param"),
        n_mixtures=args.mixtures, min_weight=args.min_weight, noise=args.noise,
        run_noise=args.run_noise,
        loss_scale=loss_scale,
        reference=given.reference,
    )
    reference = given.reference or design_reference(table.frame["N"], table.frame["D"])
    if args.params and given.reference is None:
        print(f"note: --params {args.params} gives no reference: its sites are centred at "
              f"this design's geometric-mean N {reference[0]:.4g} and D {reference[1]:.4g} "
              f"(a file from --truth-out keeps the law on any design)", file=sys.stderr)
    write_runs(table, args.out)
    if args.truth_out:
        write_truth(args.truth_out, law, reference, loss_scale, truth)
    print(f"wrote {len(table.frame)} rows ({args.domains} domains, law {law.name}) to {args.out}")
    return 0
