"""``bayesmix compare``: PSIS-LOO of fits, and their predictions scored at held-out runs."""

from __future__ import annotations

import argparse

from bayesmix.commands.common import (
    add_discrepancy_option,
    add_input_options,
    add_jobs_options,
    chosen_posteriors,
    emit_json,
    fit_labels,
    has_table,
    key_from_args,
    table_from_args,
)
from bayesmix.commands.progress import Progress

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare fitted laws (PSIS-LOO, held-out scores)",
        description="Per fit and target: PSIS-LOO on the training runs (elpd, se, p_loo, "
                    "rows with Pareto k > 0.7); per target fitted by several laws, the "
                    "ranking with elpd differences and stacking weights. With --heldout: "
                    "the median's relative error and sign, coverage of the 50 % and 90 % "
                    "predictive intervals, their median relative width, and the CRPS of "
                    "log loss, per target and pooled.",
    )
    parser.add_argument("fits", nargs="+", metavar="FIT",
                        help="fit directories (Bayesian fits; baselines score on held-out "
                             "runs only)")
    parser.add_argument("--cv", choices=("scale", "mixture"), default=None,
                        help="also refit each fit without its largest model size (scale) "
                             "or without each of --folds folds of its mixtures (mixture), "
                             "and score the rows left out; needs --runs")
    parser.add_argument("--runs", default=None, metavar="RUNS",
                        help="with --cv: the run table the fits were made from (the "
                             "fits' rows are found by row number)")
    parser.add_argument("--folds", type=int, default=5, help="folds of --cv mixture")
    add_jobs_options(parser, "--cv's refits")
    add_input_options(parser, "--heldout", required=False,
                      runs_help="run table none of the fits saw (select rows with --where)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="print JSON to stdout instead of the tables")
    output.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/comparison.json, DIR/loo_pit.png (and "
                             "DIR/coverage.png with --heldout) and print the tables")
    parser.add_argument("--seed", type=int, default=0, help="seed of the predictive noise")
    add_discrepancy_option(parser)
    parser.set_defaults(func=run,
                        outputs={"out": ("comparison.json", "coverage.png", "loo_pit.png")})


def run(args: argparse.Namespace) -> int:
    from bayesmix._errors import BayesmixError
    from bayesmix._io import atomic_dir
    from bayesmix.compare import compare
    from bayesmix.fit import Fit
    from bayesmix.store import load_fit_or_posteriors

    fits, points = {}, {}
    for label, path in zip(fit_labels(args.fits), args.fits, strict=True):
        loaded = load_fit_or_posteriors(path)
        if args.no_discrepancy:
            loaded = (loaded.with_discrepancy({})
                      if isinstance(loaded, Fit) else chosen_posteriors(args, loaded))
        (fits if isinstance(loaded, Fit) else points)[label] = loaded
    if args.where and not has_table(args):
        raise BayesmixError("--where selects held-out rows: give --heldout RUNS (or "
                            "--ratios and --metrics)")
    if args.cv and not args.runs:
        raise BayesmixError("--cv refits the fits: give --runs RUNS, the table they were "
                            "made from")
    heldout = table_from_args(args) if has_table(args) else None
    result = compare(key_from_args(args), fits, heldout, point_fits=points)
    if args.cv:
        from bayesmix.crossval import with_cross_validation

        training = table_from_args(argparse.Namespace(**{**vars(args), "where": None}),
                                   path=args.runs)
        with Progress(None, f"cross-validation ({args.cv})") as bar:
            def progress(name: str, index: int, count: int) -> None:
                bar.step_to(f"refit without {name}", index, count)

            result = with_cross_validation(key_from_args(args), result, fits, training,
                                           args.cv, folds=args.folds, on_fold=progress,
                                           workers=args.workers, scheduler=args.scheduler)
    if args.json:
        emit_json(result.to_dict())
        return 0
    print(result.table())
    if args.out is None:
        return 0
    with atomic_dir(args.out) as tmp:
        emit_json(result.to_dict(), str(tmp / "comparison.json"))
        if result.heldout:
            from bayesmix.plots import plot_coverage

            fig = plot_coverage(result.pooled())
            fig.savefig(tmp / "coverage.png", dpi=120)
        if fits:
            from bayesmix.plots import plot_loo_pit

            fig = plot_loo_pit({f"{label} ({target})": tf.idata for label, f in fits.items()
                                for target, tf in f.targets.items()})
            fig.savefig(tmp / "loo_pit.png", dpi=120)
    print(f"wrote the comparison to {args.out}")
    return 0
