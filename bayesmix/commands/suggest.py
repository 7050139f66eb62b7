"""``bayesmix suggest``: which runs to launch next, valued by what they would change."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bayesmix._errors import BayesmixError
from bayesmix.commands.common import (
    add_decision_options,
    add_discrepancy_option,
    add_input_options,
    add_jobs_options,
    bounds_from_args,
    chosen_posteriors,
    emit_json,
    has_table,
    key_from_args,
    load_merged,
    parse_assignments,
    table_from_args,
)
from bayesmix.commands.progress import Progress

__all__ = ["format_suggestion", "register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "suggest", help="the next runs to launch, by their value for the mixture decision",
        description="Value candidate runs (N, D, h) by how much of the expected regret of "
                    "the mixture decision at --N, --D each is expected to remove (each "
                    "posterior draw fantasises the run's checkpoints; the decision values "
                    "are regressed on them), and choose a batch within a FLOP budget (6 N D "
                    "per run). Says so when the "
                    "expected regret is already below --threshold.",
    )
    parser.add_argument("fits", nargs="+", metavar="FIT",
                        help="Bayesian fit directories of one run table; their targets are "
                             "merged")
    add_decision_options(parser)
    parser.add_argument("--batch", type=int, default=1, help="runs to choose together")
    parser.add_argument("--budget", type=float, default=None, metavar="FLOPS",
                        help="FLOPs the batch may cost (6 N D a run); without it runs are "
                             "chosen by value alone")
    parser.add_argument("--candidates", default=None, metavar="FILE",
                        help="CSV of candidate runs: N, D (tokens the run is trained to) "
                             "and one weight per domain (named by domain, h_<domain> or "
                             "weight_<domain>); default: the sizes already run and one size "
                             "up, with h_bayes, per-draw h* and random mixtures")
    parser.add_argument("--threshold", type=float, default=1e-3,
                        help="stop when the expected regret is below this fraction of the "
                             "predicted objective (default 0.001)")
    parser.add_argument("--mixtures", type=int, default=40,
                        help="random mixtures among the default candidates (default 40)")
    parser.add_argument("--draws", type=int, default=2000,
                        help="posterior draws used, one fantasised outcome of every run "
                             "each (evenly thinned; default 2000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the candidates, fantasies and discrepancy draws")
    add_discrepancy_option(parser)
    parser.add_argument("--confirm", type=int, default=0, metavar="M",
                        help="refit every FIT (NUTS, its own settings) on M fantasised "
                             "outcomes of the chosen batch and report the expected regret "
                             "after the batch those refits find, beside the estimate; "
                             "needs --runs (default 0: no refit)")
    add_jobs_options(parser, "--confirm's refits")
    add_input_options(parser, "--runs", required=False,
                      runs_help="with --confirm: the run table the fits were made from "
                                "(their rows are found by row number)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="print JSON to stdout instead of the table")
    output.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/suggestion.json and DIR/candidates.csv (every "
                             "candidate's value) and print the table")
    parser.set_defaults(func=run, outputs={"out": ("suggestion.json", "candidates.csv")})


def _bayesian_fit(path: str) -> Any:
    from bayesmix.fit import Fit
    from bayesmix.store import load_fit_or_posteriors

    fit = load_fit_or_posteriors(path)
    if not isinstance(fit, Fit):
        raise BayesmixError(f"{path} is a baseline (a point fit): suggest needs a Bayesian "
                            f"fit's posterior draws")
    return fit


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from bayesmix._io import atomic_dir
    from bayesmix.candidates import read_candidates
    from bayesmix.design import DesignSettings, suggest_runs
    from bayesmix.jobs import check_workers

    check_workers(args.workers)  # before any work, though only --confirm uses them
    if args.confirm < 0:
        raise BayesmixError(f"--confirm must be 0 or more, not {args.confirm}")
    if args.confirm and not has_table(args):
        raise BayesmixError("--confirm refits the fits: give --runs RUNS, the table they "
                            "were made from")
    fits = {path: _bayesian_fit(path) for path in args.fits}
    targets = load_merged(args.fits, lambda path: fits[path].targets)
    posteriors = chosen_posteriors(args, {t: f.posterior for t, f in targets.items()})
    domains = next(iter(posteriors.values())).domains
    table = None
    if args.confirm:  # the refits' table is checked before the suggestion is computed
        from bayesmix.confirm import check_refit_inputs

        table = table_from_args(args)
        check_refit_inputs(list(fits.values()), table, domains)
    train_n = np.concatenate([f.training_runs[0] for f in targets.values()])
    train_d = np.concatenate([f.training_runs[1] for f in targets.values()])
    lower, upper = bounds_from_args(args, domains)
    candidates = (read_candidates(args.candidates, domains, train_n, train_d)
                  if args.candidates else None)
    with Progress(None, "suggest") as bar:
        suggestion = suggest_runs(
            key_from_args(args), posteriors, args.n_params, args.n_tokens, train_n=train_n,
            train_d=train_d, candidates=candidates,
            target_weights=parse_assignments(args.weights, "--weights") or None,
            lower=lower, upper=upper,
            likelihood_weights={t: f.likelihood_weight for t, f in targets.items()},
            batch=args.batch, budget=args.budget, n_random=args.mixtures,
            settings=DesignSettings(n_draws=args.draws, threshold=args.threshold),
            on_stage=bar.step_to)
    payload = suggestion.to_dict()
    if args.confirm and suggestion.chosen:
        payload["confirmation"] = _confirmation(args, list(fits.values()), table, suggestion)
    elif args.confirm:
        print("suggest: no batch to confirm (no run was suggested)", file=sys.stderr)
    if args.json:
        emit_json(payload)
        return 0
    print(format_suggestion(payload))
    if args.out is not None:
        with atomic_dir(args.out) as tmp:
            emit_json(payload, str(tmp / "suggestion.json"))
            suggestion.candidate_table().to_csv(tmp / "candidates.csv", index_label="candidate")
        print(f"wrote suggestion.json and candidates.csv to {args.out}")
    return 0


def _confirmation(args: argparse.Namespace, fits: list, table: Any, suggestion: Any) -> dict:
    import jax

    from bayesmix.confirm import confirm_batch

    if args.no_discrepancy:
        fits = [f.with_discrepancy({}) for f in fits]
    with Progress(None, "confirming refits") as bar:
        confirmation = confirm_batch(
            jax.random.fold_in(key_from_args(args), 2), fits, table, suggestion,
            outcomes=args.confirm, workers=args.workers, scheduler=args.scheduler,
            on_refit=lambda name, index, count: bar.step_to(name, index + 1, count))
    return confirmation.to_dict()


def format_suggestion(payload: dict) -> str:
    """The human-readable table of a ``Suggestion.to_dict()``."""
    lines = [f"mixture decision at N = {payload['N']:.4g}, D = {payload['D']:.4g}: expected "
             f"regret of h_bayes {payload['expected_regret']:.3g} "
             f"({100 * payload['relative_regret']:.3g} % of the predicted objective "
             f"{payload['predicted_objective']:.4g}); {payload['n_candidates']} candidate runs",
             payload["reason"]]
    if not payload["runs"]:
        return "\n".join(lines)
    domains = list(payload["h_bayes"])
    width = max(5, *(len(d) for d in domains))
    lines.append("")
    lines.append(f"{'#':>2}  {'N':>9}  {'D':>9}  {'FLOPs':>9}  "
                 + "  ".join(f"{d:>{width}}" for d in domains)
                 + f"  {'gain':>9}  {'alone':>9}  {'± se':>8}  {'gain/EFLOP':>10}  reason")
    for i, run in enumerate(payload["runs"], 1):
        lines.append(f"{i:>2}  {run['N']:9.3g}  {run['D']:9.3g}  {run['cost_flops']:9.3g}  "
                     + "  ".join(f"{run['mixture'][d]:>{width}.3f}" for d in domains)
                     + f"  {run['expected_gain']:9.3g}  {run['expected_gain_alone']:9.3g}  "
                     f"{run['gain_se']:8.2g}  {1e18 * run['gain_per_flop']:10.3g}  "
                     f"{run['reason']}")
    lines.append("(gain: what the run adds to the runs above it; alone: its value by itself, "
                 "with its Monte Carlo standard error; gain/EFLOP: gain per 10^18 FLOPs)")
    batch = payload["batch"]
    lines.append("")
    lines.append(f"batch: expected gain {batch['expected_gain']:.3g} ± {batch['gain_se']:.2g}, "
                 f"expected regret after {batch['expected_regret_after']:.3g}, "
                 f"{batch['cost_flops']:.3g} FLOPs")
    confirmed = payload.get("confirmation")
    if confirmed:
        done = [o for o in confirmed["per_outcome"] if o["regret_after"] is not None]
        unconverged = sum(not o["converged"] for o in done)
        se = confirmed["confirmed_se"]
        lines.append(f"confirmed by refits on {len(done)} of {confirmed['outcomes']} "
                     f"fantasised outcomes: expected regret after "
                     f"{confirmed['confirmed_regret_after']:.3g}"
                     + (f" ± {se:.2g}" if se is not None else "")
                     + f" (estimate {confirmed['estimated_regret_after']:.3g})"
                     + (f"; {unconverged} refit(s) did not converge" if unconverged else ""))
        lines += [f"  {failure}" for failure in confirmed["failures"]]
    return "\n".join(lines)
