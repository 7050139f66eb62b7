"""``bayesmix optimize``: the optimal mixture under posterior uncertainty."""

from __future__ import annotations

import argparse
import sys

from bayesmix._errors import BayesmixError
from bayesmix.commands.common import (
    add_decision_options,
    add_discrepancy_option,
    bounds_from_args,
    chosen_posteriors,
    emit_json,
    key_from_args,
    load_baseline_option,
    load_merged,
    parse_assignments,
)

__all__ = ["format_report", "register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "optimize", help="optimal mixture h* under posterior uncertainty",
        description="Minimise sum_t w_t L_t(N, D, h) over the mixture h by mirror descent "
                    "for every posterior draw (h* with intervals), find the Bayes decision "
                    "h_bayes = argmin_h E[sum_t w_t L_t], and compare it with reference "
                    "mixtures (predicted objective and P(h_bayes better)).",
    )
    parser.add_argument("fits", nargs="+", metavar="FIT",
                        help="fit directories (Bayesian fits or baselines); their targets "
                             "are merged")
    add_decision_options(parser)
    parser.add_argument("--reference", action="append", default=None,
                        metavar="uniform|natural|FILE",
                        help="mixture(s) to compare with: 'uniform', 'natural' (token "
                             "proportions from --tokens) or a CSV with one mixture per row "
                             "(columns named by domain, h_<domain> or weight_<domain>; "
                             "optional 'name' column). Repeatable; default: uniform")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="a point-fit (baseline) directory: its h* is compared too")
    parser.add_argument("--path-flops", default=None, metavar="C,...",
                        help="also report h*(N, D) along these compute budgets (FLOPs, "
                             "C = 6 N D, D = r N; the paper's Fig. 6), under --min-weight "
                             "and --max-weight")
    parser.add_argument("--tokens-per-param", type=float, default=20.0,
                        help="r = D / N along --path-flops (default 20)")
    parser.add_argument("--tol", type=float, default=1e-9,
                        help="relative Frank-Wolfe gap at which mirror descent stops "
                             "(default 1e-9)")
    parser.add_argument("--max-iter", type=int, default=3000,
                        help="most mirror-descent iterations a draw (default 3000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the discrepancy draws (default 0)")
    add_discrepancy_option(parser)
    parser.add_argument("--independent-targets", action="store_true",
                        help="pair the targets' posterior draws as independent (by "
                             "default P(h_bayes better) counts how the targets' errors go "
                             "together over the runs they share; docs/calibration.md)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="print JSON to stdout instead of the table")
    output.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/optimum.json and DIR/h_star_draws.csv instead of "
                             "printing the table")
    parser.set_defaults(func=run, outputs={"out": ("optimum.json", "h_star_draws.csv")})


def _load_posteriors(path: str) -> dict:
    from bayesmix.store import load_posteriors

    return load_posteriors(path)


def run(args: argparse.Namespace) -> int:
    from bayesmix._io import atomic_dir
    from bayesmix.decision import decide
    from bayesmix.predict import extrapolation_notes
    from bayesmix.references import reference_mixtures

    grid = _path_grid(args)  # options first: a bad one is said before the fits load
    posteriors = chosen_posteriors(args, load_merged(args.fits, _load_posteriors))
    weights = parse_assignments(args.weights, "--weights") or None
    domains = next(iter(posteriors.values())).domains
    tokens = parse_assignments(args.tokens, "--tokens")
    lower, upper = bounds_from_args(args, domains)
    baseline = load_merged([args.baseline], load_baseline_option) if args.baseline else None
    report = decide(posteriors, args.n_params, args.n_tokens, target_weights=weights,
                    lower=lower, upper=upper,
                    references=reference_mixtures(args.reference, domains, tokens),
                    baseline=baseline, key=key_from_args(args), tol=args.tol,
                    max_iter=args.max_iter, couple_targets=not args.independent_targets)
    weighed = {t: posteriors[t] for t in report.target_weights}
    for note in extrapolation_notes(weighed, args.n_params, args.n_tokens):  # N, D checked
        print(f"note: {note}", file=sys.stderr)
    # how the decision was made, so that `report --optimum` recomputes it the same way
    payload = {**report.to_dict(), "seed": int(args.seed),
               "discrepancy": not args.no_discrepancy}
    if grid is not None:
        from bayesmix.objective import mixture_objective
        from bayesmix.path import optimum_path

        grid_n, grid_d = grid
        path_lower, path_upper = bounds_from_args(args, domains, with_tokens=False)
        payload["path"] = optimum_path(
            mixture_objective(posteriors, weights), grid_n, grid_d, lower=path_lower,
            upper=path_upper, tol=args.tol, max_iter=args.max_iter, key=key_from_args(args))
    if args.json:
        emit_json(payload)
        return 0
    if args.out is None:
        print(format_report(payload))
        return 0
    import pandas as pd

    draws = pd.DataFrame(report.h_star_draws, columns=[f"h_{d}" for d in domains])
    draws["objective"] = report.h_star_values
    with atomic_dir(args.out) as tmp:
        emit_json(payload, str(tmp / "optimum.json"))
        draws.to_csv(tmp / "h_star_draws.csv", index_label="draw")
    best = payload["h_bayes"]
    print(f"h_bayes: {', '.join(f'{d}={w:.4f}' for d, w in best.items())}")
    print(f"wrote optimum.json and h_star_draws.csv to {args.out}")
    return 0


def _path_grid(args: argparse.Namespace) -> tuple | None:
    """``(N, D)`` of ``--path-flops`` and ``--tokens-per-param``, or None without a path."""
    if not args.path_flops:
        return None
    from bayesmix.path import compute_grid

    try:
        flops = [float(v) for v in args.path_flops.split(",") if v.strip()]
    except ValueError:
        raise BayesmixError(f"--path-flops expects comma-separated numbers, got "
                            f"{args.path_flops!r}") from None
    try:
        return compute_grid(flops, args.tokens_per_param)
    except BayesmixError as exc:
        raise BayesmixError(f"--path-flops {args.path_flops} with --tokens-per-param "
                            f"{args.tokens_per_param}: {exc}") from None


def _interval(stats: dict) -> str:
    return f"[{stats['q05']:.4f}, {stats['q95']:.4f}]"


def format_report(payload: dict) -> str:
    """The human-readable table of an ``OptimumReport.to_dict()`` (with its ``path``)."""
    from bayesmix.coupling import describe

    weights = ", ".join(f"{t}={w:.4g}" for t, w in payload["target_weights"].items())
    lines = [f"optimal mixture at N = {payload['N']:.4g} parameters, D = {payload['D']:.4g} "
             f"tokens; {payload['n_draws']} posterior draws; target weights {weights}", ""]
    bounds = payload["bounds"]
    bounded = any(b["min"] > 0 or b["max"] < 1 for b in bounds.values())
    width = max(len("domain"), *(len(d) for d in payload["h_bayes"]))
    lines.append(f"{'domain':<{width}}  {'h_bayes':>7}  {'h* median':>9}  "
                 f"{'h* 90% interval':>16}" + ("  bounds" if bounded else ""))
    for domain, weight in payload["h_bayes"].items():
        stats = payload["h_star"][domain]
        bound = f"  [{bounds[domain]['min']:.4g}, {bounds[domain]['max']:.4g}]"
        lines.append(f"{domain:<{width}}  {weight:7.4f}  {stats['median']:9.4f}  "
                     f"{_interval(stats):>16}" + (bound if bounded else ""))
    lines.append("")
    objective = payload["objective"]
    width = max(len("mixture"), *(len(n) for n in objective))
    lines.append(f"{'mixture':<{width}}  {'objective median':>16}  {'90% interval':>18}  "
                 f"{'P(h_bayes better)':>17}  {'expected regret':>15}")
    for name, row in objective.items():
        better = "-" if name == "h_bayes" else f"{row['p_h_bayes_better']:.3f}"
        note = "" if row["feasible"] else "  (outside the bounds)"
        lines.append(f"{name:<{width}}  {row['median']:16.6g}  {_interval(row):>18}  "
                     f"{better:>17}  {row['expected_regret']:15.3g}{note}")
    optimizer = payload["optimizer"]
    lines.append("")
    sentence = describe(payload, "; --independent-targets for none")
    if sentence:
        lines.append(sentence)
    lines.append(f"mirror descent: {100 * optimizer['fraction_converged']:.1f}% of draws "
                 f"converged (max Frank-Wolfe gap {optimizer['max_frank_wolfe_gap']:.2g}); "
                 f"h_bayes {'converged' if optimizer['h_bayes_converged'] else 'NOT converged'}")
    for point in payload.get("path", []):
        mixture = ", ".join(f"{d}={w:.4f}" for d, w in point["h_bayes"].items())
        lines.append(f"path N = {point['N']:.4g}, D = {point['D']:.4g}: h_bayes {mixture}")
    return "\n".join(lines)
