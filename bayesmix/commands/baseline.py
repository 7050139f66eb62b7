"""``bayesmix baseline``: the paper's Huber point estimate (random search + basin-hopping)."""

from __future__ import annotations

import argparse

from bayesmix.baseline import N_HOPS, N_RANDOM, N_STARTS, STEP_SIZE, TEMPERATURE
from bayesmix.commands.common import (
    add_input_options,
    add_law_and_targets,
    chosen_targets,
    key_from_args,
    parse_assignments,
    table_from_args,
)
from bayesmix.commands.progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline", help="point estimate of a law by the paper's Huber fit",
        description="Fit a law to each target by minimising the mean Huber loss (delta 1e-3) "
                    "of the log-loss residuals, as Shukor et al. (2025) do: the best of many "
                    "random prior draws, then basin-hopping with L-BFGS-B and JAX gradients. "
                    "Writes DIR/baseline.json, which `bayesmix predict` reads like a fit.",
    )
    add_input_options(parser)
    add_law_and_targets(parser, "output directory (baseline.json)")
    parser.add_argument("--starts", type=int, default=N_RANDOM, metavar="N",
                        help=f"random-search draws from the law's prior (default {N_RANDOM})")
    parser.add_argument("--keep", type=int, default=N_STARTS, metavar="M",
                        help=f"basin-hopping runs, from the M best random draws "
                             f"(default {N_STARTS})")
    parser.add_argument("--hops", type=int, default=N_HOPS,
                        help=f"basin-hopping iterations per run (default {N_HOPS})")
    parser.add_argument("--patience", type=int, default=None, metavar="H",
                        help="stop a run after H hops without improvement")
    parser.add_argument("--step-size", type=float, default=STEP_SIZE,
                        help=f"basin-hopping step in unconstrained units (default {STEP_SIZE})")
    parser.add_argument("--temperature", type=float, default=TEMPERATURE,
                        help=f"basin-hopping temperature, in units of delta^2 "
                             f"(default {TEMPERATURE:g})")
    parser.add_argument("--residuals", choices=("log", "raw"), default="log",
                        help="log(y) - log(pred) (default, relative error) or y - pred")
    parser.add_argument("--fix", default=None, metavar="NAME=V,...",
                        help="hold law parameters at these values (e.g. E=-2: a point of "
                             "the Huber loss's profile in E; a fixed E may be negative)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run, outputs={"out": ("baseline.json",)})


def run(args: argparse.Namespace) -> int:
    from bayesmix.baseline import baseline_fit
    from bayesmix.laws import load_law
    from bayesmix.store import save_baseline

    law = load_law(args.law)
    fixed = parse_assignments(args.fix, "--fix")
    table = table_from_args(args)
    targets = chosen_targets(args, table)

    bar = Progress(len(targets), f"baseline {law.name}")

    def report(result) -> None:
        status = "ok" if result.success else f"WARNING {result.message}"
        bar.echo(f"{result.target}: huber {result.huber:.4g}, train MRE "
                 f"{100 * result.train_mre:.3f} %, {result.n_lbfgs_calls} L-BFGS runs, "
                 f"{result.seconds:.1f} s ({result.seconds_to_best:.1f} s to best), {status}")
        bar.done()
        following = targets.index(result.target) + 1
        if following < len(targets):
            bar.start(targets[following])

    settings = {"starts": args.starts, "keep": args.keep, "hops": args.hops,
                "patience": args.patience, "step_size": args.step_size,
                "temperature": args.temperature, "seed": args.seed, "where": args.where,
                "fixed": fixed}
    with bar:
        bar.start(targets[0])
        results = baseline_fit(
            key_from_args(args), law, table, targets,
            n_random=args.starts, n_starts=args.keep, n_hops=args.hops,
            step_size=args.step_size, temperature=args.temperature, patience=args.patience,
            residuals=args.residuals, fixed=fixed, progress=report,
        )
    path = save_baseline(results, args.out, settings=settings, source=table.source)
    print(f"wrote {path}")
    return 0
