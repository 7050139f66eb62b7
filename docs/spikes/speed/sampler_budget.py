"""How long warmup and how many draws a fit needs (issue 17, fifth study).

Runs ``bayesmix fit --no-discrepancy`` on the paper split for each (law, target, seed,
warmup, draws, max draws) and prints the counts that do not depend on the machine's
load: leapfrog steps a draw, the gradients of warmup and of the draws (all chains),
the draws kept a chain, bulk / tail ESS, max R-hat, divergences, ESS per 1000
gradients (the fit's own: warmup and all draws, not the start search). Wall seconds
are printed as a rough guide only. (At `b9b9f13`, whose figures docs/speed.md gives, it
also printed the sampler's step cuts; main's sampler has none.)

Usage::

    python docs/spikes/speed/sampler_budget.py OUT --laws additive --targets book,github \
        --seeds 0 --budgets 600:1000:2000,300:500:2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

from _cli_runs import run_cli  # noqa: E402
from _paper import CLI_COLUMNS, DATA, TRAIN_WHERE  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--laws", default="additive")
    parser.add_argument("--targets", default="book")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budgets", default="600:1000:2000",
                        help="warmup:draws:max_draws, comma-separated")
    parser.add_argument("--extra", default="", help="more fit options, space-separated")
    args = parser.parse_args()
    from bayesmix import load_fit

    out = Path(args.out)
    print(f"{'law':<9}{'target':<14}{'seed':>5}{'budget':>15}{'steps':>7}{'warm grad':>10}"
          f"{'draw grad':>10}{'kept':>6}{'bulk':>7}{'tail':>7}{'R-hat':>7}{'div':>5}"
          f"{'ESS/1k':>8}{'wall':>7}", flush=True)
    for law in args.laws.split(","):
        for target in args.targets.split(","):
            for seed in args.seeds.split(","):
                for budget in args.budgets.split(","):
                    warmup, draws, max_draws = budget.split(":")
                    where = out / f"{law}_{target}_{seed}_{warmup}_{draws}_{max_draws}"
                    if not (where / "fit.json").is_file():
                        wall = run_cli("fit", DATA, *CLI_COLUMNS, "--where", TRAIN_WHERE,
                                       "--law", law, "--target", target, "--out", where,
                                       "--seed", seed, "--warmup", warmup, "--draws", draws,
                                       "--max-draws", max_draws, "--no-discrepancy",
                                       *args.extra.split())
                    else:
                        wall = float("nan")
                    tf = load_fit(where).targets[target]
                    d, s = tf.diagnostics, tf.settings
                    draw_grad = d.mean_steps * d.draws
                    print(f"{law:<9}{target:<14}{seed:>5}{budget:>15}{d.mean_steps:7.0f}"
                          f"{(d.gradients - draw_grad) / 1e3:9.0f}k{draw_grad / 1e3:9.0f}k"
                          f"{s.kept_draws:6d}{d.min_ess_bulk:7.0f}{d.min_ess_tail:7.0f}"
                          f"{d.max_rhat:7.3f}{d.divergences:5d}"
                          f"{d.ess_per_1000_gradients:8.2f}{wall:7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

