"""``bayesmix laws``: list the built-in laws."""

from __future__ import annotations

import argparse

from bayesmix.commands.common import emit_json
from bayesmix.laws import builtin_law_names, load_law


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "laws", help="list the built-in laws",
        description="List the built-in laws: name, equation and parameter count for k domains.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def _count_formula(law) -> str:
    """Parameter count as ``a + b*k`` (laws are linear in k), checked at k = 2..4."""
    counts = [law.n_params(k) for k in (2, 3, 4)]
    slope = counts[1] - counts[0]
    intercept = counts[0] - 2 * slope
    if counts[2] != intercept + 4 * slope:
        return ", ".join(f"k={k}: {c}" for k, c in zip((2, 3, 4), counts, strict=True))
    if slope == 0:
        return str(intercept)
    return f"{intercept} + {slope}k" if slope != 1 else f"{intercept} + k"


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in builtin_law_names():
        law = load_law(name)
        rows.append({"name": law.name, "equation": law.equation,
                     "parameters": _count_formula(law), "reference": law.reference})
    if args.json:
        emit_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    pwidth = max(len(r["parameters"]) for r in rows)
    print(f"{'law':<{width}}  {'params':<{pwidth}}  equation")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['parameters']:<{pwidth}}  {r['equation']}")
    return 0
