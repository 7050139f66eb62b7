"""``bayesmix simulate``: draw a run table from a law."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, NamedTuple

from bayesmix._errors import BayesmixError, first_line
from bayesmix._fitfile import is_number
from bayesmix.commands.common import key_from_args
from bayesmix.laws import Law, load_law
from bayesmix.runs import write_runs
from bayesmix.simulate import (
    DEFAULT_SIZES,
    DEFAULT_TOKENS_PER_PARAM,
    check_sites,
    design_reference,
    simulate_runs,
)

DEFAULT_LOSS_SCALE = 3.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="simulate training runs from a law",
        description="Simulate a canonical run table from a law with given or prior-drawn "
                    "parameters, on a paper-like design (every mixture at every size and "
                    "token count) with relative noise.",
    )
    parser.add_argument("--law", default="additive", help="law name or law file")
    parser.add_argument("--domains", type=int, default=3, help="number of training domains")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output run table (.csv or .parquet)")
    parser.add_argument("--sizes", default=",".join(f"{n:g}" for n in DEFAULT_SIZES),
                        help="model sizes N, comma-separated")
    parser.add_argument("--tokens-per-param",
                        default=",".join(f"{r:g}" for r in DEFAULT_TOKENS_PER_PARAM),
                        help="checkpoints D/N, comma-separated")
    parser.add_argument("--mixtures", type=int, default=12, help="number of distinct mixtures")
    parser.add_argument("--min-weight", type=float, default=0.02)
    parser.add_argument("--noise", type=float, default=0.003,
                        help="relative noise on the loss (default 0.003, i.e. 0.3%%)")
    parser.add_argument("--run-noise", type=float, default=0.0,
                        help="relative offset shared by a run's checkpoints (default 0)")
    parser.add_argument("--loss-scale", type=float, default=None,
                        help="typical loss, the prior's scale for drawn parameters (default "
                             f"--params' loss_scale, else {DEFAULT_LOSS_SCALE:g})")
    parser.add_argument("--params", default=None,
                        help="JSON file of parameters to use instead of prior draws, as "
                             "--truth-out writes it (its sites are centred at its reference "
                             "N and D, whatever --sizes and --tokens-per-param); an older "
                             "{target: {site: value}} file is centred at this design's "
                             "geometric-mean N and D")
    parser.add_argument("--truth-out", default=None,
                        help="write the parameters used to this JSON file: {law, reference: "
                             "{N, D, loss_scale}, targets: {target: {site: value}}}")
    parser.set_defaults(func=run, outputs={"out": "file", "truth_out": "file"})


def _floats(text: str, option: str) -> list[float]:
    """Parse comma-separated numbers (the library checks that they are positive)."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BayesmixError(f"{option} expects comma-separated numbers, got {text!r}") from None


class GivenParams(NamedTuple):
    """What a ``--params`` file gives: sites per target and, unless it is of the old
    format, the reference they are centred at and the loss scale."""

    sites: dict[str, Any] | None
    reference: tuple[float, float] | None
    loss_scale: float | None


def _number(value: Any, where: str) -> float:
    """A positive finite number, or a one-line error naming ``where``."""
    if not (is_number(value) and math.isfinite(value) and value > 0):
        raise BayesmixError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def read_params(path: str, law: Law, k: int) -> GivenParams:
    """Read a ``--params`` file: ``{law, reference: {N, D, loss_scale}, targets}`` as
    ``--truth-out`` writes it, or the old ``{target: {site: value}}``."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:  # ValueError: JSON or UTF-8 decoding
        raise BayesmixError(f"cannot read --params {path}: {first_line(exc)}") from None
    where = f"--params {path}"
    if not (isinstance(data, dict) and "targets" in data
            and set(data) <= {"law", "reference", "targets"}):
        try:
            return GivenParams(check_sites(law, k, data), None, None)
        except BayesmixError as exc:
            raise BayesmixError(f"{where}: {exc}") from None
    if "law" in data and data["law"] != law.name:
        raise BayesmixError(f"{where}: field 'law' is {data['law']!r}, but this simulation's "
                            f"law is '{law.name}' (give --law)")
    reference = data.get("reference")
    if not isinstance(reference, dict) or not {"N", "D"} <= set(reference):
        raise BayesmixError(f"{where}: field 'reference' must be {{N, D, loss_scale}}, got "
                            f"{reference!r}")
    n_ref, d_ref = (_number(reference[f], f"{where}: field 'reference.{f}'") for f in "ND")
    scale = reference.get("loss_scale")
    if scale is not None:
        scale = _number(scale, f"{where}: field 'reference.loss_scale'")
    try:
        sites = check_sites(law, k, data["targets"])
    except BayesmixError as exc:
        raise BayesmixError(f"{where}: field 'targets': {exc}") from None
    return GivenParams(sites, (n_ref, d_ref), scale)


def run(args: argparse.Namespace) -> int:
    from bayesmix._io import atomic_file

    law = load_law(args.law)
    given = GivenParams(None, None, None)
    if args.params:
        given = read_params(args.params, law, args.domains)
        names = [f"d{i}" for i in range(args.domains)]
        other = [t for t in given.sites if t not in names]
        if other:
            raise BayesmixError(f"--params {args.params}: target(s) {', '.join(other)} are not "
                                f"among this simulation's targets ({', '.join(names)})")
    loss_scale = args.loss_scale
    if loss_scale is not None and given.loss_scale is not None and loss_scale != given.loss_scale:
        raise BayesmixError(f"--loss-scale {loss_scale:g} conflicts with loss_scale "
                            f"{given.loss_scale:g} of --params {args.params}; drop one")
    if loss_scale is None:
        loss_scale = given.loss_scale if given.loss_scale is not None else DEFAULT_LOSS_SCALE
    table, truth = simulate_runs(
        key_from_args(args), law, args.domains,
        sites=given.sites,
        sizes=_floats(args.sizes, "--sizes"),
        tokens_per_param=_floats(args.tokens_per_param, "--tokens-per-param"),
        n_mixtures=args.mixtures, min_weight=args.min_weight, noise=args.noise,
        run_noise=args.run_noise,
        loss_scale=loss_scale,
        reference=given.reference,
    )
    reference = given.reference or design_reference(table.frame["N"], table.frame["D"])
    if args.params and given.reference is None:
        print(f"note: --params {args.params} gives no reference: its sites are centred at "
              f"this design's geometric-mean N {reference[0]:.4g} and D {reference[1]:.4g} "
              f"(a file from --truth-out keeps the law on any design)", file=sys.stderr)
    write_runs(table, args.out)
    if args.truth_out:
        record = {
            "law": law.name,
            "reference": {"N": reference[0], "D": reference[1], "loss_scale": loss_scale},
            "targets": {t: {k: v.tolist() for k, v in s.items()} for t, s in truth.items()},
        }
        with atomic_file(args.truth_out) as handle:
            json.dump(record, handle, indent=2)
    print(f"wrote {len(table.frame)} rows ({args.domains} domains, law {law.name}) to {args.out}")
    return 0
