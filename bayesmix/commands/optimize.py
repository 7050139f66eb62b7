"""``bayesmix optimize``: the optimal mixture under posterior uncertainty."""

from __future__ import annotations

import argparse

from bayesmix._errors import BayesmixError
from bayesmix.commands.common import (
    add_discrepancy_option,
    chosen_posteriors,
    emit_json,
    key_from_args,
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
    parser.add_argument("--N", dest="n_params", type=float, required=True,
                        help="parameters of the planned model")
    parser.add_argument("--D", dest="n_tokens", type=float, required=True,
                        help="training tokens of the planned run")
    parser.add_argument("--weights", default=None, metavar="T=W,...",
                        help="target weights w_t (default: equal weights on every target; "
                             "targets not named get 0)")
    parser.add_argument("--min-weight", default=None, metavar="W | D=W,...",
                        help="minimum weight of every domain, or per domain")
    parser.add_argument("--max-weight", default=None, metavar="W | D=W,...",
                        help="maximum weight of every domain, or per domain")
    parser.add_argument("--tokens", default=None, metavar="D=T,...",
                        help="available tokens per domain (limits h_i * D <= epochs * T_i)")
    parser.add_argument("--max-epochs", default=None, metavar="E | D=E,...",
                        help="passes allowed over a domain's tokens (default 1 with --tokens)")
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
                        help="relative Frank-Wolfe gap at which mirror descent stops")
    parser.add_argument("--max-iter", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the discrepancy draws (default 0)")
    add_discrepancy_option(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="print JSON to stdout instead of the table")
    output.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/optimum.json and DIR/h_star_draws.csv instead of "
                             "printing the table")
    parser.set_defaults(func=run)


def _number_or_assignments(text: str | None, option: str) -> float | dict[str, float] | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return parse_assignments(text, option)


def _load_posteriors(path: str) -> dict:
    from bayesmix.store import load_posteriors

    return load_posteriors(path)


def _load(paths: list[str]) -> dict:
    merged: dict = {}
    for path in paths:
        for target, posterior in _load_posteriors(path).items():
            if target in merged:
                raise BayesmixError(f"target '{target}' is in more than one FIT ({path})")
            merged[target] = posterior
    return merged


def run(args: argparse.Namespace) -> int:
    from bayesmix._io import atomic_dir
    from bayesmix.decision import decide, mixture_bounds
    from bayesmix.references import reference_mixtures

    posteriors = chosen_posteriors(args, _load(args.fits))
    weights = parse_assignments(args.weights, "--weights") or None
    domains = next(iter(posteriors.values())).domains
    tokens = parse_assignments(args.tokens, "--tokens")
    lower, upper = mixture_bounds(
        domains,
        min_weight=_number_or_assignments(args.min_weight, "--min-weight"),
        max_weight=_number_or_assignments(args.max_weight, "--max-weight"),
        tokens=tokens or None,
        max_epochs=_number_or_assignments(args.max_epochs, "--max-epochs"),
        n_tokens=args.n_tokens,
    )
    baseline = _load([args.baseline]) if args.baseline else None
    report = decide(posteriors, args.n_params, args.n_tokens, target_weights=weights,
                    lower=lower, upper=upper,
                    references=reference_mixtures(args.reference, domains, tokens),
                    baseline=baseline, key=key_from_args(args), tol=args.tol,
                    max_iter=args.max_iter)
    payload = report.to_dict()
    if args.path_flops:
        from bayesmix.decision import compute_grid, optimum_path
        from bayesmix.objective import mixture_objective

        try:
            flops = [float(v) for v in args.path_flops.split(",") if v.strip()]
        except ValueError:
            raise BayesmixError(f"--path-flops expects comma-separated numbers, got "
                                f"{args.path_flops!r}") from None
        grid_n, grid_d = compute_grid(flops, args.tokens_per_param)
        path_lower, path_upper = mixture_bounds(
            domains,
            min_weight=_number_or_assignments(args.min_weight, "--min-weight"),
            max_weight=_number_or_assignments(args.max_weight, "--max-weight"))
        payload["path"] = optimum_path(
            mixture_objective(posteriors, weights), grid_n, grid_d, lower=path_lower,
            upper=path_upper, tol=args.tol, max_iter=args.max_iter)
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


def _interval(stats: dict) -> str:
    return f"[{stats['q05']:.4f}, {stats['q95']:.4f}]"


def format_report(payload: dict) -> str:
    """The human-readable table of an ``OptimumReport.to_dict()`` (with its ``path``)."""
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
    lines.append(f"mirror descent: {100 * optimizer['fraction_converged']:.1f}% of draws "
                 f"converged (max Frank-Wolfe gap {optimizer['max_frank_wolfe_gap']:.2g}); "
                 f"h_bayes {'converged' if optimizer['h_bayes_converged'] else 'NOT converged'}")
    for point in payload.get("path", []):
        mixture = ", ".join(f"{d}={w:.4f}" for d, w in point["h_bayes"].items())
        lines.append(f"path N = {point['N']:.4g}, D = {point['D']:.4g}: h_bayes {mixture}")
    return "\n".join(lines)
