"""Quickstart: simulate runs, fit the additive law, predict, and choose a mixture.

Run ``python examples/quickstart.py`` (add ``--tiny`` for a seconds-long smoke run).
"""

from __future__ import annotations

import argparse

import jax
import numpy as np


def main(tiny: bool = False) -> dict:
    jax.config.update("jax_enable_x64", True)  # program start: float64 for the fit

    from bayesmix import decide, fit, load_law, predict_table, simulate_runs

    key_sim, key_fit, key_pred = jax.random.split(jax.random.key(0), 3)
    law = load_law("additive")
    domains = ("web", "code")
    table, _truth = simulate_runs(key_sim, law, len(domains), domain_names=domains,
                                  n_mixtures=6 if tiny else 12)
    settings = dict(chains=2, warmup=100, draws=100) if tiny else {}
    result = fit(key_fit, law, table, list(domains), **settings)
    print(result.diagnostics_table())

    preds = predict_table(key_pred, result.posteriors, table)
    mre = np.mean(np.abs(preds["web_median"] / preds["loss_web"] - 1))
    print(f"train MRE on 'web': {100 * mre:.3f} %")

    decision = decide(result.posteriors, n_params=2e9, n_tokens=4e10,
                      references={"uniform": np.full(len(domains), 0.5)})
    report = decision.to_dict()
    for domain, summary in report["h_star"].items():
        print(f"h*[{domain}] = {summary['median']:.3f} "
              f"(90% interval {summary['q05']:.3f} to {summary['q95']:.3f})")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true")
    main(parser.parse_args().tiny)
