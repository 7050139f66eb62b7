"""Figures of the mixture decision, one function each: they take ``ax=None`` (a new
figure when None) and return the figure.

:func:`plot_optimum` and :func:`plot_ternary` show the posterior of the optimal
mixture ``h*`` against reference mixtures, :func:`plot_objective` the predicted
objective of each mixture at the planned scale, :func:`plot_optimum_path` ``h*(N, D)``
along a compute path (the paper's Fig. 6), and :func:`plot_elasticities` how each
target's loss responds to each domain's weight (:mod:`bayesmix.sensitivity`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayesmix._errors import BayesmixError
from bayesmix.decision import OptimumReport
from bayesmix.sensitivity import Elasticities

__all__ = [
    "plot_elasticities",
    "plot_objective",
    "plot_optimum",
    "plot_optimum_path",
    "plot_ternary",
]

_MARKERS = ("D", "x", "^", "v", "P", "*", "<", ">")


def _axes(ax: Any, size: tuple[float, float] = (4.8, 4.2)) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def _references(report: OptimumReport) -> dict[str, np.ndarray]:
    """The mixtures compared with ``h_bayes`` (``h_bayes`` itself left out)."""
    return {name: m for name, m in report.mixtures.items() if name != "h_bayes"}


def plot_optimum(report: OptimumReport, ax: Any = None) -> Any:
    """The posterior of ``h*`` per domain against ``h_bayes`` and the reference mixtures.

    Bars are the posterior median of each domain's optimal weight, with its 90 %
    interval; black diamonds are ``h_bayes`` (the mixture to launch), other markers
    the references (uniform, natural, a baseline's optimum, ...). A wide interval is
    a weight the runs do not pin.

    Parameters
    ----------
    report : OptimumReport
        From :func:`bayesmix.decide`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax)
    k = len(report.domains)
    x = np.arange(k)
    q05, q50, q95 = np.quantile(report.h_star_draws, [0.05, 0.5, 0.95], axis=0)
    ax.bar(x, q50, width=0.6, color="C0", alpha=0.55, label="h* median, 90 % interval")
    ax.errorbar(x, q50, yerr=[q50 - q05, q95 - q50], fmt="none", ecolor="C0", capsize=4)
    ax.scatter(x, report.h_bayes, marker="D", color="k", zorder=3, label="h_bayes")
    for i, (name, mixture) in enumerate(_references(report).items()):
        ax.scatter(x + 0.22, mixture, marker=_MARKERS[(i + 1) % len(_MARKERS)],
                   color=f"C{(i + 1) % 10}", zorder=3, label=name)
    ax.set_xticks(x, report.domains, rotation=30 if k > 4 else 0)
    ax.set(ylim=(0, max(1e-3, float(np.max(q95)), *(float(np.max(m)) for m in
                                                     report.mixtures.values())) * 1.4),
           ylabel="weight", title=f"optimal mixture at N = {report.n_params:.3g}, "
                                  f"D = {report.n_tokens:.3g}")
    # in the headroom above the tallest bar, in columns, so it hides no bar
    ax.legend(fontsize="small", loc="upper center", ncol=min(4, 2 + len(report.mixtures)))
    return fig


def _ternary_xy(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian coordinates of points of the 3-simplex in an equilateral triangle
    with domain 0 at the bottom left, 1 at the bottom right and 2 at the top."""
    h = np.atleast_2d(np.asarray(h, float))
    return h[:, 1] + 0.5 * h[:, 2], np.sqrt(3) / 2 * h[:, 2]


def plot_ternary(report: OptimumReport, ax: Any = None, *,
                 runs: np.ndarray | None = None) -> Any:
    """``h*`` draws on the simplex of three domains, with ``h_bayes`` and the references.

    Each small dot is one posterior draw's optimal mixture; a tight cloud is an optimum
    the runs pin. Grey crosses are the training mixtures when given, so the distance
    from the cloud to them is the extrapolation in mixture space.

    Parameters
    ----------
    report : OptimumReport
        A decision over exactly three domains.
    ax : matplotlib Axes, optional
    runs : ndarray, shape ``(m, 3)``, optional
        Training mixtures.

    Returns
    -------
    matplotlib Figure

    Raises
    ------
    BayesmixError
        Not three domains.
    """
    if len(report.domains) != 3:
        raise BayesmixError(f"a ternary plot needs 3 domains, got {len(report.domains)}")
    fig, ax = _axes(ax, (4.6, 4.2))
    corners = np.eye(3)
    cx, cy = _ternary_xy(corners[[0, 1, 2, 0]])
    ax.plot(cx, cy, color="0.3", lw=1)
    for fraction in (0.25, 0.5, 0.75):  # grid lines of constant weight
        for i in range(3):
            a, b = np.zeros(3), np.zeros(3)
            a[i] = b[i] = fraction
            a[(i + 1) % 3] = 1 - fraction
            b[(i + 2) % 3] = 1 - fraction
            gx, gy = _ternary_xy(np.stack([a, b]))
            ax.plot(gx, gy, color="0.9", lw=0.7, zorder=0)
    if runs is not None:
        rx, ry = _ternary_xy(runs)
        ax.scatter(rx, ry, marker="+", color="0.55", s=22, label="training mixtures")
    dx, dy = _ternary_xy(report.h_star_draws)
    ax.scatter(dx, dy, s=4, color="C0", alpha=0.25, label="h* draws")
    bx, by = _ternary_xy(report.h_bayes)
    ax.scatter(bx, by, marker="D", color="k", s=40, zorder=3, label="h_bayes")
    for i, (name, mixture) in enumerate(_references(report).items()):
        mx, my = _ternary_xy(mixture)
        ax.scatter(mx, my, marker=_MARKERS[(i + 1) % len(_MARKERS)], s=40,
                   color=f"C{(i + 1) % 10}", zorder=3, label=name)
    for (x, y), name, align in zip(zip(*_ternary_xy(corners), strict=True), report.domains,
                                   ("right", "left", "center"), strict=True):
        ax.annotate(name, (x, y), xytext=(0, 6 if align == "center" else -12),
                    textcoords="offset points", ha=align, fontsize="small")
    ax.set(xlim=(-0.1, 1.1), ylim=(-0.12, 0.98), aspect="equal", title="h* on the simplex")
    ax.axis("off")
    ax.legend(fontsize="x-small", loc="upper right", bbox_to_anchor=(1.05, 1.0))
    return fig


def plot_optimum_path(path: Sequence[Mapping[str, Any]], ax: Any = None, *,
                      planned: tuple[float, float] | None = None) -> Any:
    """``h*(N, D)`` along a compute path (the paper's Fig. 6), one colour per domain.

    Lines are ``h_bayes`` at each point, bands the 90 % interval of the per-draw
    ``h*``; the x axis is training compute ``C = 6 N D``. Weights that cross as compute
    grows are the mixture decisions that depend on scale.

    Parameters
    ----------
    path : sequence of dict
        From :func:`bayesmix.path.optimum_path` (or ``optimum.json``'s ``path``).
    ax : matplotlib Axes, optional
    planned : (float, float), optional
        The planned run's ``(N, D)``, marked by a vertical line.

    Returns
    -------
    matplotlib Figure
    """
    if not path:
        raise BayesmixError("the compute path is empty")
    fig, ax = _axes(ax, (5.2, 4.0))
    flops = np.array([6.0 * p["N"] * p["D"] for p in path])
    order = np.argsort(flops)
    for i, domain in enumerate(path[0]["h_bayes"]):
        colour = f"C{i % 10}"
        best = np.array([path[j]["h_bayes"][domain] for j in order])
        low = np.array([path[j]["h_star"][domain]["q05"] for j in order])
        high = np.array([path[j]["h_star"][domain]["q95"] for j in order])
        ax.fill_between(flops[order], low, high, color=colour, alpha=0.18, lw=0)
        ax.plot(flops[order], best, marker="o", ms=3, color=colour, label=domain)
    if planned is not None:
        ax.axvline(6.0 * planned[0] * planned[1], color="0.4", ls=":", lw=1,
                   label="planned run")
    ax.set(xscale="log", xlabel="training compute 6ND (FLOPs)",
           ylabel="h_bayes (line), h* 90 % interval (band)", title="optimal mixture by scale")
    ax.legend(fontsize="small", loc="best")
    return fig


def plot_objective(report: OptimumReport, ax: Any = None) -> Any:
    """The predicted objective at the planned scale for each mixture, as distributions.

    One violin per mixture (``h_bayes`` first) of the posterior draws of
    ``sum_t w_t L_t`` (with the discrepancy term when the fits have one), its median
    marked; under each reference, the probability that ``h_bayes`` is better. Lower
    is better; violins that overlap a lot are mixtures the posterior cannot tell
    apart.

    Parameters
    ----------
    report : OptimumReport
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _axes(ax, (5.0, 4.0))
    names = list(report.objective)
    values = [np.asarray(report.objective[n], float) for n in names]
    finite = [v[np.isfinite(v)] for v in values]
    parts = ax.violinplot(finite, showmedians=True, showextrema=False)
    for i, body in enumerate(parts["bodies"]):
        body.set_facecolor(f"C{i % 10}")
        body.set_alpha(0.5)
    labels = [names[0]] + [f"{name}\nP(h_bayes better)\n= {report.p_better(name):.2f}"
                           for name in names[1:]]
    ax.set_xticks(range(1, len(names) + 1), labels, fontsize="small")
    ax.set(ylabel="predicted objective sum_t w_t L_t",
           title=f"at N = {report.n_params:.3g}, D = {report.n_tokens:.3g}")
    return fig


def plot_elasticities(elasticity: Elasticities, ax: Any = None) -> Any:
    """The interaction matrix: ``d log L_t / d log h_i`` per target (row) and domain.

    Colour and number are the posterior median (blue: more of the domain lowers the
    target's loss; red: raises it); a star marks a cell whose 90 % interval excludes
    0, and grey numbers cells the posterior cannot sign.

    Parameters
    ----------
    elasticity : Elasticities
        From :func:`bayesmix.sensitivity.elasticities`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    targets, domains = elasticity.targets, elasticity.domains
    fig, ax = _axes(ax, (1.2 + 0.9 * len(domains), 1.2 + 0.55 * len(targets)))
    median = elasticity.median
    sure = elasticity.excludes_zero()
    finite = np.abs(median[np.isfinite(median)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = ax.imshow(median, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto")
    for t in range(len(targets)):
        for i in range(len(domains)):
            text = f"{median[t, i]:.2g}" + ("*" if sure[t, i] else "")
            ax.text(i, t, text, ha="center", va="center", fontsize="small",
                    color="k" if sure[t, i] else "0.45",
                    fontweight="bold" if sure[t, i] else "normal")
    ax.set_xticks(range(len(domains)), domains, rotation=30 if len(domains) > 4 else 0)
    ax.set_yticks(range(len(targets)), targets)
    ax.set(xlabel="domain weight h_i", ylabel="target loss L_t",
           title="d log L_t / d log h_i (* : 90 % interval excludes 0)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
