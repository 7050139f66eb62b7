"""The sections of a report, one function each: ``(body HTML, missing sentence)``.

:mod:`bayesmix.report` gathers a :class:`Study` and calls these in the page's order;
each returns its body, or an empty body and the sentence saying which input it lacked.
Figures are drawn by :mod:`bayesmix.plots` and :mod:`bayesmix.decision_plots` on axes
of figures made outside pyplot, and embedded by :mod:`bayesmix._html`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from bayesmix import _html
from bayesmix.compare import Comparison
from bayesmix.coupling import describe
from bayesmix.decision import OptimumReport
from bayesmix.decision_plots import (
    plot_elasticities,
    plot_objective,
    plot_optimum,
    plot_optimum_path,
    plot_ternary,
)
from bayesmix.fit import Fit
from bayesmix.model import TargetPosterior
from bayesmix.plots import (
    plot_coverage,
    plot_forest,
    plot_loo_pit,
    plot_mixtures,
    plot_observed_vs_predicted,
    plot_rank,
    plot_runs,
)
from bayesmix.runs import MIXTURE_DECIMALS, RunTable, runs_summary
from bayesmix.scoring import HeldoutScore, chance_lines
from bayesmix.sensitivity import Elasticities

__all__ = ["Study"]

Result = tuple[str, str | None]

NO_DECISION = ("No planned scale was given (--N and --D, or --optimum DIR), so there is "
               "no decision to show here.")


@dataclass(frozen=True)
class Study:
    """Everything the sections draw from (made by :func:`bayesmix.report.write_report`)."""

    key: jax.Array
    fits: dict[str, Fit]
    tables: dict[str, RunTable]
    runs: RunTable
    heldout: RunTable | None
    chosen: dict[str, str]
    posteriors: dict[str, TargetPosterior]
    decision: OptimumReport | None
    decision_source: str | None
    path: list[dict[str, Any]] | None
    path_note: str
    elasticity: Elasticities | None
    comparison: Comparison
    suggestion: dict[str, Any] | None
    suggestion_source: str | None


def _planned(study: Study) -> tuple[float, float] | None:
    d = study.decision
    return None if d is None else (d.n_params, d.n_tokens)


def _grid(count: int, width: float = 4.2, height: float = 3.8, columns: int = 3
          ) -> tuple[Any, list[Any]]:
    ncols = min(columns, count)
    nrows = math.ceil(count / ncols)
    fig, axes = _html.new_figure(nrows, ncols, size=(width * ncols, height * nrows))
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def intro(study: Study, version: str) -> str:
    """The lines under the title: what was given and where each part came from."""
    rows = [(label, fit.law.name, ", ".join(fit.targets),
             max(len(tf.rows) for tf in fit.targets.values()),
             next(iter(fit.targets.values())).posterior.n_draws, fit.source)
            for label, fit in study.fits.items()]
    lines = [_html.table(["fit", "law", "targets", "rows", "draws", "run table"], rows,
                         text_columns=3)]
    given = [f"Held-out runs: {study.heldout.source} ({len(study.heldout.frame)} rows)."
             if study.heldout is not None else "Held-out runs: none given.",
             f"Decision: {study.decision_source}." if study.decision_source
             else "Decision: none (no planned scale).",
             f"Suggested runs: {study.suggestion_source}." if study.suggestion_source
             else "Suggested runs: none."]
    lines += [_html.paragraph(g) for g in given]
    lines.append(_html.paragraph(f"Made by bayesmix {version}. This page is self-contained: "
                                 "its images are embedded and it fetches nothing."))
    return "\n".join(lines)


def runs(study: Study) -> Result:
    fig, axes = _html.new_figure(1, 2, size=(10.5, 4.3))
    plot_runs(study.runs, axes[0, 0], heldout=study.heldout, target=_planned(study))
    plot_mixtures(study.runs, axes[0, 1], heldout=study.heldout)
    rows = []
    for label, table in [*study.tables.items(),
                         *([("held out", study.heldout)] if study.heldout else [])]:
        frame = table.frame
        sizes = ", ".join(f"{n:.3g}" for n in sorted(frame["N"].unique()))
        rows.append((label, len(frame), sizes, f"{frame['D'].min():.3g} to {frame['D'].max():.3g}",
                     runs_summary(table)["distinct_mixtures"], ", ".join(table.targets)))
    summary = _html.table(["runs", "rows", "model sizes N", "tokens D", "distinct mixtures",
                           "targets"], rows, text_columns=1)
    return _html.figure_html(fig, "model size against tokens, and the mixtures") + summary, None


def convergence(study: Study) -> Result:
    header = ["fit", "target", "law", "rows", "R-hat", "ESS bulk", "ESS tail", "divergent",
              "max depth %", "min E-BFMI", "steps/draw", "design effect", "status"]
    rows, classes, failures, figures = [], [], [], []
    for label, fit in study.fits.items():
        for target, tf in fit.targets.items():
            d = tf.diagnostics
            rows.append((label, target, fit.law.name, len(tf.rows), f"{d.max_rhat:.3f}",
                         f"{d.min_ess_bulk:.0f}", f"{d.min_ess_tail:.0f}",
                         f"{d.divergences} of {d.draws}", f"{100 * d.saturation:.1f}",
                         f"{min(d.bfmi):.2f}", f"{d.mean_steps:.0f}",
                         f"{d.design_effect:.2f}", "ok" if tf.converged else "FAILED"))
            classes.append("" if tf.converged else "fail")
            if tf.converged:
                continue
            failures += [f'<li class="fail">{html.escape(f"{label} / {target}: {w}")}</li>'
                         for w in tf.warnings]
            labels = [name for name, _ in d.worst_rhat][:3] or list(tf.param_names)[:3]
            fig, axes = _html.new_figure(1, len(labels), size=(3.3 * len(labels), 2.9))
            plot_rank(tf.idata, labels, ax=list(axes[0]))
            figures.append(_html.figure_html(
                fig, f"rank plots of {label} / {target}",
                f"{label} / {target}: rank plots of the parameters with the largest R-hat"))
    body = [_html.table(header, rows, text_columns=3, row_classes=classes)]
    if failures:
        body += [_html.paragraph(f"{len(figures)} target(s) failed a convergence check:",
                                 "fail"), "<ul>", *failures, "</ul>", *figures]
    else:
        body.append(_html.paragraph(f"All {len(rows)} targets passed every check."))
    return "\n".join(body), None


def predictions(study: Study) -> Result:
    parts = []
    for f_index, (label, fit) in enumerate(study.fits.items()):
        fig, axes = _grid(len(fit.targets))
        for t_index, (target, tf) in enumerate(fit.targets.items()):
            key = jax.random.fold_in(jax.random.fold_in(study.key, f_index), t_index)
            plot_observed_vs_predicted(key, tf.posterior, study.tables[label], axes[t_index],
                                       heldout=study.heldout)
            axes[t_index].set_title(f"{label}: {target}")
        parts.append(_html.figure_html(fig, f"observed against predicted loss, {label}",
                                       f"{label} (law {fit.law.name}): filled circles "
                                       "training rows, open squares held-out rows; colours "
                                       "are model sizes"))
    return "\n".join(parts), None


def _score_rows(scores: list[HeldoutScore]) -> list[tuple]:
    return [(s.label, s.target, s.rows, f"{100 * s.mre:.2f}", f"{100 * s.signed:+.2f}",
             f"{100 * s.cover50:.0f}", f"{100 * s.cover90:.0f}", f"{100 * s.width90:.2f}",
             f"{s.crps:.5f}") for s in scores]


def calibration(study: Study) -> Result:
    if study.heldout is None:
        return "", ("No held-out runs were given (--heldout RUNS), so the calibration of "
                    "the intervals where they are used is not shown.")
    c = study.comparison
    fig, axes = _html.new_figure(size=(5.0, 4.4))
    plot_coverage(c.pooled(), axes[0, 0])
    header = ["fit", "target", "rows", "MRE %", "signed %", "cover 50 %", "cover 90 %",
              "width 90 %", "CRPS"]
    return (_html.figure_html(fig, "nominal against observed coverage")
            + _html.paragraph(f"Held-out runs: {c.heldout_source}; target 'all' pools "
                              "each fit's targets.")
            + _html.table(header, _score_rows([*c.heldout, *c.pooled()]), text_columns=2)
            + "".join(_html.paragraph(line) for line in chance_lines(c.chance)),
            None)


def parameters(study: Study) -> Result:
    parts = []
    for label, fit in study.fits.items():
        posteriors = {t: tf.posterior for t, tf in fit.targets.items()}
        first = next(iter(posteriors.values()))
        elements = sum(int(np.prod(np.shape(v)[1:], dtype=int)) for v in first.params.values())
        fig, axes = _html.new_figure(size=(7.5, 1.4 + 0.24 * elements))
        plot_forest(posteriors, axes[0, 0])
        law = fit.law.name
        axes[0, 0].set_title(f"parameters of law {law}" if label == law
                             else f"{label}: parameters of law {law}")
        parts.append(_html.figure_html(fig, f"parameter posteriors, {label}"))
    return "\n".join(parts), None


def interactions(study: Study) -> Result:
    e = study.elasticity
    if e is None:
        return "", NO_DECISION
    fig, axes = _html.new_figure(size=(1.8 + 1.0 * len(e.domains), 1.6 + 0.55 * len(e.targets)))
    plot_elasticities(e, axes[0, 0])
    mixture = ", ".join(f"{d} = {w:.3f}" for d, w in zip(e.domains, e.mixture, strict=True))
    note = (f"Elasticities d log L_t / d log h_i of the law's mean at h_bayes ({mixture}), "
            f"N = {e.n_params:.3g}, D = {e.n_tokens:.3g}: posterior medians; a value of 0.1 "
            "says one per cent more weight on the domain (the others fixed) raises the "
            "target's loss by 0.1 per cent.")
    low, high = e.interval(0.9)
    rows = [(target, *(f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, lo, hi in
                       zip(e.median[t], low[t], high[t], strict=True)))
            for t, target in enumerate(e.targets)]
    table = _html.table(["target \\ domain", *e.domains], rows)
    return (_html.figure_html(fig, "interaction matrix") + _html.paragraph(note)
            + _html.paragraph("Medians with 90 % intervals:") + table), None


def optimum(study: Study) -> Result:
    d = study.decision
    if d is None:
        return "", NO_DECISION
    ternary = len(d.domains) == 3
    fig, axes = _html.new_figure(1, 2 if ternary else 1, size=(10.5 if ternary else 5.5, 4.4))
    plot_optimum(d, axes[0, 0])
    if ternary:
        mixtures = np.unique(np.round(study.runs.weights, MIXTURE_DECIMALS), axis=0)
        plot_ternary(d, axes[0, 1], runs=mixtures)
    payload = d.to_dict()
    rows = [(domain, f"{payload['h_bayes'][domain]:.4f}", f"{s['median']:.4f}",
             f"{s['q05']:.4f}", f"{s['q95']:.4f}",
             f"{payload['bounds'][domain]['min']:.3g} to {payload['bounds'][domain]['max']:.3g}")
            for domain, s in payload["h_star"].items()]
    table = _html.table(["domain", "h_bayes", "h* median", "h* 5 %", "h* 95 %", "bounds"],
                        rows)
    used = ", ".join(f"{t} from {study.chosen[t]} (weight {w:.3g})"
                     for t, w in d.target_weights.items())
    optimizer = payload["optimizer"]
    notes = [f"Decision {study.decision_source}; targets: {used}.",
             f"Mirror descent: {100 * optimizer['fraction_converged']:.1f} % of "
             f"{payload['n_draws']} draws converged, h_bayes "
             f"{'converged' if optimizer['h_bayes_converged'] else 'did NOT converge'}."]
    return (_html.figure_html(fig, "posterior of the optimal mixture") + table
            + "\n".join(_html.paragraph(n) for n in notes), None)


def path(study: Study) -> Result:
    if study.decision is None:
        return "", NO_DECISION
    if not study.path:
        return "", study.path_note
    fig, axes = _html.new_figure(size=(6.5, 4.3))
    plot_optimum_path(study.path, axes[0, 0], planned=_planned(study))
    return _html.figure_html(fig, "optimal mixture along compute") + _html.paragraph(
        study.path_note), None


def objective(study: Study) -> Result:
    d = study.decision
    if d is None:
        return "", NO_DECISION
    fig, axes = _html.new_figure(size=(6.5, 4.3))
    plot_objective(d, axes[0, 0])
    rows = []
    payload = d.to_dict()
    for name, row in payload["objective"].items():
        better = "-" if name == "h_bayes" else f"{row['p_h_bayes_better']:.3f}"
        rows.append((name, f"{row['median']:.5g}", f"{row['q05']:.5g}", f"{row['q95']:.5g}",
                     better, f"{row['expected_regret']:.3g}",
                     "yes" if row["feasible"] else "no"))
    table = _html.table(["mixture", "median", "5 %", "95 %", "P(h_bayes better)",
                         "expected regret", "within bounds"], rows)
    sentence = describe(payload)
    note = _html.paragraph(f"{sentence}.") if sentence else ""
    return _html.figure_html(fig, "predicted objective per mixture") + table + note, None


def comparison(study: Study) -> Result:
    c = study.comparison
    loo = [(s.label, s.target, s.law, s.rows, f"{s.elpd:.1f}", f"{s.se:.1f}",
            f"{s.p_loo:.1f}", s.bad_k) for s in c.loo]
    body = [_html.table(["fit", "target", "law", "rows", "elpd LOO", "se", "p_loo",
                         "Pareto k > 0.7"], loo, text_columns=3)]
    if c.ranking:
        ranking = [(r.target, r.label, r.rank, f"{r.elpd:.1f}", f"{r.elpd_diff:.1f}",
                    f"{r.dse:.1f}", "-" if np.isnan(r.weight) else f"{r.weight:.2f}")
                   for r in c.ranking]
        body.append(_html.table(["target", "fit", "rank", "elpd", "elpd below best", "se",
                                 "stacking weight"], ranking, text_columns=2))
        preferred = c.preferred("all") or c.preferred(c.ranking[0].target)
        body.append(_html.paragraph(f"The training runs prefer {preferred}."))
    else:
        body.append(_html.paragraph(
            "No target is fitted by two fits on the same rows, so the laws are not ranked "
            "(give FITs of several laws made from the same runs).", "missing"))
    fig, axes = _html.new_figure(size=(6.0, 4.2))
    plot_loo_pit({f"{label} ({target})": tf.idata for label, fit in study.fits.items()
                  for target, tf in fit.targets.items()}, axes[0, 0])
    body.append(_html.figure_html(fig, "LOO probability integral transform"))
    return "\n".join(body), None


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""


def suggestions(study: Study) -> Result:
    s = study.suggestion
    if s is None:
        return "", ("No suggested runs: give --suggest DIR (from bayesmix suggest --out) or "
                    "--N and --D to compute them.")
    lines = [_html.paragraph(f"Suggested runs {study.suggestion_source}."),
             _html.paragraph(f"At N = {s['N']:.4g}, D = {s['D']:.4g} the expected regret of "
                             f"h_bayes is {s['expected_regret']:.3g} "
                             f"({100 * s['relative_regret']:.3g} % of the predicted "
                             f"objective); {s['n_candidates']} candidate runs."),
             _html.paragraph(_sentence(str(s["reason"])))]
    if s["runs"]:
        # gain_se is the standard error of the run's gain alone (as suggest's table
        # shows it), not of its marginal gain in the batch
        rows = [(i, f"{r['N']:.3g}", f"{r['D']:.3g}", f"{r['cost_flops']:.3g}",
                 ", ".join(f"{d}={w:.3f}" for d, w in r["mixture"].items()),
                 f"{r['expected_gain']:.3g}",
                 (f"{r['expected_gain_alone']:.3g} ± {r['gain_se']:.2g}"
                  if "expected_gain_alone" in r else f"± {r['gain_se']:.2g}"),
                 f"{1e18 * r['gain_per_flop']:.3g}", r["reason"])
                for i, r in enumerate(s["runs"], 1)]
        lines.append(_html.table(["#", "N", "D", "FLOPs", "mixture",
                                  "expected gain in the batch", "alone ± se",
                                  "gain per 1e18 FLOPs", "reason"], rows, text_columns=1))
        batch = s["batch"]
        lines.append(_html.paragraph(
            f"Together: expected gain {batch['expected_gain']:.3g} ± {batch['gain_se']:.2g}, "
            f"expected regret after {batch['expected_regret_after']:.3g}, "
            f"{batch['cost_flops']:.3g} FLOPs."))
    return "\n".join(lines), None
