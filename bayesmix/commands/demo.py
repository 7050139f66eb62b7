"""``bayesmix demo``: the main job on a built-in default."""

from __future__ import annotations

import argparse

from bayesmix.commands.common import emit_json, key_from_args
from bayesmix.commands.progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    from bayesmix.demo import NUTS

    parser = subparsers.add_parser(
        "demo", help="simulate a study, fit and compare two laws, choose a mixture, report",
        description="Simulate a study on three domains (four small model sizes, a grid of "
                    "mixtures, a few larger runs held out) from the joint law, fit the "
                    "additive and joint laws to every domain's loss with NUTS, compare "
                    "them at the held-out runs, choose the mixture at a larger scale with "
                    "its uncertainty beside the true optimum, suggest the next runs, and "
                    "write everything to DIR/report.html.",
    )
    parser.add_argument("--seed", type=int, default=0)
    for name, default in NUTS.items():
        parser.add_argument(f"--{name}", type=int, default=default,
                            help=f"NUTS {name} per target (default {default})")
    parser.add_argument("--out", default="bayesmix-demo", metavar="DIR",
                        help="where the runs, the fits and report.html go (default "
                             "bayesmix-demo; other files in DIR are kept)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes that fit the two laws: 1 fits them here one after "
                             "the other (default: one per law on a machine with the cores; "
                             "the same draws either way)")
    parser.add_argument("--json", action="store_true",
                        help="print what the demo found as JSON instead of a summary")
    parser.set_defaults(func=run, outputs={"out": ()})


def run(args: argparse.Namespace) -> int:
    from bayesmix.demo import STAGES, run_demo

    with Progress(len(STAGES), "bayesmix demo") as bar:
        result = run_demo(key_from_args(args), chains=args.chains, warmup=args.warmup,
                          draws=args.draws, out=args.out, on_stage=bar.step_to,
                          fit_progress=bar.shown, workers=args.workers)
    if args.json:
        emit_json(result.to_dict())
    else:
        print(result)
    return 0
