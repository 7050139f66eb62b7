"""The Bayesian fit: a law's posterior for each target under NUTS, with diagnostics.

The stage after ``model``: :func:`bayesmix.model.loss_model` (the law's priors plus a
Student-t likelihood) is sampled with NUTS. Scaling laws are multimodal (a term can
trade size with another, an exponent with an amplitude), and a naive start leaves
chains in different modes. So every chain starts at the best of ~20 L-BFGS runs on
the potential energy from prior draws (:func:`find_start`); a dense mass matrix
absorbs the remaining correlations. Every fit reports R-hat, bulk and tail ESS,
divergences, tree-depth saturation and E-BFMI, and warns in plain words when one
fails (:class:`TargetFit`).

Public API: :func:`find_start`, :func:`fit_target`, :func:`fit`,
:func:`prior_predictive`, :func:`save_fit`, :func:`load_fit`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.optimize
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import constrain_fn, potential_energy

from bayesmix._compiled import releasing_compiled
from bayesmix._errors import BayesmixError
from bayesmix._io import atomic_dir
from bayesmix._nuts_defaults import CHAINS, DRAWS, TARGET_ACCEPT, WARMUP
from bayesmix._random import numpy_rng
from bayesmix._threads import one_blas_thread
from bayesmix.fitdir import FIT_FORMAT, check_fit_dir, law_of_fit
from bayesmix.laws import Law, free_sites
from bayesmix.model import (
    LIKELIHOODS,
    Scales,
    TargetPosterior,
    centred_inputs,
    check_enough_rows,
    design_effect,
    loss_model,
    n_law_domains,
    noise,
    noise_draws,
    on_likelihood_scale,
    scales_for,
)
from bayesmix.runs import RunTable, TargetData

__all__ = [
    "FORMAT",
    "Fit",
    "StartPoint",
    "TargetFit",
    "find_start",
    "fit",
    "fit_target",
    "load_fit",
    "prior_predictive",
    "save_fit",
]

FORMAT = FIT_FORMAT

# Thresholds of the convergence checks (Vehtari et al. 2021; Betancourt 2016).
RHAT_MAX = 1.01
ESS_MIN = 400
SATURATION_MAX = 0.01
BFMI_MIN = 0.3
# Arithmetic of the NUTS run (the start, the summaries and the saved draws are float64).
PRECISIONS = ("float32", "float64")
# L-BFGS: iterations of the scouting runs, and how many of the best are polished.
_SCOUT_ITER = 100
_POLISH = 3


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Inputs:
    """A target's data as the model reads it."""

    law: Law
    k: int
    scales: Scales
    data: TargetData
    log_n: jax.Array
    log_d: jax.Array
    h: jax.Array
    target_index: int | None


def _inputs(law: Law, table: RunTable, target: str) -> _Inputs:
    table.check_target(target)
    data = table.target_data(target)
    check_enough_rows(law, table, target, len(data.loss))
    scales = scales_for(data)
    target_index = table.target_index(target)
    log_n, log_d, h = centred_inputs(law, scales, data.n_params, data.n_tokens, data.weights,
                                     target_index)
    return _Inputs(law, n_law_domains(law, len(table.domains)), scales, data, log_n, log_d, h,
                   target_index)


def _model(law: Law, k: int, scales: Scales, likelihood: str, weight: float = 1.0):
    """The NumPyro model with the law fixed; data are its arguments."""
    return partial(loss_model, law, k, scales, likelihood=likelihood, weight=weight)


def _param_names(law: Law, k: int, loss_scale: float) -> list[str]:
    """Names of the law's parameters (sampled and derived), as ``sample_params`` returns."""
    with numpyro.handlers.block(), numpyro.handlers.seed(rng_seed=0):
        return list(law.sample_params(k, loss_scale))


# --------------------------------------------------------------------------- start


@dataclass(frozen=True)
class StartPoint:
    """Where every chain starts: the best of several L-BFGS runs on the potential.

    Attributes
    ----------
    unconstrained : dict of name -> ndarray
        Site values in the sampler's unconstrained space.
    constrained : dict of name -> ndarray
        The same point in the model's space.
    potential : float
        Potential energy (minus log joint density, unconstrained) at the start.
    potentials : ndarray, shape ``(n_starts,)``
        Final potential of every L-BFGS run (``inf`` for a failed run).
    seconds : float
        Wall time of the search.
    covariance : ndarray, shape ``(d, d)``
        Laplace approximation of the posterior covariance at the start, unconstrained
        and flattened in sorted site order (NumPyro's order).
    """

    unconstrained: dict[str, np.ndarray]
    constrained: dict[str, np.ndarray]
    potential: float
    potentials: np.ndarray
    seconds: float
    covariance: np.ndarray | None = None

    def __repr__(self) -> str:
        finite = np.isfinite(self.potentials)
        spread = np.sort(self.potentials[finite])
        near = int(np.sum(spread - self.potential < 1.0))
        return (f"StartPoint(potential={self.potential:.4g}, runs={len(self.potentials)}, "
                f"failed={int((~finite).sum())}, within_1_of_best={near}, "
                f"seconds={self.seconds:.2f})")


def find_start(
    key: jax.Array,
    law: Law,
    k: int,
    scales: Scales,
    log_n: jax.Array,
    log_d: jax.Array,
    h: jax.Array,
    loss: jax.Array,
    likelihood: str = "log",
    n_starts: int = 20,
    max_iter: int = 2000,
) -> StartPoint:
    """Best of ``n_starts`` L-BFGS runs on the model's potential energy.

    Starts are prior draws mapped to the unconstrained space (a draw whose potential
    is not finite counts as a failed run); each is run to convergence by
    ``scipy.optimize.minimize(method="L-BFGS-B")`` on a jitted value-and-gradient of
    the potential. The best end point is returned
    (the posterior mode in unconstrained space, a MAP estimate).

    Parameters
    ----------
    key : jax.Array
        PRNG key.
    law : Law
    k : int
        Number of weights the law sees.
    scales : Scales
    log_n, log_d : Array, shape ``(n,)``
        Centred log parameters and tokens.
    h : Array, shape ``(n, k)``
    loss : Array, shape ``(n,)``
        Observed losses.
    likelihood : {"log", "raw"}
    n_starts : int
    max_iter : int
        Iterations per L-BFGS run.

    Returns
    -------
    StartPoint
    """
    start = time.perf_counter()
    model = _model(law, k, scales, likelihood)
    args = (log_n, log_d, h, loss)
    # Prior draws can put E below zero; NumPyro's eager argument checks would raise on
    # them while the model is traced here (never inside jit), so they are off.
    with numpyro.validation_enabled(False):
        z0 = _prior_draws(key, model, args, n_starts)
    potential_fn = partial(potential_energy, model, args, {})
    _, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], z0))

    value_and_grad = jax.jit(jax.value_and_grad(lambda x: potential_fn(unravel(x))))

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(jnp.asarray(x))
        value = float(value)
        grad = np.asarray(grad, dtype=float)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(grad)
        return value, grad

    flats = [np.asarray(ravel_pytree(jax.tree.map(lambda x, i=i: x[i], z0))[0])
             for i in range(n_starts)]

    def run(x0: np.ndarray, iterations: int) -> scipy.optimize.OptimizeResult:
        return scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                       options={"maxiter": iterations})

    # Stage 1: every start for a few hundred iterations; stage 2: the best few to
    # convergence.
    with one_blas_thread():
        first = [run(x, _SCOUT_ITER) for x in flats]
        values = np.array([float(r.fun) if np.isfinite(r.fun) and r.fun < 1e299 else np.inf
                           for r in first])
        order = [int(i) for i in np.argsort(values)[:_POLISH] if np.isfinite(values[i])]
        polished = {i: run(first[i].x, max_iter) for i in order}
    potentials = values.copy()
    for i, result in polished.items():
        if np.isfinite(result.fun) and result.fun < potentials[i]:
            potentials[i] = float(result.fun)
            first[i] = result
    if not np.isfinite(potentials).any():
        raise BayesmixError(
            f"law '{law.name}': no L-BFGS start reached a finite posterior density "
            f"({n_starts} prior draws)"
        )
    best = int(np.argmin(potentials))
    best_x, best_value = first[best].x, float(potentials[best])
    hessian = np.asarray(jax.jit(jax.hessian(lambda x: potential_fn(unravel(x))))(
        jnp.asarray(best_x)))
    unconstrained = jax.tree.map(np.asarray, unravel(jnp.asarray(best_x)))
    with numpyro.validation_enabled(False):
        constrained = jax.tree.map(np.asarray, constrain_fn(
            model, args, {}, unravel(jnp.asarray(best_x)), return_deterministic=True))
    return StartPoint(unconstrained, constrained, best_value, potentials,
                      time.perf_counter() - start, _laplace_covariance(hessian))


def _prior_draws(key: jax.Array, model: Any, args: tuple, n: int) -> dict[str, jax.Array]:
    """``n`` prior draws of the model's sampled sites, in unconstrained space.

    One jitted, vmapped trace of the model (1.7 s on the paper's runs, where NumPyro's
    ``initialize_model`` took 6 s for the same draws).
    """
    def one(k: jax.Array) -> dict[str, jax.Array]:
        return {name: biject_to(site["fn"].support).inv(site["value"])
                for name, site in free_sites(model, k, *args).items()}

    return jax.jit(jax.vmap(one))(jax.random.split(key, n))


def _laplace_covariance(hessian: np.ndarray, min_curvature: float = 1e-2) -> np.ndarray:
    """Inverse of the potential's Hessian at the mode, curvatures clipped to be positive.

    The Laplace approximation of the posterior in unconstrained space; used as the
    sampler's initial inverse mass matrix so that the first warmup window does not
    start from the identity (which on these laws saturates the tree depth).
    """
    hessian = 0.5 * (hessian + hessian.T)
    if not np.all(np.isfinite(hessian)):
        return np.eye(hessian.shape[0])
    eigenvalues, vectors = np.linalg.eigh(hessian)
    eigenvalues = np.maximum(eigenvalues, min_curvature)
    return (vectors / eigenvalues) @ vectors.T


# --------------------------------------------------------------------------- results


@dataclass
class TargetFit:
    """The posterior of one target: draws, diagnostics and everything to reproduce it.

    Attributes
    ----------
    target : str
    law : Law
    domains : tuple of str
    scales : Scales
    rows : ndarray of int
        Source-file rows used.
    likelihood : str
    idata : arviz.InferenceData
        Groups posterior, sample_stats, log_likelihood, posterior_predictive,
        observed_data, constant_data.
    param_names : list of str
        The law's parameters (sampled and derived) in the posterior group.
    diagnostics : dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``draws``, ``saturation`` (share of draws at maximum tree depth),
        ``bfmi`` (per chain), ``mean_steps`` (leapfrog steps a draw).
    warnings : list of str
        Plain-language messages for each failed check (empty when all pass).
    timings : dict
        Seconds for ``start``, ``sampling``, ``diagnostics``, ``total``.
    settings : dict
        Sampler settings used.
    """

    target: str
    law: Law
    domains: tuple[str, ...]
    scales: Scales
    rows: np.ndarray
    likelihood: str
    idata: Any
    param_names: list[str]
    diagnostics: dict[str, Any]
    warnings: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return not self.warnings

    @property
    def posterior(self) -> TargetPosterior:
        """Draws (chains stacked) as a :class:`TargetPosterior` for prediction."""
        post = self.idata.posterior

        def stacked(name: str) -> np.ndarray:
            values = np.asarray(post[name].values)
            return values.reshape((-1,) + values.shape[2:])

        return TargetPosterior(
            law=self.law, target=self.target, domains=self.domains, scales=self.scales,
            params={name: stacked(name) for name in self.param_names},
            noise={"sigma": stacked("sigma"), "nu": stacked("nu")},
            likelihood=self.likelihood,
        )

    def summary(self) -> Any:
        """ArviZ summary table of the law's parameters and the noise."""
        import arviz as az

        return az.summary(self.idata, var_names=[*self.param_names, "sigma", "nu"])

    def __repr__(self) -> str:
        d = self.diagnostics
        lines = [
            f"TargetFit(target={self.target!r}, law={self.law.name!r}, rows={len(self.rows)})",
            f"   converged: {self.converged}",
            f"    max_rhat: {d['max_rhat']:.4f}",
            f"min_ess_bulk: {d['min_ess_bulk']:.0f}",
            f"min_ess_tail: {d['min_ess_tail']:.0f}",
            f" divergences: {d['divergences']} of {d['draws']}",
            f"  saturation: {100 * d['saturation']:.2f} % of draws at max tree depth",
            f"        bfmi: {', '.join(f'{b:.2f}' for b in d['bfmi'])}",
            f"  mean_steps: {d['mean_steps']:.0f}",
            f"     seconds: {self.timings.get('total', float('nan')):.1f}",
        ]
        lines += [f"     warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    __str__ = __repr__


@dataclass
class Fit:
    """A Bayesian fit of one law to several targets of a run table.

    Attributes
    ----------
    law : Law
    targets : dict of target -> TargetFit
    domains : tuple of str
    seed : int
    source : str
        The run table's source.
    """

    law: Law
    targets: dict[str, TargetFit]
    domains: tuple[str, ...]
    seed: int
    source: str = "<memory>"

    @property
    def posteriors(self) -> dict[str, TargetPosterior]:
        return {t: f.posterior for t, f in self.targets.items()}

    @property
    def warnings(self) -> list[str]:
        return [f"{t}: {w}" for t, f in self.targets.items() for w in f.warnings]

    def diagnostics_table(self) -> str:
        """One line per target: R-hat, ESS, divergences, saturation, E-BFMI, steps per
        draw, design effect of the runs, seconds."""
        header = (f"{'target':<16} {'R-hat':>7} {'ESS bulk':>9} {'ESS tail':>9} {'div':>5} "
                  f"{'sat %':>6} {'min BFMI':>8} {'steps':>6} {'deff':>5} {'sec':>6}  ok")
        lines = [header]
        for target, f in self.targets.items():
            d = f.diagnostics
            lines.append(
                f"{target:<16} {d['max_rhat']:7.4f} {d['min_ess_bulk']:9.0f} "
                f"{d['min_ess_tail']:9.0f} {d['divergences']:5d} {100 * d['saturation']:6.2f} "
                f"{min(d['bfmi']):8.2f} {d['mean_steps']:6.0f} "
                f"{d.get('design_effect', 1.0):5.2f} "
                f"{f.timings.get('total', float('nan')):6.1f}  {'yes' if f.converged else 'NO'}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Fit(law={self.law.name!r}, targets={list(self.targets)}, seed={self.seed})\n"
                + self.diagnostics_table())

    __str__ = __repr__


# --------------------------------------------------------------------------- sampling


def _chain_method(chains: int) -> str:
    """Parallel when every chain has a device, otherwise sequential.

    Measured on the additive law (1532 runs, float64): one gradient of 4 vectorized
    chains costs 4 times one chain's, and vectorized NUTS moves in lockstep (each
    iteration costs the longest of the chains' trajectories), so with too few
    devices chains run one after the other. The CLI sets one device per chain.
    """
    return "parallel" if jax.local_device_count() >= chains else "sequential"


def _worst(ds: Any, var_names: list[str], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` largest values of a per-parameter statistic, labelled ``name[coord]``."""
    items = []
    for name in var_names:
        values = np.ravel(np.asarray(ds[name].values, float))
        if ds[name].ndim == 1:
            labels = [f"{name}[{c}]" for c in np.ravel(ds[name][ds[name].dims[0]].values)]
        elif values.size == 1:
            labels = [name]
        else:
            labels = [f"{name}[{i}]" for i in range(values.size)]
        items += [(label, float(v)) for label, v in zip(labels, values, strict=True)
                  if np.isfinite(v)]
    return sorted(items, key=lambda item: -item[1])[:n]


def _extreme(ds: Any, fn: Any) -> float:
    """``fn`` (max or min) over every finite value of every variable of ``ds``."""
    values = np.concatenate([np.ravel(ds[v].values) for v in ds.data_vars])
    values = values[np.isfinite(values)]
    return float(fn(values)) if values.size else float("nan")


def _mixed(posterior: dict[str, np.ndarray]) -> bool:
    """Whether draws grouped by chain pass the R-hat and bulk-ESS checks of a fit."""
    import arviz as az

    ds = az.convert_to_dataset(posterior)
    return (_extreme(az.rhat(ds), np.max) <= RHAT_MAX
            and _extreme(az.ess(ds, method="bulk"), np.min) >= ESS_MIN)


def _diagnose(idata: Any, max_tree_depth: int) -> tuple[dict, list[str]]:
    import arviz as az

    var_names = list(idata.posterior.data_vars)
    rhat = az.rhat(idata, var_names=var_names)
    ess_bulk = az.ess(idata, var_names=var_names, method="bulk")
    ess_tail = az.ess(idata, var_names=var_names, method="tail")

    stats = idata.sample_stats
    diverging = np.asarray(stats["diverging"].values)
    steps = np.asarray(stats["n_steps"].values)
    saturated = steps >= 2**max_tree_depth - 1
    bfmi = [float(b) for b in np.atleast_1d(az.bfmi(idata))]
    diag = {
        "max_rhat": _extreme(rhat, np.max),
        "min_ess_bulk": _extreme(ess_bulk, np.min),
        "min_ess_tail": _extreme(ess_tail, np.min),
        "divergences": int(diverging.sum()),
        "draws": int(diverging.size),
        "saturation": float(saturated.mean()),
        "bfmi": bfmi,
        "mean_steps": float(steps.mean()),
    }
    diag["worst_rhat"] = _worst(rhat, var_names)
    warnings = []
    if not diag["max_rhat"] <= RHAT_MAX:
        worst = ", ".join(f"{name} {value:.3f}" for name, value in diag["worst_rhat"])
        warnings.append(f"chains disagree (max R-hat {diag['max_rhat']:.3f} > {RHAT_MAX}; "
                        f"worst: {worst}): they may sit in different modes; run longer "
                        "(--max-draws) or check the law")
    if not diag["min_ess_bulk"] >= ESS_MIN:
        warnings.append(f"too few effective draws (min bulk ESS {diag['min_ess_bulk']:.0f} < "
                        f"{ESS_MIN}): increase --draws or --max-draws")
    if diag["min_ess_tail"] < ESS_MIN:
        warnings.append(f"intervals are uncertain (min tail ESS {diag['min_ess_tail']:.0f} < "
                        f"{ESS_MIN}): increase --draws")
    if diag["divergences"]:
        warnings.append(f"{diag['divergences']} divergent transitions of {diag['draws']}: "
                        "the posterior has regions the sampler cannot follow; draws may be "
                        "biased")
    if diag["saturation"] > SATURATION_MAX:
        warnings.append(f"{100 * diag['saturation']:.1f} % of draws hit the maximum tree depth "
                        f"{max_tree_depth}: sampling is inefficient")
    low = [i for i, b in enumerate(bfmi) if b < BFMI_MIN]
    if low:
        warnings.append(f"low E-BFMI (< {BFMI_MIN}) in chain(s) {low}: the sampler explores "
                        "the energy poorly")
    return diag, warnings


@jax.jit
def _log_likelihood(y: jax.Array, loc: jax.Array, sigma: jax.Array, nu: jax.Array) -> jax.Array:
    """Each row's log-likelihood at every draw (jitted: eager JAX would compile every
    operation)."""
    return noise(nu, loc, sigma).log_prob(y)


def _inference_data(
    key: jax.Array,
    inputs: _Inputs,
    domains: tuple[str, ...],
    param_domains: tuple[str, ...],
    samples: dict[str, np.ndarray],
    extra: dict[str, np.ndarray],
    likelihood: str,
) -> Any:
    """Build the InferenceData of a fit from draws grouped by chain."""
    import arviz as az

    data = inputs.data
    mu = samples["mu"]  # (C, S, n)
    y = on_likelihood_scale(data.loss, likelihood)
    loc = on_likelihood_scale(mu, likelihood)
    sigma, nu = samples["sigma"][..., None], samples["nu"][..., None]
    log_lik = np.asarray(_log_likelihood(y, loc, sigma, nu))
    pp = noise_draws(key, nu, loc, sigma)
    y = np.asarray(y)
    posterior = _posterior_sites(samples)
    coords = {"run": data.rows, "domain": list(param_domains)}
    dims = {"obs": ["run"]}
    for name, value in posterior.items():
        if value.ndim == 3 and value.shape[-1] == len(param_domains):
            dims[name] = ["domain"]
    steps = np.asarray(extra["num_steps"])
    sample_stats = {
        "diverging": np.asarray(extra["diverging"], bool),
        "n_steps": steps,
        "tree_depth": np.ceil(np.log2(steps + 1)).astype(int),
        "energy": np.asarray(extra["energy"]),
        "lp": -np.asarray(extra["potential_energy"]),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
    }
    weights = np.asarray(data.weights)
    idata = az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        log_likelihood={"obs": log_lik.astype(np.float32)},
        posterior_predictive={"obs": pp.astype(np.float32)},
        observed_data={"obs": y},
        constant_data={"N": data.n_params, "D": data.n_tokens, "weights": weights,
                       "rows": data.rows},
        coords={**coords, "weight_domain": list(domains)},
        dims={**dims, "N": ["run"], "D": ["run"], "weights": ["run", "weight_domain"],
              "rows": ["run"]},
    )
    return idata


def _posterior_sites(samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sampled sites and the law's derived parameters; not "mu" (one value per run)."""
    return {name: value for name, value in samples.items() if name != "mu"}


def fit_target(
    key: jax.Array,
    law: Law,
    table: RunTable,
    target: str,
    *,
    chains: int = CHAINS,
    warmup: int = WARMUP,
    draws: int = DRAWS,
    max_draws: int | None = None,
    likelihood: str = "log",
    dense_mass: bool = True,
    target_accept: float = TARGET_ACCEPT,
    max_tree_depth: int = 10,
    n_starts: int = 20,
    cluster_runs: bool = True,
    precision: str = "float32",
    progress: bool = False,
) -> TargetFit:
    """Sample the posterior of ``law`` for one target with NUTS.

    Parameters
    ----------
    key : jax.Array
        PRNG key.
    law : Law
    table : RunTable
        Training runs; rows with a missing loss on ``target`` are skipped.
    target : str
        A loss column of ``table``.
    chains, warmup, draws : int
        Chains and iterations per chain (draws are kept after warmup).
    max_draws : int, optional
        While the chains fail the R-hat or bulk-ESS check after ``draws``, they run on
        in blocks of ``draws // 2`` up to ``max_draws`` per chain (default
        ``2 * draws``; ``draws`` turns this off). Every draw is kept; the divergence
        rate and the other checks are over all of them.
    likelihood : {"log", "raw"}
        Student-t on log-loss (default) or on raw loss.
    dense_mass : bool
        Adapt a dense mass matrix (default) instead of a diagonal one.
    target_accept : float
        NUTS target acceptance probability. With several chains, the last quarter
        of ``warmup`` adapts the step size under the chains' averaged mass matrix,
        and every chain then samples with the smallest step size any chain adapted
        (see ``_warmed_up``).
    max_tree_depth : int
    n_starts : int
        L-BFGS runs that choose the chains' start (see :func:`find_start`).
    cluster_runs : bool
        Treat a run's checkpoints as correlated (default): the likelihood is
        weighted by ``1 / design_effect`` of the residuals at the start point
        (:func:`bayesmix.model.design_effect`), so intervals reflect how many runs,
        not rows, were observed. False: every row an independent draw.
    precision : {"float32", "float64"}
        Arithmetic of the NUTS run. float32 (NumPyro's own default) costs 0.7x
        the time per leapfrog step of float64 on the paper's runs, and its rounding
        (about 1e-7 of the loss) is far below the noise (about 3e-3); the L-BFGS
        start, the design effect, the saved draws and every summary are float64.
    progress : bool
        Show NumPyro's progress bar.

    Returns
    -------
    TargetFit

    Raises
    ------
    BayesmixError
        Unknown target, likelihood or precision, or fewer rows than parameters.
    """
    if likelihood not in LIKELIHOODS:
        raise BayesmixError(f"unknown likelihood '{likelihood}' (use one of {LIKELIHOODS})")
    if precision not in PRECISIONS:
        raise BayesmixError(f"unknown precision '{precision}' (use one of {PRECISIONS})")
    max_draws = 2 * draws if max_draws is None else max_draws
    for name, value, low in (("chains", chains, 1), ("warmup", warmup, 1), ("draws", draws, 4),
                             ("max-draws", max_draws, draws)):
        if value < low:
            raise BayesmixError(f"--{name} must be at least {low}, got {value}")
    with releasing_compiled():
        return _fit_target(key, law, table, target, chains=chains, warmup=warmup, draws=draws,
                           max_draws=max_draws, likelihood=likelihood, dense_mass=dense_mass,
                           target_accept=target_accept, max_tree_depth=max_tree_depth,
                           n_starts=n_starts, cluster_runs=cluster_runs, precision=precision,
                           progress=progress)


def _start_design_effect(inputs: _Inputs, start: StartPoint, likelihood: str) -> float:
    """Design effect of the residuals at the start point (the posterior mode)."""
    residuals = (on_likelihood_scale(inputs.data.loss, likelihood)
                 - on_likelihood_scale(start.constrained["mu"], likelihood))
    return design_effect(np.asarray(residuals), inputs.data.run)


def _fit_target(key: jax.Array, law: Law, table: RunTable, target: str, *, chains: int,
                warmup: int, draws: int, max_draws: int, likelihood: str, dense_mass: bool,
                target_accept: float, max_tree_depth: int, n_starts: int,
                cluster_runs: bool, precision: str, progress: bool) -> TargetFit:
    t0 = time.perf_counter()
    inputs = _inputs(law, table, target)
    loss = jnp.asarray(inputs.data.loss)
    key_start, key_mcmc, key_pp = jax.random.split(key, 3)
    start = find_start(key_start, law, inputs.k, inputs.scales, inputs.log_n, inputs.log_d,
                       inputs.h, loss, likelihood, n_starts=n_starts)
    t1 = time.perf_counter()
    deff = _start_design_effect(inputs, start, likelihood) if cluster_runs else 1.0
    model = _model(law, inputs.k, inputs.scales, likelihood, weight=1.0 / deff)
    # the likelihood dominates the curvature: the weighted posterior is ~deff wider
    covariance = start.covariance * deff
    covariance = covariance if dense_mass else np.diag(covariance)
    method = _chain_method(chains)
    with jax.enable_x64(precision == "float64"):
        def cast(x: Any) -> jax.Array:
            return jnp.asarray(np.asarray(x, dtype=precision))

        init = {name: cast(v) if chains == 1 else jnp.broadcast_to(cast(v), (chains, *np.shape(v)))
                for name, v in start.unconstrained.items()}
        extra_fields = ("diverging", "num_steps", "energy", "potential_energy", "accept_prob",
                        "adapt_state.step_size")
        args = (cast(inputs.log_n), cast(inputs.log_d), cast(inputs.h), cast(loss))
        mcmc = _warmed_up(key_mcmc, model, args, init, cast(covariance), chains=chains,
                          chain_method=method, warmup=warmup, draws=draws,
                          dense_mass=dense_mass,
                          target_accept=target_accept, max_tree_depth=max_tree_depth,
                          progress=progress)
        mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=extra_fields)
        samples, extra = _draws_by_chain(mcmc)
        # not mixed yet: the chains run on from where they stopped (no new warmup)
        while extra["diverging"].shape[1] < max_draws and not _mixed(_posterior_sites(samples)):
            mcmc.post_warmup_state = mcmc.last_state
            mcmc.num_samples = min(max(draws // 2, 1), max_draws - extra["diverging"].shape[1])
            mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=extra_fields)
            more_samples, more_extra = _draws_by_chain(mcmc)
            samples, extra = _joined(samples, more_samples), _joined(extra, more_extra)
    t2 = time.perf_counter()
    names = _param_names(law, inputs.k, inputs.scales.loss_scale)
    param_domains = (target,) if law.target_domain_only else tuple(table.domains)
    idata = _inference_data(key_pp, inputs, tuple(table.domains), param_domains, samples,
                            extra, likelihood)
    diagnostics, warnings = _diagnose(idata, max_tree_depth)
    diagnostics["start_potential"] = start.potential
    diagnostics["design_effect"] = deff
    t3 = time.perf_counter()
    return TargetFit(
        target=target, law=law, domains=tuple(table.domains), scales=inputs.scales,
        rows=np.asarray(inputs.data.rows), likelihood=likelihood, idata=idata,
        param_names=names, diagnostics=diagnostics, warnings=warnings,
        timings={"start": t1 - t0, "sampling": t2 - t1, "diagnostics": t3 - t2,
                 "total": t3 - t0},
        settings={"chains": chains, "warmup": warmup, "draws": draws,
                  "max_draws": max_draws, "kept_draws": int(extra["diverging"].shape[1]),
                  "dense_mass": dense_mass, "target_accept": target_accept,
                  "max_tree_depth": max_tree_depth, "n_starts": n_starts,
                  "cluster_runs": cluster_runs, "chain_method": method,
                  "precision": precision},
    )


def _warmed_up(key: jax.Array, model: Any, args: tuple, init: dict, metric: jax.Array, *,
               chains: int, chain_method: str, warmup: int, draws: int, dense_mass: bool,
               target_accept: float, max_tree_depth: int, progress: bool) -> MCMC:
    """An MCMC whose chains have finished warmup with one shared metric and step size.

    With several chains, warmup has two phases. The first ``warmup - warmup // 4``
    iterations adapt each chain's mass matrix (windowed, as NumPyro does) from the
    start covariance ``metric``; the chains' adapted inverse mass matrices are then
    averaged (a covariance estimate from all chains' last windows, four times the
    draws of one) and the last ``warmup // 4`` iterations adapt only the step size
    under that shared metric, from where the chains stopped. Finally every chain takes
    the smallest step size any of them adapted (:func:`_smallest_step_size`).

    On the paper's runs chains adapted separately ended with step sizes up to 2.5x
    apart, and the divergences (up to 15 of 4000 on additive arxiv) came from the
    chains with the larger steps; with the shared metric and step size, the 32 fits of
    ``bench/paper_fit.py`` (two laws, eight targets, two seeds) had none.
    """
    def mcmc_for(metric: Any, num_warmup: int, adapt_mass_matrix: bool) -> MCMC:
        kernel = NUTS(model, dense_mass=dense_mass, target_accept_prob=target_accept,
                      max_tree_depth=max_tree_depth, inverse_mass_matrix=metric,
                      adapt_mass_matrix=adapt_mass_matrix)
        return MCMC(kernel, num_warmup=num_warmup, num_samples=draws, num_chains=chains,
                    chain_method=chain_method, progress_bar=progress)

    tune = warmup // 4 if chains > 1 else 0
    if tune:
        key_metric, key = jax.random.split(key)
        first = mcmc_for(metric, warmup - tune, True)
        first.warmup(key_metric, *args, init_params=init)
        state = first.post_warmup_state
        metric = jax.tree.map(lambda m: jnp.mean(m, axis=0),
                              state.adapt_state.inverse_mass_matrix)
        init = state.z
    mcmc = mcmc_for(metric, tune or warmup, not tune)
    mcmc.warmup(key, *args, init_params=init)
    mcmc.post_warmup_state = _smallest_step_size(mcmc.post_warmup_state)
    return mcmc


def _smallest_step_size(state: Any) -> Any:
    """Every chain samples with the smallest step size adapted by any chain.

    Chains adapt their step sizes separately, and the ones with the larger steps are
    the ones that diverge where the posterior stiffens. The floor, half the median,
    keeps one chain whose adaptation collapsed from slowing all of them.
    """
    step = state.adapt_state.step_size
    common = jnp.maximum(jnp.min(step), 0.5 * jnp.median(step))
    return state._replace(adapt_state=state.adapt_state._replace(
        step_size=jnp.full_like(step, common)))


def _joined(first: dict[str, np.ndarray], then: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Draws grouped by chain, ``then`` appended to ``first`` along the draw axis."""
    return {name: np.concatenate([v, then[name]], axis=1) for name, v in first.items()}


def _draws_by_chain(mcmc: MCMC) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The last run's samples and extra fields as NumPy, floats widened to float64."""
    def numpy64(x: jax.Array) -> np.ndarray:
        x = np.asarray(x)
        return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x

    return ({name: numpy64(v) for name, v in mcmc.get_samples(group_by_chain=True).items()},
            {name: numpy64(v) for name, v in mcmc.get_extra_fields(group_by_chain=True).items()})


def fit(
    key: jax.Array,
    law: Law,
    table: RunTable,
    targets: Sequence[str],
    *,
    seed: int | None = None,
    on_target: Any = None,
    **options: Any,
) -> Fit:
    """Fit ``law`` to every target in ``targets`` (see :func:`fit_target` for options).

    Parameters
    ----------
    key : jax.Array
        PRNG key; target ``i`` uses ``fold_in(key, i)``.
    law : Law
    table : RunTable
    targets : sequence of str
    seed : int, optional
        Recorded in ``fit.json``.
    on_target : callable, optional
        Called as ``on_target(target, index, TargetFit or None)`` before (None) and
        after each target, for progress displays.
    **options
        Passed to :func:`fit_target`.

    Returns
    -------
    Fit
    """
    if not targets:
        raise BayesmixError("no target to fit: give --target or --all-targets")
    for target in targets:
        table.check_target(target)
        _inputs(law, table, target)  # refuse bad input before any sampling
    fits = {}
    for i, target in enumerate(targets):
        if on_target:
            on_target(target, i, None)
        fits[target] = fit_target(jax.random.fold_in(key, i), law, table, target, **options)
        if on_target:
            on_target(target, i, fits[target])
    return Fit(law=law, targets=fits, domains=tuple(table.domains),
               seed=-1 if seed is None else int(seed), source=table.source)


# --------------------------------------------------------------------------- prior check


def prior_predictive(
    key: jax.Array,
    law: Law,
    table: RunTable,
    target: str,
    n_draws: int = 500,
    likelihood: str = "log",
) -> dict[str, np.ndarray]:
    """Draws of the loss at the target's training runs under the prior alone.

    The prior on ``E`` is a factor (see :func:`bayesmix.lawkit.irreducible_loss`),
    which forward sampling ignores, so forward draws are importance-resampled by the
    model's factors (sampling-importance-resampling from ``4 * n_draws`` proposals).

    Returns
    -------
    dict
        ``loss`` (prior predictive losses, shape ``(n_draws, n)``), ``mean`` (the law's
        mean, same shape), ``observed`` (shape ``(n,)``) and ``rows``.
    """
    inputs = _inputs(law, table, target)
    model = _model(law, inputs.k, inputs.scales, likelihood)
    key_prop, key_pick = jax.random.split(key)

    def proposal(k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, k)).get_trace(
            inputs.log_n, inputs.log_d, inputs.h, None)
        log_factor = sum(
            (jnp.sum(site["fn"].log_prob(site["value"])) for name, site in tr.items()
             if site["type"] == "sample" and site["is_observed"] and name != "obs"),
            start=jnp.zeros(()),
        )
        return tr["mu"]["value"], tr["obs"]["value"], log_factor

    mean, obs, log_w = jax.jit(jax.vmap(proposal))(jax.random.split(key_prop, 4 * n_draws))
    mean, obs, log_w = np.asarray(mean), np.asarray(obs), np.asarray(log_w)
    ok = np.isfinite(log_w) & np.all(np.isfinite(mean) & (mean > 0), axis=-1)
    if not ok.any():
        raise BayesmixError(f"no prior draw of law '{law.name}' gives positive losses")
    # the law's factors (such as the prior on a derived E) as importance weights
    weights = np.where(ok, np.exp(np.where(ok, log_w, -np.inf) - log_w[ok].max()), 0.0)
    pick = numpy_rng(key_pick).choice(len(weights), size=n_draws, p=weights / weights.sum())
    mean, obs = mean[pick], obs[pick]
    with np.errstate(over="ignore"):  # heavy-tailed draws may overflow to inf
        loss = np.exp(obs) if likelihood == "log" else obs
    return {"loss": loss, "mean": mean,
            "observed": np.asarray(inputs.data.loss), "rows": np.asarray(inputs.data.rows)}


# --------------------------------------------------------------------------- save / load


def _versions() -> dict[str, str]:
    import arviz as az

    from bayesmix import __version__

    return {"bayesmix": __version__, "numpyro": numpyro.__version__, "jax": jax.__version__,
            "arviz": az.__version__}


def save_fit(result: Fit, out_dir: str | Path) -> Path:
    """Write ``<target>.nc`` per target and ``fit.json``, atomically.

    The directory appears whole or not at all: an interrupted save leaves ``out_dir``
    as it was.
    """
    out_dir = Path(out_dir)
    meta_targets = {}
    for target, f in result.targets.items():
        meta_targets[target] = {
            "file": f"{target}.nc",
            "scales": f.scales.to_dict(),
            "rows": [int(r) for r in f.rows],
            "param_names": f.param_names,
            "likelihood": f.likelihood,
            "diagnostics": f.diagnostics,
            "warnings": f.warnings,
            "timings": f.timings,
            "settings": f.settings,
        }
    meta = {
        "format": FORMAT,
        "kind": "bayes",
        "law": result.law.name,
        "law_path": str(result.law.path),
        "source": result.source,
        "targets": list(result.targets),
        "domains": list(result.domains),
        "seed": result.seed,
        "versions": _versions(),
        "per_target": meta_targets,
    }
    with atomic_dir(out_dir) as tmp:
        for target, f in result.targets.items():
            f.idata.to_netcdf(str(tmp / f"{target}.nc"))
        (tmp / "fit.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    return out_dir


def load_fit(path: str | Path) -> Fit:
    """Load a fit directory written by :func:`save_fit`.

    Raises
    ------
    BayesmixError
        No ``fit.json``, or one written by another format or bayesmix version.
    """
    import arviz as az

    path = Path(path)
    meta = check_fit_dir(path, "fit.json")
    law = law_of_fit(meta["law"], meta.get("law_path"))
    domains = tuple(meta["domains"])
    fits = {}
    for target in meta["targets"]:
        info = meta["per_target"][target]
        nc = path / info["file"]
        if not nc.is_file():
            raise BayesmixError(f"fit directory {path} lacks {info['file']} named in fit.json")
        idata = az.from_netcdf(str(nc))
        idata.load()
        fits[target] = TargetFit(
            target=target, law=law, domains=domains, scales=Scales(**info["scales"]),
            rows=np.asarray(info["rows"], int), likelihood=info["likelihood"], idata=idata,
            param_names=list(info["param_names"]), diagnostics=info["diagnostics"],
            warnings=list(info["warnings"]), timings=info["timings"],
            settings=info["settings"],
        )
    return Fit(law=law, targets=fits, domains=domains, seed=int(meta["seed"]),
               source=str(meta.get("source", "<unknown>")))
