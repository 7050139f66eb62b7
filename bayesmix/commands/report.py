"""``bayesmix report``: one self-contained HTML page of fits, the decision and next runs."""

from __future__ import annotations

import argparse

from bayesmix._errors import BayesmixError
from bayesmix.commands.common import (
    add_input_options,
    fit_labels,
    has_table,
    key_from_args,
    load_baseline_option,
    parse_assignments,
    table_from_args,
)

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="one self-contained HTML report of fits, decision and next runs",
        description="Write one HTML file (images embedded, nothing fetched) with the runs, "
                    "convergence, observed against predicted loss, calibration at held-out "
                    "runs, parameter posteriors, the interaction matrix, the optimal "
                    "mixture h* and h*(N, D), the predicted loss at the planned scale, the "
                    "law comparison and the suggested next runs. Sections whose input is "
                    "not given say so.",
    )
    parser.add_argument("fits", nargs="+", metavar="FIT",
                        help="Bayesian fit directories over the same domains; fits of "
                             "several laws to the same runs are compared, and the decision "
                             "uses the first FIT that holds each target")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="a baseline directory: its h* is compared in a decision made "
                             "here, and it is scored on --heldout")
    add_input_options(parser, "--heldout", required=False,
                      runs_help="run table none of the fits saw (select rows with --where)")
    parser.add_argument("--optimum", default=None, metavar="DIR",
                        help="an optimize --out directory: its decision (scale, weights, "
                             "bounds, mixtures, path) is shown, recomputed from the FITs")
    parser.add_argument("--suggest", default=None, metavar="DIR",
                        help="a suggest --out directory: its suggestion.json is shown")
    parser.add_argument("--N", dest="n_params", type=float, default=None,
                        help="parameters of the planned model: the decision and the next "
                             "runs are computed there (with --D)")
    parser.add_argument("--D", dest="n_tokens", type=float, default=None,
                        help="training tokens of the planned run (with --N)")
    parser.add_argument("--weights", default=None, metavar="T=W,...",
                        help="target weights of a decision made here (default equal)")
    parser.add_argument("--reference", action="append", default=None,
                        metavar="uniform|FILE",
                        help="mixture(s) a decision made here is compared with (as in "
                             "optimize; default uniform)")
    parser.add_argument("--draws", type=int, default=2000,
                        help="posterior draws of a suggestion computed here (default 2000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the predictive noise, discrepancy and suggestion draws")
    parser.add_argument("--title", default="bayesmix report", help="the page's title")
    parser.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    parser.set_defaults(func=run, outputs={"out": "file"})


def run(args: argparse.Namespace) -> int:
    from bayesmix.design import DesignSettings
    from bayesmix.fit import Fit
    from bayesmix.references import reference_mixtures
    from bayesmix.report import write_report
    from bayesmix.store import load_fit_or_posteriors

    if (args.n_params is None) != (args.n_tokens is None):
        raise BayesmixError("give the planned run's --N and --D together")
    if args.optimum and args.n_params is not None:
        raise BayesmixError("give --optimum DIR or --N and --D, not both")
    if args.where and not has_table(args):
        raise BayesmixError("--where selects held-out rows: give --heldout RUNS")
    fits = {}
    for label, path in zip(fit_labels(args.fits), args.fits, strict=True):
        loaded = load_fit_or_posteriors(path)
        if not isinstance(loaded, Fit):
            raise BayesmixError(f"{path} is a baseline (a point fit): pass it with --baseline")
        fits[label] = loaded
    domains = next(iter(fits.values())).domains
    baseline = load_baseline_option(args.baseline) if args.baseline else None
    report = write_report(
        args.out, fits,
        heldout=table_from_args(args) if has_table(args) else None,
        baseline=baseline,
        n_params=args.n_params, n_tokens=args.n_tokens,
        target_weights=parse_assignments(args.weights, "--weights") or None,
        references=reference_mixtures(args.reference, domains),
        optimum=args.optimum, suggestion=args.suggest,
        design=DesignSettings(n_draws=args.draws), key=key_from_args(args), title=args.title)
    print(f"wrote the report to {report.path}")
    for title, sentence in report.missing.items():
        print(f"  {title}: {sentence}")
    return 0
