"""The built-in demo: simulate runs, fit a law, and choose a mixture with its uncertainty.

Everything runs on data bayesmix simulates itself, so the true optimal mixture is known
and the demo can show whether the posterior covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from bayesmix._nuts_defaults import CHAINS, WARMUP
from bayesmix.calibrate import learn_discrepancy
from bayesmix.decision import OptimumReport, decide
from bayesmix.design import Suggestion, suggest_runs
from bayesmix.fit import Fit, fit
from bayesmix.laws import load_law
from bayesmix.model import TargetPosterior, scales_for
from bayesmix.runs import RunTable
from bayesmix.simulate import simulate_runs

__all__ = ["DemoResult", "run_demo"]

DOMAINS = ("web", "code", "books")


@dataclass(frozen=True)
class DemoResult:
    """What the demo found.

    Attributes
    ----------
    table : RunTable
        The simulated runs.
    fit : Fit
        The Bayesian fit of every target.
    decision : OptimumReport
        ``h*`` per draw, ``h_bayes`` and the comparison with the uniform mixture.
    true_h_star : ndarray, shape ``(k,)``
        The optimum under the parameters the runs were simulated from.
    suggestion : Suggestion
        The next runs worth launching (:func:`bayesmix.suggest_runs`), or why none is.
    """

    table: RunTable
    fit: Fit
    decision: OptimumReport
    true_h_star: np.ndarray
    suggestion: Suggestion

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.table.frame),
            "diagnostics": {t: f.diagnostics.to_dict() for t, f in self.fit.targets.items()},
            "true_h_star": dict(zip(self.table.domains, self.true_h_star.tolist(), strict=True)),
            **self.decision.to_dict(),
            "suggestion": self.suggestion.to_dict(),
        }

    def __str__(self) -> str:
        d = self.decision.to_dict()
        lines = [
            f"Simulated {len(self.table.frame)} runs of the additive law on "
            f"{len(self.table.domains)} domains ({', '.join(self.table.domains)}); "
            f"fit each domain's loss with NUTS.",
            "",
            self.fit.diagnostics_table(),
            "",
            f"Optimal mixture for the mean loss at N = {self.decision.n_params:.3g} params, "
            f"D = {self.decision.n_tokens:.3g} tokens (beyond the largest run):",
            f"  {'domain':<8} {'median':>7} {'90% interval':>17} {'h_bayes':>8} {'truth':>7}",
        ]
        for i, domain in enumerate(self.table.domains):
            s = d["h_star"][domain]
            lines.append(
                f"  {domain:<8} {s['median']:7.3f}   [{s['q05']:.3f}, {s['q95']:.3f}]   "
                f"{d['h_bayes'][domain]:8.3f} {self.true_h_star[i]:7.3f}"
            )
        bayes, uniform = d["objective"]["h_bayes"], d["objective"]["uniform"]
        lines += [
            "",
            f"Predicted mean loss with h_bayes: {bayes['median']:.4f} "
            f"(90% interval {bayes['q05']:.4f} to {bayes['q95']:.4f}, with the discrepancy "
            f"learnt beyond the training range)",
            f"Predicted mean loss with the uniform mixture: {uniform['median']:.4f}; "
            f"P(h_bayes is better) = {uniform['p_h_bayes_better']:.2f}",
        ]
        suggestion = self.suggestion.to_dict()
        lines += ["", f"Which runs to launch next, within the FLOPs of one more run of the "
                      f"largest size: {suggestion['reason']}."]
        for run in suggestion["runs"]:
            mixture = ", ".join(f"{d}={w:.2f}" for d, w in run["mixture"].items())
            lines.append(f"  N = {run['N']:.3g}, D = {run['D']:.3g}, {mixture}: "
                         f"{run['reason']}")
        for warning in self.fit.warnings:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)


def _true_posteriors(law, table: RunTable, truth: dict) -> dict[str, TargetPosterior]:
    return {
        target: TargetPosterior.from_sites(law, target, table.domains,
                                           scales_for(table.target_data(target)), sites)
        for target, sites in truth.items()
    }


def run_demo(
    key: jax.Array, *, chains: int = CHAINS, warmup: int = WARMUP, draws: int = 700,
    n_mixtures: int = 10,
) -> DemoResult:
    """Simulate additive-law runs on three domains, fit them, and choose a mixture.

    Parameters
    ----------
    key : jax.Array
        PRNG key (simulation, fitting and decisions all derive from it).
    chains, warmup, draws : int
        NUTS settings per target.
    n_mixtures : int
        Distinct training mixtures in the simulated design.
    """
    key_sim, key_fit = jax.random.split(key)
    law = load_law("additive")
    # the simulation's reference point and loss scale match those of the fit below
    table, truth = simulate_runs(key_sim, law, len(DOMAINS), domain_names=DOMAINS,
                                 n_mixtures=n_mixtures, loss_scale=3.0)
    result = fit(key_fit, law, table, list(DOMAINS), chains=chains, warmup=warmup, draws=draws)
    # what `bayesmix fit` does by default: the discrepancy beyond the training range
    result = result.with_discrepancy(
        learn_discrepancy(jax.random.fold_in(key_fit, 1), result, table))
    n_params = 4.0 * float(table.frame["N"].max())
    n_tokens = 20.0 * n_params
    uniform = np.full(len(DOMAINS), 1.0 / len(DOMAINS))
    decision = decide(result.posteriors, n_params, n_tokens, references={"uniform": uniform})
    # the truth is a one-draw posterior: its Bayes mixture is its h*
    true_h = decide(_true_posteriors(law, table, truth), n_params, n_tokens).h_bayes
    largest = table.frame.loc[table.frame["N"].idxmax()]
    suggestion = suggest_runs(
        jax.random.fold_in(key_fit, 2), result.posteriors, n_params, n_tokens,
        train_n=table.frame["N"], train_d=table.frame["D"], batch=2,
        budget=6.0 * float(largest["N"]) * float(table.frame["D"].max()),
        likelihood_weights={t: 1 / f.diagnostics.design_effect
                            for t, f in result.targets.items()})
    return DemoResult(table=table, fit=result, decision=decision, true_h_star=true_h,
                      suggestion=suggestion)
