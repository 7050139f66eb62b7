"""Figures of the runs and the fits, one function each: they take ``ax=None`` (a new
figure when None) and return the figure, so a notebook user can place each one where
they like. Figures of the mixture decision are in :mod:`bayesmix.decision_plots`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bayesmix.model import TargetPosterior
from bayesmix.predict import predict_draws, predictive_draws, with_discrepancy
from bayesmix.runs import MIXTURE_DECIMALS, RunTable
from bayesmix.scoring import LEVELS, HeldoutScore

__all__ = [
    "plot_coverage",
    "plot_forest",
    "plot_loo_pit",
    "plot_mixtures",
    "plot_observed_vs_predicted",
    "plot_rank",
    "plot_runs",
]

TRAINING, HELDOUT = "C0", "C1"
"""Colours of training and held-out runs in the plots of runs."""


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


def _predictive_interval(key: Any, posterior: TargetPosterior, data: Any,
                         weights: np.ndarray) -> np.ndarray:
    """5 %, 50 % and 95 % of the posterior predictive at ``data``'s rows, ``(3, n)``."""
    import jax

    key_noise, key_delta = jax.random.split(key)
    mean = predict_draws(posterior, data.n_params, data.n_tokens, weights)
    pp = predictive_draws(key_noise, posterior, mean)
    (pp,) = with_discrepancy(key_delta, posterior, data.n_params, data.n_tokens, pp)
    return np.quantile(pp, [0.05, 0.5, 0.95], axis=0)


def plot_observed_vs_predicted(key: Any, posterior: TargetPosterior, table: RunTable,
                               ax: Any = None, *, heldout: RunTable | None = None) -> Any:
    """Observed against predicted loss per model size, with 90 % predictive intervals
    (the paper's Fig. 3 with uncertainty).

    Colours are model sizes; filled circles are ``table``'s runs, open squares
    ``heldout``'s (when given and it has the target's loss).

    Parameters
    ----------
    key : jax.Array
        PRNG key of the predictive noise and the discrepancy.
    posterior : TargetPosterior
        One target's posterior (its discrepancy term included when it has one).
    table : RunTable
        Runs with a loss column for the target (training or held-out).
    ax : matplotlib Axes, optional
    heldout : RunTable, optional
        Runs the fit did not see, drawn beside ``table``'s.

    Returns
    -------
    matplotlib Figure
    """
    import jax

    fig, ax = _axes(ax)
    tables = [("", table, "o", True)]
    if heldout is not None and posterior.target in heldout.targets:
        tables.append((" held out", heldout, "s", False))
    sizes = np.unique(np.concatenate([t.target_data(posterior.target).n_params
                                      for _, t, _, _ in tables]))
    colours = {size: f"C{i % 10}" for i, size in enumerate(sizes)}
    low, high = np.inf, -np.inf
    for index, (note, runs, marker, filled) in enumerate(tables):
        data = runs.target_data(posterior.target)
        weights = runs.frame.loc[data.rows, [f"h_{d}" for d in posterior.domains]]
        q05, q50, q95 = _predictive_interval(jax.random.fold_in(key, index) if index else key,
                                             posterior,
                                             data, weights.to_numpy(float))
        for size in np.unique(data.n_params):
            rows = data.n_params == size
            colour = colours[size]
            ax.errorbar(data.loss[rows], q50[rows], yerr=[q50[rows] - q05[rows],
                                                           q95[rows] - q50[rows]],
                        fmt=marker, ms=3 if filled else 4, lw=0.8, color=colour,
                        mfc=colour if filled else "white", label=f"N = {size:.3g}{note}")
        low = min(low, data.loss.min(), q05.min())
        high = max(high, data.loss.max(), q95.max())
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
    ax.legend(fontsize="small", loc="best")  # the least covered corner
    return fig


def plot_runs(table: RunTable, ax: Any = None, *, heldout: RunTable | None = None,
              target: tuple[float, float] | None = None) -> Any:
    """Model size against training tokens of every run and checkpoint (log-log).

    A marker's area grows with the rows at that ``(N, D)`` (mixtures and targets run
    there); grey lines are constant compute ``C = 6 N D``. The star is the planned run,
    so the distance to it is the extrapolation a decision rests on.

    Parameters
    ----------
    table : RunTable
        Training runs.
    ax : matplotlib Axes, optional
    heldout : RunTable, optional
        Runs the fits did not see (drawn in orange squares).
    target : (float, float), optional
        The planned run's ``(N, D)``.

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax)
    points = [frame[["N", "D"]].to_numpy(float)
              for frame in (table.frame, None if heldout is None else heldout.frame)
              if frame is not None]
    if target is not None:
        points.append(np.asarray([target], float))
    every = np.concatenate(points)
    flops = 6 * every[:, 0] * every[:, 1]
    n_grid = np.geomspace(every[:, 0].min() / 1.5, every[:, 0].max() * 1.5, 50)
    for exponent in range(int(np.floor(np.log10(flops.min()))),
                          int(np.ceil(np.log10(flops.max()))) + 1):
        ax.plot(n_grid, 10.0**exponent / (6 * n_grid), color="0.88", lw=0.8, zorder=0)
    for runs, colour, marker, label in ((table, TRAINING, "o", "training"),
                                        (heldout, HELDOUT, "s", "held out")):
        if runs is None:
            continue
        counts = runs.frame.groupby(["N", "D"]).size()
        n, d = (counts.index.get_level_values(name).to_numpy(float) for name in ("N", "D"))
        ax.scatter(n, d, s=12 + 4 * np.sqrt(counts.to_numpy()), color=colour, marker=marker,
                   alpha=0.8, label=f"{label} ({len(runs.frame)} rows)")
    if target is not None:
        ax.scatter([target[0]], [target[1]], marker="*", s=160, color="k", label="planned run")
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="tokens D",
           title="runs (grey: constant 6ND)",
           xlim=(every[:, 0].min() / 1.5, every[:, 0].max() * 1.5),
           ylim=(every[:, 1].min() / 1.5, every[:, 1].max() * 1.5))
    ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_mixtures(table: RunTable, ax: Any = None, *, heldout: RunTable | None = None) -> Any:
    """The distinct training mixtures as a strip per domain (weights on the simplex).

    Each dot is one distinct mixture's weight on that domain; the dashed line is the
    uniform weight ``1/k``. Domains whose weights barely vary are where the laws see
    least of the mixture's effect.

    Parameters
    ----------
    table : RunTable
        Training runs.
    ax : matplotlib Axes, optional
    heldout : RunTable, optional
        Runs the fits did not see (orange squares).

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax)
    k = len(table.domains)
    rng = np.random.default_rng(0)  # jitter only
    for runs, colour, marker, label, shift in ((table, TRAINING, "o", "training", -0.12),
                                               (heldout, HELDOUT, "s", "held out", 0.12)):
        if runs is None:
            continue
        mixtures = np.unique(np.round(runs.weights, MIXTURE_DECIMALS), axis=0)
        for i in range(k):
            x = i + shift + rng.uniform(-0.08, 0.08, len(mixtures))
            ax.scatter(x, mixtures[:, i], s=10, color=colour, marker=marker, alpha=0.7,
                       label=f"{label} ({len(mixtures)} mixtures)" if i == 0 else None)
    ax.axhline(1.0 / k, color="0.5", lw=1, ls="--", label="uniform")
    ax.set_xticks(range(k), table.domains, rotation=30 if k > 4 else 0)
    ax.set(ylim=(-0.02, 1.02), ylabel="weight h_i", title="training mixtures per domain")
    ax.legend(fontsize="small", loc="upper right")
    return fig


def _elements(posterior: TargetPosterior, name: str) -> list[tuple[str, np.ndarray]]:
    """``(label, draws)`` for every element of one parameter."""
    value = np.asarray(posterior.params[name], float)
    if value.ndim == 1:
        return [(name, value)]
    flat = value.reshape(value.shape[0], -1)
    seen = ((posterior.target,) if posterior.law.target_domain_only else posterior.domains)
    labels = (list(seen) if flat.shape[1] == len(seen) and value.ndim == 2
              else [str(i) for i in range(flat.shape[1])])
    return [(f"{name}[{label}]", flat[:, i]) for i, label in enumerate(labels)]


def plot_forest(posteriors: dict[str, TargetPosterior], ax: Any = None, *,
                names: Sequence[str] | None = None) -> Any:
    """Posterior medians with 50 % and 90 % intervals of every law parameter, per target.

    One row per parameter element (per-domain parameters get one row per domain),
    one colour per target, so targets read side by side. The values are the law's
    centred parameters (``bayesmix.lawkit``), which are of order one.

    Parameters
    ----------
    posteriors : dict label -> TargetPosterior
        Usually one fit's targets (same law).
    ax : matplotlib Axes, optional
    names : sequence of str, optional
        Parameters to show (default: every parameter of the first posterior).

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax)
    first = next(iter(posteriors.values()))
    names = list(names or first.params)
    rows: list[str] = []
    count = len(posteriors)
    for t, (label, posterior) in enumerate(posteriors.items()):
        colour = f"C{t % 10}"
        elements = [e for n in names if n in posterior.params for e in _elements(posterior, n)]
        for element, draws in elements:
            if element not in rows:
                rows.append(element)
            y = rows.index(element) + (t - (count - 1) / 2) * 0.7 / max(count, 1)
            q05, q25, q50, q75, q95 = np.quantile(draws, [0.05, 0.25, 0.5, 0.75, 0.95])
            ax.plot([q05, q95], [y, y], color=colour, lw=0.9)
            ax.plot([q25, q75], [y, y], color=colour, lw=2.6)
            ax.plot([q50], [y], "o", color=colour, ms=3,
                    label=label if element == elements[0][0] else None)
    ax.set_yticks(range(len(rows)), rows, fontsize="small")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.axvline(0, color="0.8", lw=0.8, zorder=0)
    ax.set(xlabel="value (median, 50 % and 90 % intervals)",
           title=f"parameters of law {first.law.name}")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def _chain_draws(idata: Any, label: str) -> np.ndarray:
    """``(chain, draw)`` values of one parameter element named ``name`` or ``name[c]``."""
    name, _, coord = label.partition("[")
    values = idata.posterior[name]
    extra = [d for d in values.dims if d not in ("chain", "draw")]
    if not coord or not extra:
        return np.asarray(values.values, float).reshape(values.shape[0], values.shape[1], -1)[
            ..., 0]
    coord = coord.rstrip("]")
    dim = extra[0]
    labels = [str(c) for c in values[dim].values]
    index = labels.index(coord) if coord in labels else int(coord)
    return np.asarray(values.isel({dim: index}).values, float).reshape(
        values.shape[0], values.shape[1], -1)[..., 0]


def plot_rank(idata: Any, labels: Sequence[str], ax: Any = None) -> Any:
    """ArviZ rank plots (``az.plot_rank``) of chosen parameter elements, one panel each.

    Well-mixed chains give flat, overlapping rank histograms; a chain whose bars pile
    up at one end sits apart from the others (typically what a large R-hat means).

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit's (``TargetFit.idata``), draws grouped by chain.
    labels : sequence of str
        ``name`` or ``name[coord]``, as :attr:`bayesmix.Diagnostics.worst_rhat` names them.
    ax : matplotlib Axes or sequence of Axes, optional
        One per label; default a new figure with a row of panels.

    Returns
    -------
    matplotlib Figure
    """
    import arviz as az

    labels = list(labels)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 2.8),
                                 layout="constrained", squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        fig = axes[0].figure
    data = {label: _chain_draws(idata, label) for label in labels}
    az.plot_rank(data, ax=np.asarray(axes, dtype=object)[: len(labels)])
    return fig
