"""``bayesmix fit``: sample a law's posterior for each target with NUTS."""

from __future__ import annotations

import argparse
import sys
import time

from bayesmix._nuts_defaults import CHAINS, DRAWS, TARGET_ACCEPT, WARMUP
from bayesmix.commands.common import (
    add_input_options,
    add_jobs_options,
    add_law_and_targets,
    chosen_targets,
    key_from_args,
    positive_int,
    table_from_args,
)
from bayesmix.commands.progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit", help="Bayesian fit of a law (NUTS) to one or more targets",
        description="Sample the posterior of a law for each target with NUTS: chains start "
                    "at the best of several L-BFGS runs, dense mass matrix, diagnostics "
                    "(R-hat, ESS, divergences, tree depth, E-BFMI) with plain warnings. "
                    "Writes one ArviZ netCDF per target and fit.json to --out.",
    )
    add_input_options(parser)
    add_law_and_targets(parser, "output fit directory (one netCDF per target and fit.json)")
    parser.add_argument("--chains", type=int, default=CHAINS,
                        help=f"NUTS chains (default {CHAINS})")
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help=f"warmup iterations per chain (default {WARMUP}; with several "
                        "chains one mass matrix is adapted from all chains' draws, and the "
                        "last quarter adapts the step size under it)")
    parser.add_argument("--draws", type=int, default=DRAWS,
                        help=f"kept draws per chain (default {DRAWS})")
    parser.add_argument("--max-draws", type=int, default=None,
                        help="while the chains fail the R-hat or ESS check, run on in blocks "
                             "of draws/2 up to this many per chain (default twice --draws)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--likelihood", choices=("log", "raw"), default="log",
                        help="Student-t on log-loss (default) or on raw loss")
    parser.add_argument("--target-accept", type=float, default=TARGET_ACCEPT,
                        help=f"NUTS target acceptance probability (default {TARGET_ACCEPT})")
    parser.add_argument("--independent-rows", action="store_true",
                        help="treat every row as an independent draw; by default a run's "
                             "checkpoints count as correlated (likelihood weighted by "
                             "1 / design effect)")
    parser.add_argument("--precision", choices=("float32", "float64"), default="float32",
                        help="arithmetic of the NUTS run (default float32, NumPyro's own; "
                             "the start and all summaries are float64)")
    parser.add_argument("--diag-mass", action="store_true",
                        help="diagonal mass matrix instead of dense")
    parser.add_argument("--no-discrepancy", action="store_true",
                        help="do not learn the discrepancy term beyond the training range "
                             "(by default: refits at the posterior mode on the smaller "
                             "model sizes, predicting the larger ones; docs/calibration.md)")
    add_jobs_options(parser, "the targets' fits")
    parser.add_argument("--prior-only", action="store_true",
                        help="prior predictive check: summarise losses drawn from the prior "
                             "at the training runs beside the observed ones; no fit")
    parser.add_argument("--prior-draws", type=positive_int, default=500,
                        help="draws for --prior-only (default 500)")
    parser.set_defaults(func=run, outputs={"out": ("fit.json",)})


def _prior_check(args: argparse.Namespace, law, table, targets) -> int:
    import jax
    import numpy as np

    from bayesmix.prior import prior_predictive

    key = key_from_args(args)
    print(f"prior predictive check of law {law.name} ({args.prior_draws} draws)")
    print(f"{'target':<16} {'observed 5-95 %':>20} {'prior 5-95 %':>20} "
          f"{'obs inside prior 90 %':>22}")
    for i, target in enumerate(targets):
        draws = prior_predictive(jax.random.fold_in(key, i), law, table, target,
                                 args.prior_draws, args.likelihood)
        obs = draws["observed"]
        lo, hi = np.quantile(draws["loss"], [0.05, 0.95], axis=0)
        inside = float(np.mean((obs >= lo) & (obs <= hi)))
        o5, o95 = np.quantile(obs, [0.05, 0.95])
        p5, p95 = np.quantile(draws["loss"], [0.05, 0.95])
        print(f"{target:<16} {o5:9.3f} - {o95:<8.3f} {p5:9.3f} - {p95:<8.3f} "
              f"{100 * inside:21.1f}%")
    return 0


def _with_discrepancy(args: argparse.Namespace, result, table):
    """``(result with its discrepancy, None)``, or ``(result, why not)``."""
    import jax

    from bayesmix.calibrate import try_learn_discrepancy

    try:
        with Progress(None, "discrepancy") as bar:
            def progress(name: str, index: int, count: int) -> None:
                bar.step_to(f"fold {name}: {len(result.targets)} refit(s)", index, count)

            learnt, failed = try_learn_discrepancy(
                jax.random.fold_in(key_from_args(args), 1), result, table, on_fold=progress)
    except KeyboardInterrupt:  # the NUTS fit is done: keep it
        learnt, failed = result, "interrupted"
    if learnt is result and failed:
        print(f"warning: the discrepancy was not learnt ({failed}); the fit is saved "
              f"without it", file=sys.stderr)
    return learnt, failed


def _few(names: tuple[str, ...], most: int = 4) -> list[str]:
    """``names``, or its first and last ones around a count when there are many."""
    if len(names) <= most:
        return list(names)
    return [*names[:2], f"... {len(names) - 3} more", names[-1]]


def _print_discrepancy(result, table, failed: str | None = None,
                       skipped: bool = False) -> None:
    from bayesmix.calibrate import failed_folds

    learnt = {t: f.discrepancy for t, f in result.targets.items() if f.discrepancy}
    missing = [t for t in result.targets if t not in learnt]
    if learnt and missing:
        print(f"discrepancy: none for {', '.join(missing)} (no fold of it could be refitted); "
              f"their predictions beyond the training range are the law's own")
    first = next(iter(learnt.values()), None)
    if first is None:
        if skipped:
            why = "--no-discrepancy was given"
        elif failed:
            why = f"learning it failed: {failed}"
        elif "N" not in result.law.uses:
            why = f"the {result.law.name} law does not read N, so no size can be held out"
        else:
            why = ("the runs have fewer than 3 model sizes: it needs two to refit on and "
                   "a larger one to predict")
        print(f"discrepancy: none ({why}); predictions beyond the training range are the "
              f"law's own")
        return
    s = first.summary()
    for target, left_out in failed_folds(result, table).items():
        print(f"discrepancy: {target} learnt without fold(s) {'; '.join(left_out)} (too few "
              f"rows, or its refit predicts a non-positive loss there: the law's "
              f"extrapolation broke down), so its term may be too narrow")
    unlearnt = [t for t, term in learnt.items() if not term.d_learnt]
    if unlearnt:
        print(f"discrepancy: for {', '.join(unlearnt)} no fold reached beyond its training D, "
              f"so nothing was learnt of the law's error in D; beyond the training D that "
              f"part is the prior's (wide)")
    print(f"discrepancy beyond the training range, {next(iter(learnt))} (every target has "
          f"its own in fit.json; from {len(first.folds)} fold(s): "
          f"{'; '.join(_few(first.folds))}): median tau_N {100 * s['tau_n']:.2f} %, "
          f"tau_D {100 * s['tau_d']:.2f} % of the loss per (log unit)^p, p {s['growth']:.2f}, "
          f"bias {100 * s['bias_n']:+.2f} % (N) {100 * s['bias_d']:+.2f} % (D) per "
          f"(log unit)^p")


def run(args: argparse.Namespace) -> int:
    from bayesmix._errors import BayesmixError
    from bayesmix.fit import fit
    from bayesmix.jobs import fit_in_jobs
    from bayesmix.laws import load_law
    from bayesmix.store import save_fit

    law = load_law(args.law)
    table = table_from_args(args)
    targets = chosen_targets(args, table)
    if args.prior_only:
        return _prior_check(args, law, table, targets)
    start = time.perf_counter()
    bar = Progress(len(targets), f"fit {law.name}")
    in_jobs = args.workers != 1 or args.scheduler is not None

    def progress(target: str, index: int, result) -> None:
        if result is None and in_jobs:
            bar.done(f"[{index + 1}/{len(targets)}] {target}: failed")
            return
        if result is None:
            bar.start(f"{target}: sampling ({args.chains} chains x "
                      f"{args.warmup}+{args.draws})")
            return
        d = result.diagnostics
        status = "ok" if result.converged else f"{len(result.warnings)} warning(s)"
        bar.done(f"[{index + 1}/{len(targets)}] {target}: done in "
                 f"{result.timings.total:.1f} s, R-hat {d.max_rhat:.3f}, "
                 f"bulk ESS {d.min_ess_bulk:.0f}, {d.divergences} divergences ({status})")

    options = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws,
               "max_draws": args.max_draws, "likelihood": args.likelihood,
               "dense_mass": not args.diag_mass, "target_accept": args.target_accept,
               "cluster_runs": not args.independent_rows, "precision": args.precision}
    failures = []
    with bar:
        if in_jobs:
            result, failures = fit_in_jobs(key_from_args(args), law, table, targets,
                                           workers=args.workers, scheduler=args.scheduler,
                                           seed=args.seed, on_target=progress, **options)
        else:
            result = fit(key_from_args(args), law, table, targets, seed=args.seed,
                         on_target=progress, progress=bar.shown, **options)
    if not result.targets:
        raise BayesmixError("; ".join(str(f) for f in failures))
    failed = None
    if not args.no_discrepancy:
        result, failed = _with_discrepancy(args, result, table)
    save_fit(result, args.out)
    print(result.diagnostics_table())
    _print_discrepancy(result, table, failed, skipped=args.no_discrepancy)
    for message in result.warnings:
        print(f"warning: {message}")
    print(f"wrote {len(result.targets)} target(s) to {args.out} in "
          f"{time.perf_counter() - start:.1f} s")
    for failure in failures:  # the other targets are kept
        print(f"error: {failure}", file=sys.stderr)
    return 2 if failures else 0
