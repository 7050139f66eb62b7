"""The Bayesian fit: a law's posterior for each target under NUTS, with diagnostics.

The stages, one module each: :mod:`bayesmix.model` prepares a target's inputs and
its model (the law's priors plus a Student-t likelihood); :mod:`bayesmix.start` finds
where the chains start (the best of ~20 L-BFGS runs on the potential, and the Laplace
covariance there); :mod:`bayesmix.sampling` warms up NUTS and draws until the chains
mix; :mod:`bayesmix.idata` builds the InferenceData; :mod:`bayesmix.diagnostics`
checks R-hat, bulk and tail ESS, divergences, tree-depth saturation and E-BFMI, and
words a warning for every failed check. This module runs them in order
(:func:`fit_target`, :func:`fit`) and holds the result types; saving and loading
live in :mod:`bayesmix.store`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix._jaxutil import releasing_compiled
from bayesmix._nuts_defaults import CHAINS, DRAWS, TARGET_ACCEPT, WARMUP
from bayesmix.diagnostics import Diagnostics, diagnose
from bayesmix.discrepancy import Discrepancy
from bayesmix.idata import inference_data, training_rows
from bayesmix.laws import Law
from bayesmix.metric import first_metric
from bayesmix.model import (
    LIKELIHOODS,
    Scales,
    TargetPosterior,
    bound_model,
    design_effect,
    model_args,
    on_likelihood_scale,
    param_names,
    target_inputs,
)
from bayesmix.runs import RunTable, TargetData
from bayesmix.sampling import chain_method, sample, warmed_up
from bayesmix.start import StartPoint, find_start, in_share_order

__all__ = [
    "PRECISIONS",
    "Fit",
    "NutsSettings",
    "TargetFit",
    "Timings",
    "fit",
    "fit_target",
    "start_design_effect",
]

# Arithmetic of the NUTS run (the start, the summaries and the saved draws are float64).
PRECISIONS = ("float32", "float64")


class Timings(NamedTuple):
    """Wall time of one target's fit, seconds."""

    start: float = float("nan")
    sampling: float = float("nan")
    diagnostics: float = float("nan")
    total: float = float("nan")


@dataclass(frozen=True)
class NutsSettings:
    """The sampler settings of one target's fit (the options of :func:`fit_target`).

    ``kept_draws`` is the draws per chain actually kept (``draws`` up to
    ``max_draws``), ``chain_method`` how the chains ran.
    """

    chains: int
    warmup: int
    draws: int
    max_draws: int
    kept_draws: int
    dense_mass: bool
    target_accept: float
    max_tree_depth: int
    n_starts: int
    cluster_runs: bool
    chain_method: str
    precision: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
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
    diagnostics : Diagnostics
        R-hat, ESS, divergences, tree-depth saturation, E-BFMI, steps a draw, the
        start's potential and the design effect.
    warnings : list of str
        Plain-language messages for each failed check (empty when all pass).
    timings : Timings
        Seconds for ``start``, ``sampling``, ``diagnostics``, ``total``.
    settings : NutsSettings or None
        Sampler settings used.
    discrepancy : Discrepancy or None
        The term beyond the training range learnt for this target
        (:func:`bayesmix.calibrate.learn_discrepancy`); None when not learnt.
    """

    target: str
    law: Law
    domains: tuple[str, ...]
    scales: Scales
    rows: np.ndarray
    likelihood: str
    idata: Any
    param_names: list[str]
    diagnostics: Diagnostics
    warnings: list[str]
    timings: Timings = field(default_factory=Timings)
    settings: NutsSettings | None = None
    discrepancy: Discrepancy | None = None

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
            likelihood=self.likelihood, discrepancy=self.discrepancy,
            training=training_rows(self.idata, self.likelihood_weight),
        )

    @property
    def likelihood_weight(self) -> float:
        """``1 / design_effect``: how a refit reads this fit's rows (a run's checkpoints
        as that many independent rows)."""
        return 1.0 / self.diagnostics.design_effect

    @property
    def training_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N, D)`` of the rows the fit was made from, each of shape ``(n,)``."""
        data = self.idata.constant_data
        return np.asarray(data["N"].values, float), np.asarray(data["D"].values, float)

    def summary(self) -> Any:
        """ArviZ summary table of the law's parameters and the noise."""
        import arviz as az

        return az.summary(self.idata, var_names=[*self.param_names, "sigma", "nu"])

    def __repr__(self) -> str:
        d = self.diagnostics
        lines = [
            f"TargetFit(target={self.target!r}, law={self.law.name!r}, rows={len(self.rows)})",
            f"   converged: {self.converged}",
            f"    max_rhat: {d.max_rhat:.4f}",
            f"min_ess_bulk: {d.min_ess_bulk:.0f}",
            f"min_ess_tail: {d.min_ess_tail:.0f}",
            f" divergences: {d.divergences} of {d.draws}"
            + (f" (step size cut {d.step_cuts}x after warmup; {d.discarded_divergences} "
               "in the discarded draws)" if d.step_cuts else ""),
            f"  saturation: {100 * d.saturation:.2f} % of draws at max tree depth",
            f"        bfmi: {', '.join(f'{b:.2f}' for b in d.bfmi)}",
            f"  mean_steps: {d.mean_steps:.0f}",
            f"     seconds: {self.timings.total:.1f}",
        ]
        lines += [f"     warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    __str__ = __repr__


@dataclass(frozen=True)
class Fit:
    """A Bayesian fit of one law to several targets of a run table.

    Attributes
    ----------
    law : Law
    targets : dict of target -> TargetFit
    domains : tuple of str
    seed : int
        The seed recorded with the fit (-1 when not given).
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

    def with_discrepancy(self, discrepancy: Mapping[str, Discrepancy | None]) -> Fit:
        """The same fit with these discrepancy terms; a target absent (or None) has none."""
        return replace(self, targets={
            t: replace(f, discrepancy=discrepancy.get(t))
            for t, f in self.targets.items()})

    def diagnostics_table(self) -> str:
        """One line per target: R-hat, ESS, divergences, saturation, E-BFMI, steps per
        draw, design effect of the runs, seconds."""
        header = (f"{'target':<16} {'R-hat':>7} {'ESS bulk':>9} {'ESS tail':>9} {'div':>5} "
                  f"{'sat %':>6} {'min BFMI':>8} {'steps':>6} {'deff':>5} {'sec':>6}  ok")
        lines = [header]
        for target, f in self.targets.items():
            d = f.diagnostics
            lines.append(
                f"{target:<16} {d.max_rhat:7.4f} {d.min_ess_bulk:9.0f} "
                f"{d.min_ess_tail:9.0f} {d.divergences:5d} {100 * d.saturation:6.2f} "
                f"{min(d.bfmi):8.2f} {d.mean_steps:6.0f} {d.design_effect:5.2f} "
                f"{f.timings.total:6.1f}  {'yes' if f.converged else 'NO'}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Fit(law={self.law.name!r}, targets={list(self.targets)}, seed={self.seed})\n"
                + self.diagnostics_table())

    __str__ = __repr__


# --------------------------------------------------------------------------- fitting


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
        While the chains fail the R-hat, bulk- or tail-ESS check after ``draws``, they
        run on in blocks of ``draws // 2`` up to ``max_draws`` per chain (default
        ``2 * draws``; ``draws`` turns this off). Every draw is kept; the divergence
        rate and the other checks are over all of them.
    likelihood : {"log", "raw"}
        Student-t on log-loss (default) or on raw loss.
    dense_mass : bool
        Adapt a dense mass matrix (default) instead of a diagonal one.
    target_accept : float
        NUTS target acceptance probability. With several chains, the last quarter
        of ``warmup`` adapts the step size under the metric the chains share, and
        every chain then samples with the smallest step size any chain adapted, cut
        while the first draws diverge (see :func:`bayesmix.sampling.warmed_up` and
        :func:`bayesmix.sampling.sample`).
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
        Show a progress bar per phase on stderr.

    Returns
    -------
    TargetFit

    Raises
    ------
    BayesmixError
        Unknown target, likelihood or precision, or fewer rows than parameters.
    """
    max_draws = _checked_options(chains=chains, warmup=warmup, draws=draws,
                                 max_draws=max_draws, likelihood=likelihood,
                                 precision=precision)
    with releasing_compiled():
        return _fit_target(key, law, table, target, chains=chains, warmup=warmup, draws=draws,
                           max_draws=max_draws, likelihood=likelihood, dense_mass=dense_mass,
                           target_accept=target_accept, max_tree_depth=max_tree_depth,
                           n_starts=n_starts, cluster_runs=cluster_runs, precision=precision,
                           progress=progress)


def _checked_options(*, chains: int = CHAINS, warmup: int = WARMUP, draws: int = DRAWS,
                     max_draws: int | None = None, likelihood: str = "log",
                     precision: str = "float32", target_accept: float = TARGET_ACCEPT,
                     **_: Any) -> int:
    """Refuse bad options of :func:`fit_target`; returns ``max_draws`` with its default."""
    if not 0 < target_accept < 1:
        raise BayesmixError(f"target_accept must be between 0 and 1, got {target_accept}")
    if likelihood not in LIKELIHOODS:
        raise BayesmixError(f"unknown likelihood '{likelihood}' (use one of {LIKELIHOODS})")
    if precision not in PRECISIONS:
        raise BayesmixError(f"unknown precision '{precision}' (use one of {PRECISIONS})")
    max_draws = 2 * draws if max_draws is None else max_draws
    for name, value, low in (("chains", chains, 1), ("warmup", warmup, 1), ("draws", draws, 4),
                             ("max_draws", max_draws, draws)):
        if value < low:
            raise BayesmixError(f"{name} must be at least {low}, got {value}")
    return max_draws


def start_design_effect(data: TargetData, start: StartPoint, likelihood: str,
                        rows: np.ndarray | None = None) -> float:
    """Design effect of the residuals at the start point (the posterior mode), the
    likelihood weight of a fit and of the discrepancy's refits; ``rows`` (a mask over
    ``data``'s rows) picks the rows the start was fitted to."""
    residuals = np.asarray(on_likelihood_scale(data.loss, likelihood)
                           - on_likelihood_scale(start.constrained["mu"], likelihood))
    rows = np.ones(residuals.shape, bool) if rows is None else rows
    return design_effect(residuals[rows], data.run[rows])


def _fit_target(key: jax.Array, law: Law, table: RunTable, target: str, *, chains: int,
                warmup: int, draws: int, max_draws: int, likelihood: str, dense_mass: bool,
                target_accept: float, max_tree_depth: int, n_starts: int,
                cluster_runs: bool, precision: str, progress: bool) -> TargetFit:
    t0 = time.perf_counter()
    inputs = target_inputs(law, table, target)
    loss = jnp.asarray(inputs.data.loss)
    key_start, key_mcmc, key_pp = jax.random.split(key, 3)
    start = find_start(key_start, law, inputs.k, inputs.scales, inputs.log_n, inputs.log_d,
                       inputs.h, loss, likelihood, n_starts=n_starts)
    t1 = time.perf_counter()
    deff = start_design_effect(inputs.data, start, likelihood) if cluster_runs else 1.0
    start, order = in_share_order(start)
    model = bound_model(law, inputs.k, likelihood)
    # the likelihood dominates the curvature: the weighted posterior is ~deff wider
    covariance = first_metric(start.covariance * deff if dense_mass
                              else np.diag(start.covariance) * deff)
    method = chain_method(chains)
    with jax.enable_x64(precision == "float64"):
        def cast(x: Any) -> jax.Array:
            return jnp.asarray(np.asarray(x, dtype=precision))

        init = {name: jnp.broadcast_to(cast(v), (chains, *np.shape(v)))
                for name, v in start.unconstrained.items()}
        args = model_args(inputs, 1.0 / deff, dtype=precision, share_order=order)
        warm = warmed_up(key_mcmc, model, args, init, cast(covariance), chains=chains,
                         chain_method=method, warmup=warmup, dense_mass=dense_mass,
                         target_accept=target_accept, max_tree_depth=max_tree_depth,
                         progress=progress)
        drawn = sample(warm, args, draws=draws, max_draws=max_draws)
    samples, extra = drawn.samples, drawn.extra
    t2 = time.perf_counter()
    names = param_names(law, inputs.k, inputs.scales.loss_scale)
    param_domains = (target,) if law.target_domain_only else tuple(table.domains)
    idata = inference_data(key_pp, inputs, tuple(table.domains), param_domains, samples,
                           extra, likelihood)
    if order is not None:  # what the sampled "sticks" mean (bayesmix.sticks)
        idata.posterior.attrs["share_order"] = ",".join(table.domains[i] for i in order)
    diagnostics, warnings = diagnose(idata, max_tree_depth, start_potential=start.potential,
                                     design_effect=deff)
    diagnostics = replace(diagnostics, gradients=drawn.gradients, step_cuts=drawn.step_cuts,
                          discarded_divergences=drawn.discarded_divergences)
    t3 = time.perf_counter()
    return TargetFit(
        target=target, law=law, domains=tuple(table.domains), scales=inputs.scales,
        rows=np.asarray(inputs.data.rows), likelihood=likelihood, idata=idata,
        param_names=names, diagnostics=diagnostics, warnings=warnings,
        timings=Timings(start=t1 - t0, sampling=t2 - t1, diagnostics=t3 - t2,
                        total=t3 - t0),
        settings=NutsSettings(
            chains=chains, warmup=warmup, draws=draws, max_draws=max_draws,
            kept_draws=int(extra["diverging"].shape[1]), dense_mass=dense_mass,
            target_accept=target_accept, max_tree_depth=max_tree_depth, n_starts=n_starts,
            cluster_runs=cluster_runs, chain_method=method, precision=precision),
    )


def fit(
    key: jax.Array,
    law: Law,
    table: RunTable,
    targets: Sequence[str],
    *,
    seed: int | None = None,
    on_target: Callable[[str, int, TargetFit | None], None] | None = None,
    first: int = 0,
    **options: Any,
) -> Fit:
    """Fit ``law`` to every target in ``targets`` (see :func:`fit_target` for options).

    Parameters
    ----------
    key : jax.Array
        PRNG key; target ``i`` uses ``fold_in(key, first + i)``.
    law : Law
    table : RunTable
    targets : sequence of str
    seed : int, optional
        Recorded with the fit (and in ``fit.json`` by :func:`bayesmix.store.save_fit`).
    on_target : callable, optional
        Called as ``on_target(target, index, TargetFit or None)`` before (None) and
        after each target, for progress displays.
    first : int
        The index of ``targets[0]`` in a longer list that ``key`` is for (a part of a
        study fitted elsewhere: :mod:`bayesmix.jobs`); its fits are then those of the
        whole list's.
    **options
        Passed to :func:`fit_target`.

    Returns
    -------
    Fit
    """
    if not targets:
        raise BayesmixError("no target to fit: targets is empty")
    _checked_options(**options)  # refuse bad input before any sampling
    for target in targets:
        target_inputs(law, table, target)
    fits = {}
    for i, target in enumerate(targets):
        if on_target:
            on_target(target, i, None)
        fits[target] = fit_target(jax.random.fold_in(key, first + i), law, table, target,
                                  **options)
        if on_target:
            on_target(target, i, fits[target])
    return Fit(law=law, targets=fits, domains=tuple(table.domains),
               seed=-1 if seed is None else int(seed), source=table.source)
