"""What several subcommands share: run-table options, output and key handling."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import jax

from bayesmix._io import atomic_file
from bayesmix.runs import RunTable, load_runs

__all__ = [
    "add_decision_options",
    "add_discrepancy_option",
    "add_input_options",
    "add_law_and_targets",
    "bounds_from_args",
    "chosen_targets",
    "chosen_posteriors",
    "emit_json",
    "fit_labels",
    "has_table",
    "key_from_args",
    "load_baseline_option",
    "load_merged",
    "parse_assignments",
    "positive_int",
    "table_from_args",
]


def add_input_options(parser: argparse.ArgumentParser, runs: str = "runs", *,
                      required: bool = True, runs_help: str | None = None) -> None:
    """The run-table options every subcommand that reads runs accepts.

    ``runs`` is the argument naming the command's run table (the positional ``runs``,
    or an option such as ``--runs``); ``--ratios`` with ``--metrics`` may stand for it.
    """
    table = parser.add_argument_group("run table (one file, or a ratios and metrics pair)")
    source = table.add_mutually_exclusive_group(required=required)
    runs_help = runs_help or ("run table (CSV, or Parquet with pyarrow): wide, or long "
                              "(with a metric column)")
    if runs.startswith("-"):
        source.add_argument(runs, default=None, metavar="RUNS", help=runs_help)
    else:
        source.add_argument(runs, nargs="?", default=None, metavar="RUNS", help=runs_help)
    instead = "RUNS" if not runs.startswith("-") else runs
    source.add_argument("--ratios", default=None, metavar="FILE",
                        help=f"with --metrics, instead of {instead}: Olmix-style ratios "
                             "file (the run id and domain weights, one row per run)")
    table.add_argument("--metrics", default=None, metavar="FILE",
                       help="with --ratios: the metrics file (the run id with N, D and "
                            "losses; one or more rows per run; wide or long)")
    table.add_argument("--run-col", default="run", metavar="NAME",
                       help="column of run ids, joining --ratios and --metrics (default: run)")
    table.add_argument("--tokens-per-step", type=float, default=None, metavar="T",
                       help="a long table's tokens per step, when it has a step column "
                            "instead of tokens (D = step * T)")
    group = parser.add_argument_group("run-table columns")
    group.add_argument("--n-col", default="N", help="column of parameters N (default: N)")
    group.add_argument("--d-col", default="D", help="column of tokens D (default: D)")
    group.add_argument("--weight-cols", default="h_*", metavar="GLOB",
                       help="glob of domain-weight columns; the domain is what * matched "
                            "(default: h_*)")
    group.add_argument("--loss-cols", default="loss_*", metavar="GLOB",
                       help="glob of loss columns; the target is what * matched "
                            "(default: loss_*)")
    group.add_argument("--n-value", type=float, default=None, metavar="N",
                       help="constant N for files without an N column (fixed-scale sweeps)")
    group.add_argument("--d-value", type=float, default=None, metavar="D",
                       help="constant D for files without a D column")
    group.add_argument("--where", default=None, metavar="EXPR",
                       help="pandas query on canonical names (N, D, h_x, loss_x) to select rows")
    group.add_argument("--renormalize", action="store_true",
                       help="divide each row's weights by their sum instead of rejecting rows "
                            "off the simplex")
    parser.set_defaults(runs_dest=runs.lstrip("-").replace("-", "_"))  # see table_from_args


def has_table(args: argparse.Namespace) -> bool:
    """Whether the command line names a run table (its file, or either file of a pair)."""
    return bool(getattr(args, args.runs_dest) or args.ratios or args.metrics)


def add_law_and_targets(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--law``, ``--target T ... | --all-targets`` and ``--out DIR`` of the fitting commands."""
    parser.add_argument("--law", required=True, help="law name or law file")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--target", nargs="+", action="extend", metavar="T",
                       help="loss target(s) to fit (several may follow, or repeat the option)")
    which.add_argument("--all-targets", action="store_true", help="fit every loss target")
    parser.add_argument("--out", required=True, metavar="DIR", help=out_help)


def chosen_targets(args: argparse.Namespace, table: RunTable) -> list[str]:
    """``--target`` in order without repeats, or every target with ``--all-targets``; notes
    name the loss columns with no value in the selected rows and the domains no run
    trained on."""
    for domain in table.unseen_domains:
        print(f"note: domain {domain} has weight 0 in every run: its share and exponent are "
              f"the prior's, and a mixture that gives it weight is a guess (optimize "
              f"--max-weight {domain}=0 keeps it out)")  # stdout: stderr is for errors
    if not args.all_targets:
        return list(dict.fromkeys(args.target))
    if table.unmeasured:
        print(f"note: not fitted (no loss value in the selected rows): "
              f"{', '.join(table.unmeasured)}")
    return list(table.targets)


def table_from_args(args: argparse.Namespace, path: str | None = None, *,
                    losses_required: bool = True) -> RunTable:
    """Load the command's run table (``path``, a file, instead) with the shared options."""
    from bayesmix._errors import BayesmixError

    flag = "RUNS" if args.runs_dest == "runs" else f"--{args.runs_dest.replace('_', '-')}"
    if path is None and (args.ratios or args.metrics):
        if getattr(args, args.runs_dest):
            raise BayesmixError(f"give {flag} or --ratios and --metrics, not both")
        if not (args.ratios and args.metrics):
            given, missing = ("--ratios", "--metrics") if args.ratios else ("--metrics",
                                                                              "--ratios")
            raise BayesmixError(
                f"{given} needs {missing}: the pair is a ratios file (run id, domain weights) "
                "and a metrics file (run id, N, D, losses)"
            )
        sources = {"ratios": args.ratios, "metrics": args.metrics}
    else:
        sources = {"source": path if path is not None else getattr(args, args.runs_dest)}
    return load_runs(
        **sources,
        n_col=args.n_col,
        d_col=args.d_col,
        weight_cols=args.weight_cols,
        loss_cols=args.loss_cols,
        run_col=args.run_col,
        tokens_per_step=args.tokens_per_step,
        where=args.where,
        renormalize=args.renormalize,
        n_value=args.n_value,
        d_value=args.d_value,
        losses_required=losses_required,
    )


def fit_labels(paths: list[str]) -> list[str]:
    """The directories' names, or their paths where two names are the same."""
    from pathlib import Path

    names = [Path(p).name or p for p in paths]
    return [n if names.count(n) == 1 else p for n, p in zip(names, paths, strict=True)]


def add_discrepancy_option(parser: argparse.ArgumentParser) -> None:
    """``--no-discrepancy``: the law's own predictive, without the learnt term."""
    parser.add_argument("--no-discrepancy", action="store_true",
                        help="leave out the discrepancy term learnt beyond the training "
                             "range (the law's own predictive; see docs/calibration.md)")


def chosen_posteriors(args: argparse.Namespace, posteriors: dict) -> dict:
    """``posteriors`` as ``--no-discrepancy`` asks."""
    from bayesmix.predict import law_only

    return law_only(posteriors) if args.no_discrepancy else posteriors


def load_baseline_option(path: str) -> dict:
    """``--baseline``'s point fits; a Bayesian fit is refused naming its path."""
    from bayesmix._errors import BayesmixError
    from bayesmix.store import load_baseline_posteriors

    try:
        return load_baseline_posteriors(path)
    except BayesmixError as exc:  # say which option gave the directory
        raise BayesmixError(f"--baseline: {exc}") from None


def positive_int(text: str, upper: int | None = None) -> int:
    """An argparse type: a whole number from 1 (to ``upper``, when given)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or (upper is not None and value > upper):
        what = "a positive whole number" if upper is None else f"a whole number from 1 to {upper}"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def key_from_args(args: argparse.Namespace) -> jax.Array:
    """The PRNG key of ``--seed``."""
    return jax.random.key(int(getattr(args, "seed", 0)))


def parse_assignments(text: str | None, option: str) -> dict[str, float]:
    """Parse ``name=value,name=value`` into a dict of floats."""
    from bayesmix._errors import BayesmixError

    if not text:
        return {}
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise BayesmixError(f"{option} expects name=value pairs, got {item!r}") from None
    return out


def emit_json(payload: Any, out: str | None = None) -> None:
    """Print strict JSON to stdout, or write it atomically to ``out``: a non-finite
    number is null (JSON has none, and strict parsers such as jq refuse Python's
    ``NaN``), read back as JSON's constants are."""
    plain = json.loads(json.dumps(payload, default=float), parse_constant=lambda _: None)
    text = json.dumps(plain, indent=2, sort_keys=False, allow_nan=False)
    if out:
        with atomic_file(out) as handle:
            handle.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def add_decision_options(parser: argparse.ArgumentParser) -> None:
    """The decision's goal: ``--N``, ``--D``, target weights and mixture constraints."""
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


def number_or_assignments(text: str | None, option: str) -> float | dict[str, float] | None:
    """``W`` (one number) or ``name=W,...`` (per name), or None."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return parse_assignments(text, option)


def bounds_from_args(args: argparse.Namespace, domains: Any, *, with_tokens: bool = True
                     ) -> tuple[Any, Any]:
    """``(lower, upper)`` of :func:`bayesmix.bounds.mixture_bounds` from the options."""
    from bayesmix.bounds import mixture_bounds

    tokens = parse_assignments(args.tokens, "--tokens") if with_tokens else {}
    return mixture_bounds(
        domains,
        min_weight=number_or_assignments(args.min_weight, "--min-weight"),
        max_weight=number_or_assignments(args.max_weight, "--max-weight"),
        tokens=tokens or None,
        max_epochs=(number_or_assignments(args.max_epochs, "--max-epochs")
                    if with_tokens else None),
        n_tokens=args.n_tokens,
    )


def add_jobs_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--workers`` and ``--scheduler``: where the command's ``what`` (its fits) run."""
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help=f"run {what} in N worker processes at once (default 1: one "
                             "after the other here; the same draws either way)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"run {what} on the Dask cluster at ADDRESS "
                             "(tcp://host:8786; needs bayesmix[distributed])")


def load_merged(paths: list[str], loader: Any = None) -> dict:
    """Per-target results of several FIT directories merged; a target in two is refused.

    ``loader`` maps a path to ``{target: value}`` (default
    :func:`bayesmix.store.load_posteriors`).
    """
    from bayesmix._errors import BayesmixError

    if loader is None:
        from bayesmix.store import load_posteriors as loader
    merged: dict = {}
    for path in paths:
        for target, value in loader(path).items():
            if target in merged:
                raise BayesmixError(f"target '{target}' is in more than one FIT ({path})")
            merged[target] = value
    return merged
