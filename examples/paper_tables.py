"""The paper's Tables 4, 8 and 16 beside bayesmix's, from the paper's own runs.

Shukor et al. 2025 fit each domain's loss on models of 310M to 1.235B parameters with a
Huber loss and report the error at 2.718B (Table 8 per domain, Table 4 its mean), then
the mixture that minimises the mean of the seven domain losses (Table 16, additive law).
This script fits the same split twice, with the paper's method (``baseline_fit``) and
with NUTS (``fit``), and prints each figure beside the paper's: the error of the point
fit and of the posterior median, the share of held-out losses inside the 90 %
predictive interval (what a point fit cannot say), and h* with its 90 % interval.

Needs the paper's runs (``../shared/data/dmsl_slimpajama``, or ``--data FILE``); says so
and exits when they are absent. The full run (2 laws x 7 domains, both methods) takes
about an hour on a laptop; ``--tiny`` fits one domain with short chains in a few
minutes, to see the shape of the output.

    python examples/paper_tables.py [--laws additive,joint] [--targets book,c4] [--tiny]
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "dmsl_slimpajama"
                / "dmsl_llm_slimpajama.csv")


def _scores(fits: dict, table) -> dict:
    """``(fit, target) -> HeldoutScore`` on ``table``'s rows: bayesmix's own scores (MRE
    of the law's median, coverage of the posterior predictive), point fits included."""
    import jax

    from bayesmix.scoring import heldout_scores

    return {(s.label, s.target): s for s in heldout_scores(jax.random.key(0), fits, table)}


def main(data: str | Path | None = None, laws=("additive", "joint"), targets=None,
         tiny: bool = False) -> dict | None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from bayesmix import TargetPosterior, baseline_fit, decide, fit, load_law, load_runs
    from bayesmix.paper import (
        COLUMNS,
        DOMAINS,
        EVAL_D,
        EVAL_N,
        EVAL_TARGET,
        EVAL_WHERE,
        PAPER_AVG,
        PAPER_MRE,
        TRAIN_WHERE,
    )

    path = Path(data) if data else DEFAULT_DATA
    if not path.is_file():
        print(f"the paper's runs are not at {path}: nothing to compare (give --data FILE)")
        return None
    targets = list(targets or (["book"] if tiny else DOMAINS))
    runs = load_runs(path, **COLUMNS)
    train, held = runs.select(TRAIN_WHERE), runs.select(EVAL_WHERE)
    if tiny:  # every fourth training row: the shape of the output, not its figures
        train = train.select(np.arange(len(train.frame)) % 4 == 0)
    nuts = dict(chains=2, warmup=150, draws=150) if tiny else {}
    search = dict(n_random=200, n_starts=2, n_hops=1) if tiny else {}
    rows, posteriors = [], {}
    print(f"{'law':<9} {'target':<14} {'paper train/eval':>17} {'Huber train/eval':>17} "
          f"{'NUTS train/eval':>16} {'NUTS 90 % cover':>16}   (MRE %)")
    for name in laws:
        law = load_law(name)
        points = baseline_fit(jax.random.key(0), law, train, targets, **search)
        bayes = fit(jax.random.key(1), law, train, targets, **nuts)
        posteriors[name] = bayes.posteriors
        huber = {t: TargetPosterior.from_sites(law, t, r.domains, r.scales, r.sites)
                 for t, r in points.items()}
        fits = {"huber": huber, "nuts": bayes.posteriors}
        on_train, on_eval = _scores(fits, train), _scores(fits, held)
        for target in targets:
            h_train, h_eval, f_train, f_eval = (
                100 * scores[(label, target)].mre for label in ("huber", "nuts")
                for scores in (on_train, on_eval))
            cover = 100 * on_eval[("nuts", target)].cover90
            paper = PAPER_MRE.get(name, {}).get(target, (float("nan"),) * 2)
            rows.append((name, target, f_eval, h_eval, paper[1]))
            print(f"{name:<9} {target:<14} {paper[0]:8.2f} {paper[1]:8.2f} {h_train:8.2f} "
                  f"{h_eval:8.2f} {f_train:7.2f} {f_eval:8.2f} {cover:15.0f}%")
    print("\nTable 4 (mean eval MRE % over the domains fitted here; the paper's over all 7)")
    for name in laws:
        mine = [r for r in rows if r[0] == name]
        huber, median = np.mean([r[3] for r in mine]), np.mean([r[2] for r in mine])
        print(f"  {name:<9} paper {EVAL_TARGET.get(name, float('nan')):.2f}   Huber "
              f"{huber:.2f}   NUTS median {median:.2f}")
    if "additive" not in posteriors:
        return {"rows": rows}
    report = decide(posteriors["additive"], EVAL_N, EVAL_D).to_dict()
    print(f"\nTable 16: h* of the mean of {len(targets)} domain loss(es) at N = {EVAL_N:.4g}, "
          f"D = {EVAL_D:.4g} (additive law; the paper's is of all 7)")
    for domain, paper in zip(DOMAINS, PAPER_AVG, strict=True):
        s = report["h_star"][domain]
        print(f"  {domain:<14} paper {paper:.3f}   bayesmix {s['median']:.3f} "
              f"[{s['q05']:.3f}, {s['q95']:.3f}]")
    return {"rows": rows, "h_star": report["h_star"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="the paper's CSV (default ../shared)")
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--targets", default=None, help="comma-separated domains")
    parser.add_argument("--tiny", action="store_true")
    a = parser.parse_args()
    main(a.data, a.laws.split(","), a.targets.split(",") if a.targets else None, a.tiny)
