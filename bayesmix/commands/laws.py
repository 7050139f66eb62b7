"""``bayesmix laws``: list the built-in laws."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from numpyro import handlers

from bayesmix.commands.common import emit_json
from bayesmix.laws import Law, builtin_law_names, load_law


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "laws", help="list the built-in laws",
        description="List the built-in laws: name, published equation and number of "
                    "sampled parameters for k domains.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--domains", type=_positive_int, default=3, metavar="K",
                        help="number of training domains for the n_params count (default 3)")
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _linear_formula(count: Callable[[int], int]) -> str:
    """A count as ``a + b*k`` (laws are linear in k), checked at k = 2..4."""
    counts = [count(k) for k in (2, 3, 4)]
    slope = counts[1] - counts[0]
    intercept = counts[0] - 2 * slope
    if counts[2] != intercept + 4 * slope:
        return ", ".join(f"k={k}: {c}" for k, c in zip((2, 3, 4), counts, strict=True))
    if slope == 0:
        return str(intercept)
    return f"{intercept} + {slope}k" if slope != 1 else f"{intercept} + k"


def _natural(law: Law, k: int) -> dict[str, Any]:
    """What ``law.natural`` returns for one prior draw at ``k`` domains (empty without it)."""
    if law.natural is None:
        return {}
    k_seen = 1 if law.target_domain_only else k
    params = handlers.seed(law.sample_params, jax.random.key(0))(k_seen, 1.0)
    return law.natural(params, 1.0, 1.0, k_seen)


def _paper_count(law: Law, k: int) -> int:
    """Number of the paper's parameters: the sizes of what ``natural`` returns."""
    return int(sum(np.size(v) for v in _natural(law, k).values()))


def _row(law: Law, k: int) -> dict[str, Any]:
    sites = law.site_shapes(k)
    has_natural = law.natural is not None
    return {
        "name": law.name,
        "equation": law.equation,
        "parameters": _linear_formula(law.n_params),
        "reference": law.reference,
        "k": k,
        "n_params": law.n_params(k),
        "sites": {name: list(shape) for name, shape in sites.items()},
        "uses": list(law.uses),
        "domains": "target" if law.target_domain_only else "all",
        "natural": list(_natural(law, k)),
        "paper_parameters": (_linear_formula(lambda j: _paper_count(law, j))
                             if has_natural else None),
        "n_paper_params": _paper_count(law, k) if has_natural else None,
    }


def run(args: argparse.Namespace) -> int:
    rows = [_row(load_law(name), args.domains) for name in builtin_law_names()]
    if args.json:
        emit_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    pwidth = max(len(r["parameters"]) for r in rows)
    print(f"{'law':<{width}}  {'params':<{pwidth}}  equation")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['parameters']:<{pwidth}}  {r['equation']}")
    return 0
