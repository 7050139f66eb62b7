"""Figures, one function each: they take ``ax=None`` (a new figure when None) and
return the figure, so a notebook user can place each one where they like."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bayesmix.compare import LEVELS, HeldoutScore

__all__ = ["plot_coverage"]


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
