"""Simulated training runs: a paper-like design and a law's losses with realistic noise.

:func:`simulate_runs` returns a :class:`SimulatedRuns`: the run table, validated by
:func:`bayesmix.runs.load_runs` like any user's table, and the parameters it was drawn
from (the truth a recovery test or the demo compares against).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError, first_line
from bayesmix._fitfile import is_number
from bayesmix._io import atomic_file
from bayesmix._random import numpy_rng
from bayesmix.laws import Law
from bayesmix.model import Scales, centred_inputs, law_params, n_law_domains
from bayesmix.prior import sampled_values, traced_with_factors
from bayesmix.runs import RunTable, load_runs

__all__ = ["GivenParams", "SimulatedRuns", "check_sites", "design", "design_reference",
           "draw_law_params", "read_truth", "simplex_grid_mixtures", "simulate_runs",
           "write_truth"]

DEFAULT_SIZES = (1.0e8, 2.0e8, 4.0e8, 8.0e8)
DEFAULT_TOKENS_PER_PARAM = (4.0, 8.0, 16.0, 32.0)


def simplex_grid_mixtures(
    key: jax.Array, k: int, n_mixtures: int, min_weight: float = 0.02, resolution: int = 20
) -> np.ndarray:
    """Distinct mixtures on a grid of the simplex with a minimum weight, shape ``(m, k)``.

    Each mixture is ``min_weight + (1 - k * min_weight) * g`` where ``g`` is a point of
    the regular grid ``{counts / resolution}`` on the simplex. The uniform mixture is
    always the first row.

    Parameters
    ----------
    key : jax.Array
        PRNG key (seeds a NumPy generator through :func:`bayesmix._random.numpy_rng`).
    k : int
        Number of domains, at least 1.
    n_mixtures : int
        Mixtures wanted (fewer when the grid has fewer distinct points).
    min_weight : float
        Smallest weight of any domain; ``k * min_weight`` must be below 1.
    resolution : int
        Grid steps per unit of the free weight.
    """
    if k < 1:
        raise BayesmixError(f"k (the number of domains) must be at least 1, got {k}")
    if n_mixtures < 1:
        raise BayesmixError(f"n_mixtures must be at least 1, got {n_mixtures}")
    if not 0 <= k * min_weight < 1:  # NaN too
        raise BayesmixError(
            f"min_weight {min_weight} does not fit {k} domains "
            f"(k * min_weight must be in [0, 1))"
        )
    rng = numpy_rng(key)
    free = 1.0 - k * min_weight
    mixtures = [np.full(k, 1.0 / k)]
    seen = {tuple(np.round(mixtures[0], 9))}
    attempts = 0
    while len(mixtures) < n_mixtures and attempts < 100 * n_mixtures:
        attempts += 1
        counts = rng.multinomial(resolution, rng.dirichlet(np.ones(k)))
        h = min_weight + free * counts / resolution
        signature = tuple(np.round(h, 9))
        if signature not in seen:
            seen.add(signature)
            mixtures.append(h)
    return np.array(mixtures)


def design(
    key: jax.Array,
    k: int,
    *,
    sizes: Sequence[float] = DEFAULT_SIZES,
    tokens_per_param: Sequence[float] = DEFAULT_TOKENS_PER_PARAM,
    n_mixtures: int = 12,
    min_weight: float = 0.02,
) -> pd.DataFrame:
    """A paper-like design: every mixture at every size and token count.

    Returns a frame with columns ``run``, ``N``, ``D`` and ``h_0 ... h_{k-1}`` (one row
    per (run, checkpoint); a run is a (size, mixture) pair, its checkpoints the token
    counts ``tokens_per_param * N``).
    """
    for argument, values in (("sizes", sizes), ("tokens_per_param", tokens_per_param)):
        values = np.asarray(values, float)
        if values.size == 0 or not np.all(np.isfinite(values) & (values > 0)):
            raise BayesmixError(f"{argument} must be positive numbers, got {values.tolist()}")
    mixtures = simplex_grid_mixtures(key, k, n_mixtures, min_weight)
    rows = []
    for n in sizes:
        for m, h in enumerate(mixtures):
            for ratio in tokens_per_param:
                rows.append({"run": f"N{n:.3g}-m{m}", "N": float(n), "D": float(ratio * n),
                             **{f"h_{i}": w for i, w in enumerate(h)}})
    return pd.DataFrame(rows)


def design_reference(n_params: Any, n_tokens: Any) -> tuple[float, float]:
    """Geometric means of ``n_params`` and ``n_tokens``, shape ``(n,)`` each: the
    ``(N, D)`` at which :func:`simulate_runs` centres a law's sites by default."""
    return (float(np.exp(np.mean(np.log(n_params)))),
            float(np.exp(np.mean(np.log(n_tokens)))))


def _prior_draw_by_resampling(
    key: jax.Array, law: Law, k: int, loss_scale: float, n_proposals: int
) -> dict[str, np.ndarray]:
    """Trace seeded prior draws, sum their factor log-densities, resample one.

    ``k`` is the law's own domain count.
    """

    def proposal(key_one: jax.Array):
        tr, log_factor = traced_with_factors(law.sample_params, key_one, k, loss_scale)
        return sampled_values(tr), log_factor

    key_prop, key_pick = jax.random.split(key)
    sites, log_factor = jax.vmap(proposal)(jax.random.split(key_prop, n_proposals))
    if not bool(jnp.any(jnp.isfinite(log_factor))):
        raise BayesmixError(f"no prior draw of law '{law.name}' satisfies its own factors")
    pick = jax.random.categorical(key_pick, jnp.where(jnp.isfinite(log_factor), log_factor,
                                                      -jnp.inf))
    return {name: np.asarray(value[pick]) for name, value in sites.items()}


def draw_law_params(
    key: jax.Array, law: Law, k: int, loss_scale: float, n_proposals: int = 4000
) -> dict[str, np.ndarray]:
    """One draw of a law's sampled sites from its prior, factors included.

    Sampling statements alone ignore ``numpyro.factor`` terms (such as the prior on a
    derived ``E``), so this draws ``n_proposals`` from the sampling statements and
    resamples one in proportion to ``exp(factors)`` (sampling-importance-resampling).
    """
    return _prior_draw_by_resampling(key, law, n_law_domains(law, k), loss_scale, n_proposals)


class SimulatedRuns(NamedTuple):
    """What :func:`simulate_runs` returns; unpacks as ``table, truth``.

    Attributes
    ----------
    table : RunTable
        The simulated runs, validated by :func:`bayesmix.runs.load_runs`; columns
        ``N, D, h_<domain>..., loss_<target>..., run``, rows numbered from 1.
    truth : dict target -> {site: ndarray}
        The law's sampled sites each target's losses were drawn from.
    """

    table: RunTable
    truth: dict[str, dict[str, np.ndarray]]


def _given_sites(law: Law, k: int, target: str, given: Any) -> dict[str, np.ndarray]:
    """``target``'s given sites as arrays, checked against the law's sampled sites."""
    shapes = law.site_shapes(n_law_domains(law, k))
    if not isinstance(given, dict):
        raise BayesmixError(f"sites of target '{target}' must be {{site: value}}, got a "
                            f"{type(given).__name__}")
    if set(given) != set(shapes):
        raise BayesmixError(f"sites of target '{target}' are {', '.join(sorted(given))}; law "
                            f"'{law.name}' samples {', '.join(shapes)}")
    out = {}
    for name, shape in shapes.items():
        try:
            out[name] = np.asarray(given[name], float)
        except (TypeError, ValueError):
            raise BayesmixError(f"site '{name}' of target '{target}' is not a number or a "
                                f"list of numbers: {given[name]!r}") from None
        if out[name].shape != shape or not np.all(np.isfinite(out[name])):
            raise BayesmixError(f"site '{name}' of target '{target}' must be finite with "
                                f"shape {shape}, got {given[name]!r}")
    return out


def check_sites(law: Law, k: int, sites: Any) -> dict[str, dict[str, np.ndarray]]:
    """``sites`` (target -> {site: value}) as arrays, checked against the law's sites.

    Raises
    ------
    BayesmixError
        ``sites`` is not a mapping, or a target's sites are not the law's sampled
        sites with their shapes for ``k`` domains.
    """
    if not isinstance(sites, dict):
        raise BayesmixError(f"sites must map each target to {{site: value}}, got a "
                            f"{type(sites).__name__}")
    return {target: _given_sites(law, k, target, given) for target, given in sites.items()}


class GivenParams(NamedTuple):
    """What a truth file (``simulate --params``) gives: sites per target and, unless it
    is of the old format, the reference they are centred at and the loss scale."""

    sites: dict[str, Any] | None
    reference: tuple[float, float] | None
    loss_scale: float | None


def _positive(value: Any, where: str) -> float:
    """A positive finite number, or a one-line error naming ``where``."""
    if not (is_number(value) and math.isfinite(value) and value > 0):
        raise BayesmixError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def read_truth(path: str, law: Law, k: int, targets: Sequence[str],
               what: str = "--params") -> GivenParams:
    """Read a truth file: ``{law, reference: {N, D, loss_scale}, targets}`` as
    :func:`write_truth` writes it, or the old ``{target: {site: value}}``.

    Raises
    ------
    BayesmixError
        The file cannot be read, is of another law, its reference is not positive
        numbers, its sites are not the law's for ``k`` domains, or it names targets
        outside ``targets`` (``what`` names the file's option in the message).
    """
    where = f"{what} {path}"
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:  # ValueError: JSON or UTF-8 decoding
        raise BayesmixError(f"cannot read {where}: {first_line(exc)}") from None
    if not (isinstance(data, dict) and "targets" in data
            and set(data) <= {"law", "reference", "targets"}):
        try:
            given = GivenParams(check_sites(law, k, data), None, None)
        except BayesmixError as exc:
            raise BayesmixError(f"{where}: {exc}") from None
    else:
        if "law" in data and data["law"] != law.name:
            raise BayesmixError(f"{where}: field 'law' is {data['law']!r}, but this "
                                f"simulation's law is '{law.name}' (give --law)")
        reference = data.get("reference")
        if not isinstance(reference, dict) or not {"N", "D"} <= set(reference):
            raise BayesmixError(f"{where}: field 'reference' must be {{N, D, loss_scale}}, "
                                f"got {reference!r}")
        n_ref, d_ref = (_positive(reference[f], f"{where}: field 'reference.{f}'")
                        for f in "ND")
        scale = reference.get("loss_scale")
        if scale is not None:
            scale = _positive(scale, f"{where}: field 'reference.loss_scale'")
        try:
            sites = check_sites(law, k, data["targets"])
        except BayesmixError as exc:
            raise BayesmixError(f"{where}: field 'targets': {exc}") from None
        given = GivenParams(sites, (n_ref, d_ref), scale)
    other = [t for t in given.sites if t not in targets]
    if other:
        raise BayesmixError(f"{where}: target(s) {', '.join(other)} are not among this "
                            f"simulation's targets ({', '.join(targets)})")
    return given


def write_truth(path: str, law: Law, reference: tuple[float, float], loss_scale: float,
                truth: dict[str, dict[str, np.ndarray]]) -> None:
    """Write the parameters a simulation used (``simulate --truth-out``), atomically:
    ``{law, reference: {N, D, loss_scale}, targets: {target: {site: value}}}``, what
    :func:`read_truth` reads back to simulate the same law on another design."""
    record = {
        "law": law.name,
        "reference": {"N": reference[0], "D": reference[1], "loss_scale": loss_scale},
        "targets": {t: {k: v.tolist() for k, v in s.items()} for t, s in truth.items()},
    }
    with atomic_file(path) as handle:
        json.dump(record, handle, indent=2)


def _checked_reference(reference: Any) -> tuple[float, float]:
    try:
        n_ref, d_ref = (float(v) for v in reference)
    except (TypeError, ValueError):
        raise BayesmixError(f"reference must be two numbers (N, D), got {reference!r}") from None
    if not all(np.isfinite(v) and v > 0 for v in (n_ref, d_ref)):
        raise BayesmixError(f"reference (N, D) must be positive and finite, got {reference!r}")
    return n_ref, d_ref


def simulate_runs(
    key: jax.Array,
    law: Law,
    k: int,
    *,
    domain_names: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    sites: dict[str, dict[str, Any]] | None = None,
    sizes: Sequence[float] = DEFAULT_SIZES,
    tokens_per_param: Sequence[float] = DEFAULT_TOKENS_PER_PARAM,
    n_mixtures: int = 12,
    min_weight: float = 0.02,
    noise: float = 0.003,
    run_noise: float = 0.0,
    run_correlation: float = 0.0,
    loss_scale: float = 3.0,
    reference: tuple[float, float] | None = None,
) -> SimulatedRuns:
    """Simulate a validated run table from a law.

    Parameters
    ----------
    key : jax.Array
        PRNG key.
    law : Law
    k : int
        Number of training domains.
    domain_names : sequence of str, optional
        Default ``d0 ... d{k-1}``.
    targets : sequence of str, optional
        Loss targets; default one per domain.
    sites : dict target -> {site: value}, optional
        The law's sampled sites for each target (centred at ``reference``); drawn from
        the prior when missing.
    sizes, tokens_per_param, n_mixtures, min_weight
        The design (see :func:`design`).
    noise : float
        Relative row noise: losses are ``mean * exp(run_noise * u + noise * eps)`` with
        ``eps ~ Normal(0, 1)`` per row.
    run_noise : float
        Relative offset shared by a run's rows, ``u ~ Normal(0, 1)`` per run (a run is
        a size and mixture; real runs deviate from a law together).
    run_correlation : float
        Correlation in ``[0, 1]`` of a run's offsets across targets (a run unlucky on
        one domain is unlucky on others): ``u = sqrt(1 - c) u_target + sqrt(c) u_run``
        with ``u_run`` shared by the targets.
    loss_scale : float
        Typical loss, the prior's scale when parameters are drawn. It is also passed
        to the law with the sites (the built-in laws use it in their priors only, so
        there it does not change what given sites mean; a law file may use it more).
    reference : (float, float), optional
        ``(N, D)`` in parameters and tokens at which every target's sites are centred
        (``log N̂ = log(N / N_ref)``; the loss at the reference point is ``loss_ref``).
        Default the design's geometric means (:func:`design_reference`): give the
        reference the sites were drawn at to simulate the same law on another design.

    Returns
    -------
    SimulatedRuns
        ``(table, truth)``: the :class:`~bayesmix.runs.RunTable` (through the same
        validation as :func:`~bayesmix.runs.load_runs`) and the parameters used.

    Examples
    --------
    ::

        table, truth = simulate_runs(jax.random.key(0), load_law("additive"), 3)
    """
    if k < 1:
        raise BayesmixError(f"k (the number of domains) must be at least 1, got {k}")
    if not (np.isfinite(loss_scale) and loss_scale > 0):
        raise BayesmixError(f"loss_scale must be positive and finite, got {loss_scale}")
    for option, value in (("noise", noise), ("run_noise", run_noise)):
        if not (np.isfinite(value) and value >= 0):
            raise BayesmixError(f"{option} must be at least 0 and finite, got {value}")
    if not 0 <= run_correlation <= 1:
        raise BayesmixError(f"run_correlation must be in [0, 1], got {run_correlation}")
    if sites is not None and not isinstance(sites, dict):
        raise BayesmixError(f"sites must map each target to {{site: value}}, got a "
                            f"{type(sites).__name__}")
    if reference is not None:
        reference = _checked_reference(reference)
    names = list(domain_names) if domain_names is not None else [f"d{i}" for i in range(k)]
    if len(names) != k:
        raise BayesmixError(f"{len(names)} domain_names given for {k} domains")
    targets = list(targets) if targets is not None else names
    key_design, key_params, key_noise = jax.random.split(key, 3)
    frame = design(key_design, k, sizes=sizes, tokens_per_param=tokens_per_param,
                   n_mixtures=n_mixtures, min_weight=min_weight)
    frame = frame.rename(columns={f"h_{i}": f"h_{d}" for i, d in enumerate(names)})
    weights = frame[[f"h_{d}" for d in names]].to_numpy(float)
    n_ref, d_ref = (design_reference(frame["N"], frame["D"]) if reference is None
                    else reference)
    scales = Scales(n_ref=n_ref, d_ref=d_ref, loss_scale=loss_scale)
    truth: dict[str, dict[str, np.ndarray]] = {}
    run = pd.factorize(frame["run"])[0]
    shared = np.asarray(jax.random.normal(jax.random.fold_in(key_design, 1), (run.max() + 1,)))
    for t_index, target in enumerate(targets):
        given = (sites or {}).get(target)
        site_values = (
            _given_sites(law, k, target, given) if given is not None
            else draw_law_params(jax.random.fold_in(key_params, t_index), law, k, loss_scale)
        )
        truth[target] = site_values
        target_index = names.index(target) if target in names else None
        log_n, log_d, h = centred_inputs(law, scales, frame["N"], frame["D"], weights,
                                         target_index)
        params = law_params(law, n_law_domains(law, k), loss_scale, site_values)
        mean = np.asarray(law.mean(params, log_n, log_d, h))
        key_row = jax.random.fold_in(key_noise, t_index)
        key_run = jax.random.fold_in(key_row, 1)
        eps = np.asarray(jax.random.normal(key_row, mean.shape))
        u = np.asarray(jax.random.normal(key_run, (run.max() + 1,)))
        u = (np.sqrt(1.0 - run_correlation) * u + np.sqrt(run_correlation) * shared)[run]
        frame[f"loss_{target}"] = mean * np.exp(run_noise * u + noise * eps)
    if not np.all(np.isfinite(frame[[f"loss_{t}" for t in targets]].to_numpy())):
        raise BayesmixError(f"law '{law.name}' gave non-finite losses for these parameters")
    table = load_runs(frame, name=f"<runs simulated from law '{law.name}'>")
    return SimulatedRuns(table=table, truth=truth)
