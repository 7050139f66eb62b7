"""The report: one self-contained HTML page of a study, from its fits to the next runs.

:func:`write_report` gathers what the other stages give (the fits' training runs
and convergence, predictions at training and held-out runs, the parameters, the
interaction matrix, the decision at a planned scale, ``h*(N, D)`` along a compute
path, the law comparison and the suggested next runs) into sections, each opened by
one sentence that says what to look for. Figures come from :mod:`bayesmix.plots`
and :mod:`bayesmix.decision_plots` and are embedded as PNG data URIs (``_html``); a
section whose input is missing says so in one sentence. The page is written
atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from bayesmix import _html
from bayesmix import _report_sections as build
from bayesmix._errors import BayesmixError
from bayesmix._io import atomic_file
from bayesmix.compare import compare
from bayesmix.decision import OptimumReport, decide
from bayesmix.design import DesignSettings, Suggestion, suggest_runs
from bayesmix.fit import Fit
from bayesmix.model import TargetPosterior
from bayesmix.objective import mixture_objective
from bayesmix.path import compute_grid, optimum_path
from bayesmix.predict import law_only
from bayesmix.report_inputs import decision_targets, read_optimum, read_suggestion, training_table
from bayesmix.runs import RunTable
from bayesmix.sensitivity import elasticities, moves_with_scale, reweights_along

__all__ = ["SECTIONS", "Report", "Section", "write_report"]

SECTIONS = (
    ("runs", "The runs at a glance"),
    ("convergence", "Convergence"),
    ("predictions", "Observed against predicted loss"),
    ("calibration", "Calibration at held-out runs"),
    ("parameters", "Parameter posteriors"),
    ("interactions", "Interaction matrix"),
    ("optimum", "The optimal mixture h*"),
    ("path", "h*(N, D) along a compute path"),
    ("objective", "Predicted loss at the planned scale"),
    ("comparison", "Law comparison"),
    ("suggestions", "Suggested next runs"),
)
"""``(anchor, title)`` of every section, in the page's order."""

LEADS = {
    "runs": "Look for gaps: sizes, token counts and mixtures the laws must extrapolate to "
            "(the star is the planned run; orange marks held-out runs).",
    "convergence": "Every row should read ok (R-hat at most 1.01, bulk and tail ESS at "
                   "least 400, no divergences); a failed target's rank plots should be "
                   "flat for every chain, and its numbers below are not to be trusted "
                   "until they are.",
    "predictions": "Points should lie on the diagonal with their 90 % bars crossing it "
                   "about nine times in ten; open squares (held-out runs) show how the law "
                   "extrapolates.",
    "calibration": "The curve should follow the diagonal; below it the intervals hold "
                   "fewer held-out runs than they claim.",
    "parameters": "Wide intervals are parameters the runs do not pin; compare targets "
                  "row by row.",
    "interactions": "Blue cells are domains whose weight lowers a target's loss, red "
                    "cells raise it; only starred cells are signed by the posterior "
                    "(90 % interval excludes 0).",
    "optimum": "Narrow intervals mean the runs pin the optimal weight; h_bayes (diamonds) "
               "is the mixture to launch, and its distance to the references is what "
               "choosing it changes.",
    "path": "Weights that move or cross as compute grows are mixture decisions that "
            "depend on scale.",
    "objective": "Lower is better; the further h_bayes's violin sits below a reference's "
                 "and the nearer P(h_bayes better) is to 1, the surer the gain.",
    "comparison": "Higher elpd is better, but only differences several times their se "
                  "count; LOO rewards interpolation, so weigh it against the held-out "
                  "calibration.",
    "suggestions": "The runs that would remove the most expected regret of the decision "
                   "(per FLOP when a budget is set); none is suggested when the regret is "
                   "already negligible.",
}
"""What to look for in each section: its opening sentence."""


class Section(NamedTuple):
    """One section of a report.

    Attributes
    ----------
    anchor, title : str
    html : str
        The section's body.
    missing : str or None
        The sentence shown instead of the section's content when its input was
        missing (None when the section is complete).
    """

    anchor: str
    title: str
    html: str
    missing: str | None = None


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : Path
        The HTML file.
    sections : tuple of Section
        In the page's order (:data:`SECTIONS`).
    decision_source, suggestion_source : str or None
        Where the decision and the suggested runs came from (None when absent).
    """

    path: Path
    sections: tuple[Section, ...]
    decision_source: str | None
    suggestion_source: str | None

    @property
    def missing(self) -> dict[str, str]:
        """Title -> sentence, for the sections that lacked their input."""
        return {s.title: s.missing for s in self.sections if s.missing}


# --------------------------------------------------------------------------- inputs


def _decision(posteriors: dict[str, TargetPosterior], key: Any, n_params: float | None,
              n_tokens: float | None, target_weights: Mapping[str, float] | None,
              references: Any, optimum: Any, baseline: Mapping[str, TargetPosterior] | None
              ) -> tuple[OptimumReport | None, str | None, list | None,
                         dict[str, TargetPosterior]]:
    """The decision to show, where it came from, a stored path (or Nones), and the
    posteriors it was made from (without their discrepancy terms for a stored decision
    made with ``--no-discrepancy``)."""
    if optimum is not None and (n_params is not None or n_tokens is not None):
        raise BayesmixError("give a decision (optimum) or a planned scale (n_params and "
                            "n_tokens), not both")
    if isinstance(optimum, OptimumReport):
        return optimum, (f"computed at N = {optimum.n_params:.4g}, D = "
                         f"{optimum.n_tokens:.4g} before this report"), None, posteriors
    if optimum is not None:
        stored = read_optimum(optimum, posteriors, key=key)
        source = f"read from {stored.source} and recomputed from the fits"
        if stored.discrepancy:
            return stored.report, source, stored.path, posteriors
        return (stored.report, source + " without their discrepancy terms (--no-discrepancy)",
                stored.path, law_only(posteriors))
    if n_params is None and n_tokens is None:
        return None, None, None, posteriors
    if n_params is None or n_tokens is None:
        raise BayesmixError("a planned scale needs both n_params (N) and n_tokens (D)")
    k = len(next(iter(posteriors.values())).domains)
    references = dict(references) if references is not None else {
        "uniform": np.full(k, 1.0 / k)}
    report = decide(posteriors, n_params, n_tokens, target_weights=target_weights,
                    references=references, baseline=baseline, key=key)
    return report, f"computed at N = {n_params:.4g}, D = {n_tokens:.4g}", None, posteriors


def _path(decision: OptimumReport, posteriors: dict[str, TargetPosterior],
          runs: RunTable, key: jax.Array) -> tuple[list | None, str]:
    objective = mixture_objective(posteriors, decision.target_weights)
    laws = ", ".join(sorted({p.law.name for p in objective.posteriors.values()}))
    mixtures = [decision.h_bayes, *decision.mixtures.values()]
    planned = 6.0 * decision.n_params * decision.n_tokens
    largest = float(np.max(6.0 * runs.frame["N"] * runs.frame["D"]))
    flops = np.geomspace(min(largest, planned / 100.0), 10.0 * planned, 7)
    grid_n, grid_d = compute_grid(flops, decision.n_tokens / decision.n_params)
    if not (moves_with_scale(objective, decision.n_params, decision.n_tokens, mixtures)
            or reweights_along(objective, grid_n, grid_d)):
        return None, (f"Under law {laws}, h* does not move with N or D (the objective's "
                      "gradient along the simplex keeps its direction at 10 times N or D, "
                      "and no learnt discrepancy reweighs the targets along the path), "
                      "so the path would be flat and is not drawn.")
    path = optimum_path(objective, grid_n, grid_d, lower=decision.lower, upper=decision.upper,
                        key=key)
    return path, (f"Computed under law {laws} along 6ND from {flops[0]:.3g} to "
                  f"{flops[-1]:.3g} FLOPs at the planned run's D/N = "
                  f"{decision.n_tokens / decision.n_params:.3g}, within the decision's bounds.")


def _suggestion(suggestion: Any, key: Any, posteriors: dict[str, TargetPosterior],
                chosen: dict[str, Any], decision: OptimumReport | None, planned: bool,
                design: DesignSettings | None) -> tuple[dict | None, str | None]:
    if isinstance(suggestion, Suggestion):
        return suggestion.to_dict(), "computed before this report"
    if isinstance(suggestion, Mapping):
        return dict(suggestion), "computed before this report"
    if suggestion is not None:
        return read_suggestion(suggestion), f"read from {Path(suggestion) / 'suggestion.json'}"
    if not planned or decision is None:
        return None, None
    fits = [chosen[t] for t in decision.target_weights]
    settings = design or DesignSettings()
    found = suggest_runs(
        key, {t: posteriors[t] for t in decision.target_weights}, decision.n_params,
        decision.n_tokens, train_n=np.concatenate([f.training_runs[0] for f in fits]),
        train_d=np.concatenate([f.training_runs[1] for f in fits]),
        target_weights=decision.target_weights, lower=decision.lower, upper=decision.upper,
        likelihood_weights={t: 1.0 / chosen[t].diagnostics.design_effect
                            for t in decision.target_weights},
        settings=settings)
    return found.to_dict(), (f"computed with suggest_runs at N = {decision.n_params:.4g}, "
                             f"D = {decision.n_tokens:.4g} ({found.settings.n_draws} draws, "
                             "default candidates)")


def _study(fits: Mapping[str, Fit], heldout: RunTable | None,
           baseline: Mapping[str, TargetPosterior] | None, n_params: float | None,
           n_tokens: float | None, target_weights: Mapping[str, float] | None,
           references: Any, optimum: Any, suggestion: Any, design: DesignSettings | None,
           key: jax.Array) -> build.Study:
    fits = dict(fits)
    targets = decision_targets(fits)
    chosen = {t: tf for t, (_, tf) in targets.items()}
    posteriors = {t: tf.posterior for t, tf in chosen.items()}
    # each section with the key its command uses at the same --seed, so that the page
    # shows what `optimize`, `compare` and `suggest` print
    decision, decision_source, path, decided = _decision(
        posteriors, key, n_params, n_tokens, target_weights, references, optimum,
        baseline)
    runs = training_table(fits)
    path_note = "The path in the optimum file (--path-flops)." if path else ""
    elasticity = None
    if decision is not None:
        if path is None:
            path, path_note = _path(decision, decided, runs, key)
        elasticity = elasticities(posteriors, decision.n_params, decision.n_tokens,
                                  decision.h_bayes)
    point_fits = {"baseline": dict(baseline)} if baseline and heldout is not None else None
    comparison = compare(key, fits, heldout, point_fits=point_fits)
    found, suggestion_source = _suggestion(
        suggestion, key, posteriors, chosen, decision,
        n_params is not None and n_tokens is not None, design)
    return build.Study(
        key=jax.random.fold_in(key, 3), fits=fits,
        tables={label: training_table(f) for label, f in fits.items()},
        runs=runs, heldout=heldout, chosen={t: label for t, (label, _) in targets.items()},
        posteriors=posteriors, decision=decision, decision_source=decision_source, path=path,
        path_note=path_note, elasticity=elasticity, comparison=comparison, suggestion=found,
        suggestion_source=suggestion_source)


# --------------------------------------------------------------------------- the page


def write_report(
    out: str | Path,
    fits: Mapping[str, Fit],
    *,
    heldout: RunTable | None = None,
    baseline: Mapping[str, TargetPosterior] | None = None,
    n_params: float | None = None,
    n_tokens: float | None = None,
    target_weights: Mapping[str, float] | None = None,
    references: Mapping[str, Any] | None = None,
    optimum: OptimumReport | str | Path | None = None,
    suggestion: Suggestion | Mapping[str, Any] | str | Path | None = None,
    design: DesignSettings | None = None,
    key: jax.Array | None = None,
    title: str = "bayesmix report",
) -> Report:
    """Write one self-contained HTML report of fits, their decision and the next runs.

    Parameters
    ----------
    out : str or Path
        The HTML file (written atomically).
    fits : dict label -> Fit
        Bayesian fits (e.g. :func:`bayesmix.load_fit`), over the same domains. Fits of
        several laws to the same targets are compared; the decision uses, for each
        target, the first fit that holds it.
    heldout : RunTable, optional
        Runs no fit saw: drawn beside the training runs, scored, and calibrated.
    baseline : dict target -> TargetPosterior, optional
        Point fits (:func:`bayesmix.load_posteriors` of a baseline directory): their
        optimum is compared in a computed decision, and they are scored on ``heldout``.
    n_params, n_tokens : float, optional
        The planned run's ``N`` and ``D``: the decision is computed there (with
        ``target_weights`` and ``references``, default the uniform mixture), and so
        is the suggestion of next runs when ``suggestion`` is None.
    target_weights : dict target -> float, optional
    references : dict name -> array ``(k,)``, optional
    optimum : OptimumReport, or str or Path, optional
        A decision already made, or an ``optimize --out`` directory (its settings are
        used again, see :func:`bayesmix.report_inputs.read_optimum`); instead of
        ``n_params`` and ``n_tokens``.
    suggestion : Suggestion, dict, or str or Path, optional
        Suggested runs (a :class:`bayesmix.Suggestion`, its ``to_dict()``, or a
        ``suggest --out`` directory).
    design : DesignSettings, optional
        Settings of a suggestion computed here.
    key : jax.Array, optional
        PRNG key (default ``jax.random.key(0)``).
    title : str

    Returns
    -------
    Report

    Raises
    ------
    BayesmixError
        No fit, fits over different domains, a held-out table over other domains, an
        unreadable or mismatched optimum or suggestion directory.
    """
    from bayesmix._version import __version__

    key = jax.random.key(0) if key is None else key
    study = _study(fits, heldout, baseline, n_params, n_tokens, target_weights, references,
                   optimum, suggestion, design, key)
    makers = {"runs": build.runs, "convergence": build.convergence,
              "predictions": build.predictions, "calibration": build.calibration,
              "parameters": build.parameters, "interactions": build.interactions,
              "optimum": build.optimum, "path": build.path, "objective": build.objective,
              "comparison": build.comparison, "suggestions": build.suggestions}
    sections = []
    for anchor, heading in SECTIONS:
        body, missing = makers[anchor](study)
        lead = _html.paragraph(LEADS[anchor], "lead")
        text = lead + "\n" + (_html.paragraph(missing, "missing") if missing else body)
        sections.append(Section(anchor, heading, text, missing))
    intro = build.intro(study, __version__)
    text = _html.page(title, intro, [(s.anchor, s.title, s.html) for s in sections])
    out = Path(out)
    with atomic_file(out) as handle:
        handle.write(text)
    return Report(path=out, sections=tuple(sections),
                  decision_source=study.decision_source,
                  suggestion_source=study.suggestion_source)
