"""``bayesmix laws``: list the built-in laws."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from bayesmix.commands.common import emit_json, positive_int
from bayesmix.laws import Law, builtin_law_names, count_formula, load_law


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "laws", help="list the built-in laws",
        description="List the built-in laws: name, number of sampled parameters as a "
                    "formula in k and its value at k = --domains, and published equation.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--domains", type=partial(positive_int, upper=MAX_DOMAINS), default=3,
                        metavar="K",
                        help="number of training domains k at which the parameters are "
                             "counted (default 3)")
    parser.set_defaults(func=run)


MAX_DOMAINS = 10_000
"""The largest ``--domains``: the count draws the priors once for K domains."""


def _row(law: Law, k: int) -> dict[str, Any]:
    sites = law.site_shapes(k)
    has_natural = law.natural is not None
    return {
        "name": law.name,
        "equation": law.equation,
        "parameters": count_formula(law.n_params),
        "reference": law.reference,
        "k": k,
        "n_params": law.n_params(k),
        "sites": {name: list(shape) for name, shape in sites.items()},
        "uses": list(law.uses),
        "domains": "target" if law.target_domain_only else "all",
        "natural": list(law.natural_at_prior_draw(k)),
        "paper_parameters": count_formula(law.n_paper_params) if has_natural else None,
        "n_paper_params": law.n_paper_params(k),
    }


def run(args: argparse.Namespace) -> int:
    rows = [_row(load_law(name), args.domains) for name in builtin_law_names()]
    if args.json:
        emit_json(rows)
        return 0
    count = f"at k={args.domains}"
    width = max(len(r["name"]) for r in rows)
    pwidth = max(len(r["parameters"]) for r in rows)
    cwidth = max(len(count), *(len(str(r["n_params"])) for r in rows))
    print(f"{'law':<{width}}  {'params':<{pwidth}}  {count:>{cwidth}}  equation")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['parameters']:<{pwidth}}  {r['n_params']:>{cwidth}}  "
              f"{r['equation']}")
    return 0
