"""Figures, one function each: they take ``ax=None`` (a new figure when None) and
return the figure, so a notebook user can place each one where they like."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bayesmix.compare import LEVELS, HeldoutScore
from bayesmix.model import TargetPosterior
from bayesmix.predict import predict_draws, predictive_draws, with_discrepancy
from bayesmix.runs import RunTable

__all__ = ["plot_coverage", "plot_loo_pit", "plot_observed_vs_predicted"]


def _axes(ax: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.2), layout="constrained")
    return fig, ax


def plot_coverage(scores: Sequence[HeldoutScore], ax: Any = None) -> Any:
    """Nominal against observed coverage of the central predictive intervals.

    A calibrated predictive lies on the diagonal; below it, intervals hold less than
    they claim (over-confidence). The band is the binomial 90 % range of a calibrated
    predictive for the number of rows scored (rows taken as independent).

    Parameters
    ----------
    scores : sequence of HeldoutScore
        One line each (for example :meth:`bayesmix.compare.Comparison.pooled`).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    from scipy import stats

    fig, ax = _axes(ax)
    levels = np.asarray(LEVELS)
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="calibrated")
    if scores:
        rows = min(s.rows for s in scores)
        lo, hi = stats.binom.interval(0.9, rows, levels)
        ax.fill_between(levels, lo / rows, hi / rows, color="0.85",
                        label=f"90 % range, {rows} rows")
    for s in scores:
        ax.plot(levels, s.coverage, marker="o", ms=3, label=f"{s.label} ({s.target})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal coverage",
           ylabel="observed coverage", title="predictive intervals at held-out runs")
    ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_observed_vs_predicted(key: Any, posterior: TargetPosterior, table: RunTable,
                               ax: Any = None) -> Any:
    """Observed against predicted loss per model size, with 90 % predictive intervals
    (the paper's Fig. 3 with uncertainty).

    Parameters
    ----------
    key : jax.Array
        PRNG key of the predictive noise and the discrepancy.
    posterior : TargetPosterior
        One target's posterior (its discrepancy term included when it has one).
    table : RunTable
        Runs with a loss column for the target (training or held-out).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import jax

    fig, ax = _axes(ax)
    data = table.target_data(posterior.target)
    weights = table.frame.loc[data.rows, [f"h_{d}" for d in posterior.domains]]
    key_noise, key_delta = jax.random.split(key)
    mean = predict_draws(posterior, data.n_params, data.n_tokens, weights.to_numpy(float))
    pp = predictive_draws(key_noise, posterior, mean)
    (pp,) = with_discrepancy(key_delta, posterior, data.n_params, data.n_tokens, pp)
    q05, q50, q95 = np.quantile(pp, [0.05, 0.5, 0.95], axis=0)
    for size in np.unique(data.n_params):
        rows = data.n_params == size
        ax.errorbar(data.loss[rows], q50[rows], yerr=[q50[rows] - q05[rows],
                                                       q95[rows] - q50[rows]],
                    fmt="o", ms=3, lw=0.8, label=f"N = {size:.3g}")
    low = min(data.loss.min(), q05.min())
    high = max(data.loss.max(), q95.max())
    ax.plot([low, high], [low, high], color="0.5", lw=1, ls="--")
    ax.set(xlabel="observed loss", ylabel="predicted loss (median, 90 % interval)",
           title=f"{posterior.target}")
    ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_loo_pit(idatas: dict[str, Any], ax: Any = None) -> Any:
    """ECDF of the LOO probability integral transform minus the uniform's, per fit.

    A calibrated predictive gives PIT values uniform on [0, 1] (a flat line at zero); a
    U shape in the histogram (here: a line falling then rising) means intervals too
    narrow, a hump too wide. The band is the pointwise 90 % range of a uniform sample
    of that size. LOO-PIT judges the fit inside the training runs, not extrapolation.

    Parameters
    ----------
    idatas : dict label -> arviz.InferenceData
        With ``log_likelihood``, ``posterior_predictive`` and ``observed_data`` groups
        (a :class:`bayesmix.fit.TargetFit`'s ``idata``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import warnings

    import arviz as az
    from scipy import stats

    fig, ax = _axes(ax)
    grid = np.linspace(0, 1, 101)
    n_min = None
    for label, idata in idatas.items():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Pareto.*", category=UserWarning)
            pit = np.sort(np.asarray(az.loo_pit(idata, y="obs")).ravel())
        ecdf = np.searchsorted(pit, grid, side="right") / pit.size
        ax.plot(grid, ecdf - grid, lw=1.2, label=label)
        n_min = pit.size if n_min is None else min(n_min, pit.size)
    if n_min:
        lo, hi = stats.binom.interval(0.9, n_min, grid)
        ax.fill_between(grid, lo / n_min - grid, hi / n_min - grid, color="0.85",
                        label=f"90 % range, {n_min} rows")
    ax.axhline(0, color="0.5", lw=1, ls="--")
    ax.set(xlim=(0, 1), xlabel="LOO-PIT", ylabel="ECDF minus uniform",
           title="LOO probability integral transform")
    ax.legend(fontsize="small", loc="lower left")
    return fig
