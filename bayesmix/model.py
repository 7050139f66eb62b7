"""From a law and a target's runs to what every fitting method shares.

The reference scales, the centred inputs a law reads, the map from sampled sites to
the law's parameters, and the NumPyro model (the law's priors plus a robust
likelihood). The Bayesian fit samples this model; the Huber baseline optimises the
law's mean over the same sites; prediction and mirror descent call the same mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.discrepancy import Discrepancy
from bayesmix.laws import Law, trace_shapes
from bayesmix.runs import RunTable, TargetData
from bayesmix.sticks import ordered_shares

__all__ = [
    "LIKELIHOODS",
    "Scales",
    "TargetInputs",
    "TargetPosterior",
    "TrainingRows",
    "bound_model",
    "centred_inputs",
    "check_enough_rows",
    "design_effect",
    "law_params",
    "loss_model",
    "model_args",
    "noise",
    "noise_draws",
    "on_likelihood_scale",
    "param_names",
    "scales_for",
    "target_inputs",
]

LIKELIHOODS = ("log", "raw")


@dataclass(frozen=True)
class Scales:
    """Reference values that make one set of priors fit any study.

    Attributes
    ----------
    n_ref, d_ref : float
        Geometric means of the training runs' parameters and tokens.
    loss_scale : float
        Median training loss on the target.
    n_max, d_max : float or None
        The largest training parameters and tokens: where the training range ends
        (None in a fit written before they were kept).
    """

    n_ref: float
    d_ref: float
    loss_scale: float
    n_max: float | None = None
    d_max: float | None = None

    def to_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items() if value is not None}


def scales_for(data: TargetData) -> Scales:
    """Reference scales of a target's training rows (geometric means, median loss)."""
    return Scales(
        n_ref=float(np.exp(np.mean(np.log(data.n_params)))),
        d_ref=float(np.exp(np.mean(np.log(data.n_tokens)))),
        loss_scale=float(np.median(data.loss)),
        n_max=float(np.max(data.n_params)),
        d_max=float(np.max(data.n_tokens)),
    )


def centred_inputs(
    law: Law,
    scales: Scales,
    n_params: Any,
    n_tokens: Any,
    weights: Any,
    target_index: int | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log(N / N_ref), log(D / D_ref), h)`` as the law reads them.

    ``weights`` has shape ``(..., k)``; for a law with ``DOMAINS = "target"`` only
    the target's column is kept.
    """
    log_n = jnp.log(jnp.asarray(n_params) / scales.n_ref)
    log_d = jnp.log(jnp.asarray(n_tokens) / scales.d_ref)
    h = law.domain_inputs(jnp.asarray(weights), target_index)
    return log_n, log_d, h


def law_params(law: Law, k: int, loss_scale: float, sites: dict[str, Any]) -> dict[str, Any]:
    """The law's parameters (derived ones such as ``E`` included) from sampled site values."""
    return handlers.substitute(law.sample_params, data=sites)(k, loss_scale)


def n_law_domains(law: Law, k: int) -> int:
    """How many weights the law sees for ``k`` training domains."""
    return law.domains_seen(k)


def check_enough_rows(law: Law, table: RunTable, target: str, n_rows: int) -> None:
    """Refuse a fit with fewer usable rows than the law has parameters."""
    n_params = law.n_params(len(table.domains))
    if n_rows < n_params:
        raise BayesmixError(
            f"target '{target}' of {table.source} has {n_rows} usable rows but law "
            f"'{law.name}' has {n_params} parameters for {len(table.domains)} domains"
        )


def on_likelihood_scale(loss: Any, likelihood: str) -> jax.Array:
    """Losses on the scale the likelihood reads: ``log(loss)`` or ``loss`` itself."""
    return jnp.log(loss) if likelihood == "log" else jnp.asarray(loss)


def noise(nu: Any, loc: Any, sigma: Any) -> dist.Distribution:
    """The likelihood of one row on its scale: ``StudentT(nu, loc, sigma)``.

    The model, the pointwise log-likelihood of a fit and posterior predictive draws
    all build it here.
    """
    return dist.StudentT(nu, loc, sigma)


def noise_draws(key: jax.Array, nu: Any, loc: Any, sigma: Any) -> np.ndarray:
    """Draws of :func:`noise` ``(nu, loc, sigma)``, broadcast shape, as NumPy.

    ``loc + sigma * t_nu`` with NumPy's Student-t sampler, seeded from ``key``: JAX's
    (through its gamma sampler) takes about 4 s for the 6 million draws of a fit's
    posterior predictive, NumPy 0.4 s.
    """
    rng = numpy_rng(key)
    nu, loc, sigma = np.broadcast_arrays(*(np.asarray(a, float) for a in (nu, loc, sigma)))
    return loc + sigma * rng.standard_t(nu)


def design_effect(residuals: Any, run: Any) -> float:
    """Kish's design effect ``1 + (m - 1) rho`` of residuals clustered in runs.

    ``rho`` is the intra-run correlation of the residuals (one-way ANOVA estimator,
    clipped at 0) and ``m`` the mean number of rows per run. Rows of one run (its
    checkpoints) deviate from a law together, so ``n`` rows carry the information
    of about ``n / design_effect`` independent ones.

    Parameters
    ----------
    residuals : array_like, shape ``(n,)``
        Residuals of a fit (e.g. log-loss minus the law's log-mean at the mode).
    run : array_like of int, shape ``(n,)``
        Run of every row (``TargetData.run``).

    Returns
    -------
    float
        At least 1; exactly 1 when every row is its own run.
    """
    r = np.asarray(residuals, float)
    _, groups = np.unique(np.asarray(run), return_inverse=True)
    n, g = len(r), int(groups.max()) + 1 if len(r) else 0
    if g < 2 or g == n:
        return 1.0
    size = np.bincount(groups, minlength=g).astype(float)
    means = np.bincount(groups, weights=r, minlength=g) / size
    within = float(np.sum((r - means[groups]) ** 2) / (n - g))
    between = float(np.sum(size * (means - r.mean()) ** 2) / (g - 1))
    m0 = (n - np.sum(size**2) / n) / (g - 1)
    var_run = max(0.0, (between - within) / m0)
    rho = var_run / (var_run + within) if var_run + within > 0 else 0.0
    return float(1.0 + (n / g - 1.0) * rho)


def loss_model(
    law: Law,
    k: int,
    loss_scale: Any,
    log_n: jax.Array,
    log_d: jax.Array,
    h: jax.Array,
    loss: jax.Array | None = None,
    likelihood: str = "log",
    weight: Any = 1.0,
    share_order: Any = None,
) -> None:
    """NumPyro model: the law's priors and a robust Student-t likelihood.

    Why Student-t: the paper fits with a Huber loss so that a few bad runs (a
    diverged checkpoint, a mislabelled mixture) do not drag the fit. A Student-t
    likelihood is the probabilistic counterpart: Gaussian near the centre, heavy
    tails that discount outliers, and with its degrees of freedom ``nu`` learnt the
    data decide how heavy. On log-loss (the default) residuals are relative errors,
    the paper's metric, and one noise scale serves losses of any size.

    Why ``weight``: the rows of one training run (its checkpoints) deviate from a
    law together, so they are not independent draws. Each row's likelihood is raised
    to the power ``weight = 1 / design_effect`` (a magnitude-adjusted composite
    likelihood; Ribatet et al. 2012): the posterior is as wide as ``n / design_effect``
    independent rows would make it, while its centre and the noise model are
    unchanged. A random run offset would be the fuller model; on the paper's runs it
    let the within-run token curves fix ``beta`` and absorbed the size trend into
    the offsets (c4: offsets of 4.7 %, eval MRE 6.8 % against 0.45 %), so it is not
    used.

    Priors on the noise: ``sigma ~ HalfNormal(0.02)`` on log-loss (relative noise of
    a few tenths of a percent is typical; 2 % is generous) or ``HalfNormal(0.02 *
    loss_scale)`` on raw loss; ``nu ~ Gamma(2, 0.1)`` (Juárez & Steel 2010: mean 20,
    mass on both heavy and near-Gaussian tails).

    Parameters
    ----------
    law : Law
    k : int
        Number of weights the law sees.
    loss_scale : float or scalar Array
        The target's typical loss (:attr:`Scales.loss_scale`), which scales the priors.
    log_n, log_d : Array, shape ``(n,)``
    h : Array, shape ``(n, k)``
    loss : Array, shape ``(n,)``, optional
        Observed losses (None for prior predictive draws).
    likelihood : {"log", "raw"}
    weight : float or Array, scalar or shape ``(n,)``
        Power of every row's likelihood, in ``(0, 1]`` (``1 / design_effect``); a row
        of weight 0 is left out (its likelihood and its positivity).
    share_order : Array of int, shape ``(k,)``, optional
        The order of a mixture term's shares along their stick-breaking coordinates
        (:mod:`bayesmix.sticks`; the sampler's choice, the same prior in any order);
        default the domains' own.
    """
    if likelihood not in LIKELIHOODS:
        raise BayesmixError(f"unknown likelihood '{likelihood}' (use one of {LIKELIHOODS})")
    with ordered_shares(share_order):  # None: the domains' own order
        params = law.sample_params(k, loss_scale)
    mu = law.mean(params, log_n, log_d, h)
    numpyro.deterministic("mu", mu)
    noise_scale = 0.02 if likelihood == "log" else 0.02 * loss_scale
    sigma = numpyro.sample("sigma", dist.HalfNormal(noise_scale))
    nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
    # A row of weight 0 is out of the fit (a fold's held-out row, kept so that the
    # refit has the fit's shapes and its compiled programs).
    seen = jnp.asarray(weight) > 0
    # A law's mean must be a positive loss: parameters that make it non-positive at
    # a row it sees get zero density (not a NaN, which a sampler cannot step away from).
    positive = mu > 0
    numpyro.factor("positive_loss", jnp.where(jnp.all(positive | ~seen), 0.0, -jnp.inf))
    loc = on_likelihood_scale(jnp.where(positive, mu, 1.0), likelihood)
    observed = None if loss is None else on_likelihood_scale(loss, likelihood)
    with (numpyro.plate("runs", log_n.shape[0]), handlers.mask(mask=seen),
          handlers.scale(scale=jnp.where(seen, weight, 1.0))):
        numpyro.sample("obs", noise(nu, loc, sigma), obs=observed)


class TrainingRows(NamedTuple):
    """The rows a posterior was fitted to, as its likelihood read them.

    Attributes
    ----------
    n_params, n_tokens : ndarray, shape ``(n,)``
    weights : ndarray, shape ``(n, k)``
    observed : ndarray, shape ``(n,)``
        The losses on the likelihood's scale (log-loss for ``"log"``).
    weight : float
        Each row's likelihood weight (``1 / design_effect``).
    """

    n_params: np.ndarray
    n_tokens: np.ndarray
    weights: np.ndarray
    observed: np.ndarray
    weight: float


@dataclass(frozen=True)
class TargetPosterior:
    """Draws of one target's law parameters, from a Bayesian fit or a point estimate.

    Attributes
    ----------
    law : Law
    target : str
    domains : tuple of str
        Training domains (the order of the weights ``h``).
    scales : Scales
    params : dict of name -> ndarray, shape ``(S, ...)``
        The law's parameters (derived ones included), one row per draw; a point
        estimate has ``S = 1``.
    noise : dict with ``sigma`` and ``nu``, each shape ``(S,)``, or None
        Likelihood parameters for posterior predictive draws (None for point fits).
    likelihood : {"log", "raw"}
    discrepancy : Discrepancy or None
        The learnt term beyond the training range (:mod:`bayesmix.discrepancy`); None
        gives the law's own predictive.
    training : TrainingRows or None
        The rows of a Bayesian fit, for the runs' influence on its draws
        (:mod:`bayesmix.coupling`); None for point fits and posteriors built in code.
    """

    law: Law
    target: str
    domains: tuple[str, ...]
    scales: Scales
    params: dict[str, np.ndarray]
    noise: dict[str, np.ndarray] | None = None
    likelihood: str = "log"
    discrepancy: Discrepancy | None = None
    training: TrainingRows | None = None

    @classmethod
    def from_sites(
        cls,
        law: Law,
        target: str,
        domains: tuple[str, ...],
        scales: Scales,
        sites: dict[str, Any],
        likelihood: str = "log",
    ) -> TargetPosterior:
        """A point estimate (``S = 1``, no noise) from one set of sampled-site values."""
        k = n_law_domains(law, len(domains))
        params = law_params(law, k, scales.loss_scale, sites)
        return cls(law=law, target=target, domains=tuple(domains), scales=scales,
                   params={name: np.asarray(v, float)[None] for name, v in params.items()},
                   noise=None, likelihood=likelihood)

    @property
    def n_draws(self) -> int:
        return int(next(iter(self.params.values())).shape[0])

    def at_draws(self, index: np.ndarray) -> TargetPosterior:
        """The posterior at draws ``index`` only (parameters, noise and the hyper draws
        of the discrepancy they use).

        Parameters
        ----------
        index : ndarray of int

        Returns
        -------
        TargetPosterior
        """
        params = {n: np.asarray(v)[index] for n, v in self.params.items()}
        noise = (None if self.noise is None
                 else {n: np.asarray(v)[index] for n, v in self.noise.items()})
        discrepancy = (None if self.discrepancy is None
                       else self.discrepancy.at_draws(index))
        return replace(self, params=params, noise=noise, discrepancy=discrepancy)

    @property
    def target_index(self) -> int | None:
        return self.domains.index(self.target) if self.target in self.domains else None


@dataclass(frozen=True)
class TargetInputs:
    """A target's data as the model reads it (the input of every fitting method).

    Attributes
    ----------
    law : Law
    k : int
        Number of weights the law sees.
    scales : Scales
    data : TargetData
        The target's usable rows.
    log_n, log_d : Array, shape ``(n,)``
        Centred log parameters and tokens.
    h : Array, shape ``(n, k)``
        Weights as the law reads them.
    target_index : int or None
        The target's column among the domains (None when it is not a domain).
    """

    law: Law
    k: int
    scales: Scales
    data: TargetData
    log_n: jax.Array
    log_d: jax.Array
    h: jax.Array
    target_index: int | None


def target_inputs(law: Law, table: RunTable, target: str) -> TargetInputs:
    """Check and prepare ``target``'s rows of ``table`` for ``law``.

    Raises
    ------
    BayesmixError
        Unknown target, fewer usable rows than the law has parameters, the same loss
        on every row, or weights the law cannot read (e.g. a target-only law on a
        target that is not a domain).
    """
    table.check_target(target)
    data = table.target_data(target)
    check_enough_rows(law, table, target, len(data.loss))
    if np.ptp(data.loss) == 0:
        raise BayesmixError(f"target '{target}' of {table.source} has the same loss "
                            f"({data.loss[0]:g}) on every one of its {len(data.loss)} rows: "
                            "there is nothing for a law to fit")
    scales = scales_for(data)
    target_index = table.target_index(target)
    log_n, log_d, h = centred_inputs(law, scales, data.n_params, data.n_tokens, data.weights,
                                     target_index)
    return TargetInputs(law, n_law_domains(law, len(table.domains)), scales, data, log_n,
                        log_d, h, target_index)


def bound_model(law: Law, k: int, likelihood: str = "log") -> Callable[..., None]:
    """:func:`loss_model` with the law fixed; every number is an argument.

    Nothing about a target is closed over, so a jitted function of the model traces
    the numbers, and its compiled program is the same for every target with the same
    number of rows: JAX's persistent cache (:func:`bayesmix.use_compilation_cache`)
    then serves it to the next fit and the next process.

    Parameters
    ----------
    law : Law
    k : int
        Number of weights the law sees.
    likelihood : {"log", "raw"}

    Returns
    -------
    callable
        ``model(log_n, log_d, h, loss, loss_scale, weight, share_order=None)``, a
        NumPyro model (:func:`model_args` builds its arguments).
    """
    def model(log_n: jax.Array, log_d: jax.Array, h: jax.Array, loss: jax.Array | None,
              loss_scale: jax.Array, weight: jax.Array, share_order: Any = None) -> None:
        loss_model(law, k, loss_scale, log_n, log_d, h, loss, likelihood, weight,
                   share_order)

    return model


def model_args(inputs: TargetInputs, weight: float = 1.0, *, observed: bool = True,
               dtype: Any = None, share_order: Any = None) -> tuple:
    """The arguments of :func:`bound_model` for a target's inputs.

    Parameters
    ----------
    inputs : TargetInputs
    weight : float
        Likelihood weight, ``1 / design_effect``.
    observed : bool
        Pass the target's losses (default) or None (prior predictive draws).
    dtype : NumPy dtype, optional
        Cast every argument (the NUTS run's precision); default: as they are.
    share_order : array_like of int, shape ``(k,)``, optional
        The shares' stick order (:mod:`bayesmix.sticks`), passed as a seventh argument.

    Returns
    -------
    tuple
        ``(log_n, log_d, h, loss, loss_scale, weight)`` as arrays (``loss`` None when
        not ``observed``), and ``share_order`` (int32) when given.
    """
    def cast(x: Any) -> jax.Array:
        return jnp.asarray(x if dtype is None else np.asarray(x, dtype=dtype))

    loss = cast(inputs.data.loss) if observed else None
    args = (cast(inputs.log_n), cast(inputs.log_d), cast(inputs.h), loss,
            cast(inputs.scales.loss_scale), cast(weight))
    if share_order is None:
        return args
    return (*args, jnp.asarray(share_order, jnp.int32))


def param_names(law: Law, k: int, loss_scale: float) -> list[str]:
    """Names of the law's parameters (sampled and derived), as ``sample_params`` returns."""
    names: list[str] = []

    def traced(key: jax.Array) -> None:
        with numpyro.handlers.block(), numpyro.handlers.seed(rng_seed=key):
            names[:] = list(law.sample_params(k, loss_scale))

    trace_shapes(traced)
    return names
