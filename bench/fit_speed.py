"""Fit speed on the paper's split (issue 17): the Huber baseline against NUTS, cold and warm.

For each law and target, one run, side by side, every command a fresh process as a user
runs it (``python -m bayesmix ...``, wall time of the whole command: start-up, the start
search and compilation included):

(a) ``bayesmix baseline`` for the target;
(b) ``bayesmix fit`` for the target with an empty compilation cache (a first command);
(b') the same command again (the cache holds (b)'s programs: a second command);
(c) with ``--all-targets``: ``bayesmix fit`` of the 8 targets in one command;
(d) with ``--regmix``: issue 17's bar 5, the RegMix 1M training runs (512 runs, k = 17,
    Pile-CC loss, ``additive_fixed_nd``): the baseline and the fit, each a first
    command with its own empty cache, as (a) and (b).

Prints wall seconds, leapfrog steps a draw, bulk and tail ESS, ESS per 1000 gradient
evaluations (warmup and sampling, all chains) and the ratios (b)/(a), (b')/(a) and
(c)/(b). The cache is a temporary directory of this run (``BAYESMIX_JAX_CACHE``), so
(b) is cold whatever ran before. Machines here vary 2-5x from day to day: only ratios
within one run compare.

Usage::

    python bench/fit_speed.py [--laws additive,joint] [--targets book,github]
        [--all-targets] [--regmix] [--keep DIR]

``--laws ""`` with ``--regmix`` runs (d) alone.

Reads ``../shared/data/dmsl_slimpajama`` (and ``regmix``); exits 0 with a message when
it is absent.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _cli_runs import run_cli
from _paper import CLI_COLUMNS, DATA, TARGETS, TRAIN_WHERE


def fit_diagnostics(fit_dir: Path) -> dict:
    """Per target: the ``Diagnostics`` of a saved fit."""
    from bayesmix import load_fit

    return {target: tf.diagnostics for target, tf in load_fit(fit_dir).targets.items()}


def sampler_columns(d) -> str:
    """Steps a draw, bulk and tail ESS, ESS per 1000 gradients, max R-hat: the table's
    last five columns."""
    return (f"{d.mean_steps:7.0f}{d.min_ess_bulk:7.0f}{d.min_ess_tail:7.0f}"
            f"{d.ess_per_1000_gradients:12.2f}{d.max_rhat:7.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="additive,joint")
    parser.add_argument("--targets", default="book,github")
    parser.add_argument("--all-targets", action="store_true",
                        help="also fit the 8 targets in one command, (c)")
    parser.add_argument("--regmix", action="store_true",
                        help="also (d): the RegMix k = 17 fit against its baseline")
    parser.add_argument("--keep", default=None, help="keep fits here")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is absent (the paper's runs live in ../shared/data)")
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="fit_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    cache = tempfile.mkdtemp(prefix="fit_speed_cache_")
    env = {**os.environ, "BAYESMIX_JAX_CACHE": cache}
    runs = [DATA, *CLI_COLUMNS, "--where", TRAIN_WHERE]
    print(f"paper split (1534 rows), default settings; compilation cache {cache}")
    print(f"{'law':<9}{'target':<14}{'(a) base s':>11}{'(b) fit s':>10}{'(b2) warm s':>12}"
          f"{'b/a':>6}{'b2/a':>6}{'steps':>7}{'bulk':>7}{'tail':>7}{'ESS/1k grad':>12}"
          f"{'R-hat':>7}")
    for law in filter(None, args.laws.split(",")):  # --laws "": (d) alone
        for target in args.targets.split(","):
            base = run_cli("baseline", *runs, "--law", law, "--target", target,
                             "--out", work / f"{law}_{target}_baseline", env=env)
            cold = run_cli("fit", *runs, "--law", law, "--target", target,
                             "--out", work / f"{law}_{target}_fit", env=env)
            warm = run_cli("fit", *runs, "--law", law, "--target", target,
                             "--out", work / f"{law}_{target}_fit_again", env=env)
            d = fit_diagnostics(work / f"{law}_{target}_fit")[target]
            print(f"{law:<9}{target:<14}{base:11.1f}{cold:10.1f}{warm:12.1f}"
                  f"{cold / base:6.2f}{warm / base:6.2f}{sampler_columns(d)}", flush=True)
        if args.all_targets:
            wall = run_cli("fit", *runs, "--law", law, "--all-targets",
                             "--out", work / f"{law}_all_fit", env=env)
            rows = fit_diagnostics(work / f"{law}_all_fit")
            print(f"{law:<9}(c) all {len(TARGETS)} targets in one command: {wall:.1f} s "
                  f"(warm cache: {law}'s programs from (b)); (c)/(b) = {wall / cold:.2f}")
            for target, d in rows.items():
                print(f"{'':<9}{target:<14}{'':>39}{sampler_columns(d)}")
    if args.regmix:
        regmix_speed(work)
    print(f"\nfits in {work}" if args.keep else "")
    return 0


def regmix_speed(work: Path) -> None:
    """(d): baseline and fit of ``additive_fixed_nd`` to the RegMix 1M training runs."""
    from regmix import REGMIX, _canonical

    if not (REGMIX / "train_mixture_1m.csv").is_file():
        print(f"(d) skipped: {REGMIX} is absent")
        return
    runs = [_canonical("train_1m", "pile_cc", work), "--renormalize"]
    law = ["--law", "additive_fixed_nd", "--target", "pile_cc"]
    walls = {}
    for command in ("baseline", "fit"):
        env = {**os.environ, "BAYESMIX_JAX_CACHE": tempfile.mkdtemp(prefix="fit_speed_cache_")}
        walls[command] = run_cli(command, *runs, *law, "--out", work / f"regmix_{command}",
                                 env=env)
    d = fit_diagnostics(work / "regmix_fit")["pile_cc"]
    print(f"(d) RegMix 1M, 512 runs, k = 17, additive_fixed_nd, pile_cc: baseline "
          f"{walls['baseline']:.1f} s, fit {walls['fit']:.1f} s, fit/baseline "
          f"{walls['fit'] / walls['baseline']:.2f}; steps {d.mean_steps:.0f}, bulk / tail "
          f"ESS {d.min_ess_bulk:.0f} / {d.min_ess_tail:.0f}, ESS per 1000 gradients "
          f"{d.ess_per_1000_gradients:.2f}, R-hat {d.max_rhat:.3f}, "
          f"divergences {d.divergences}")


if __name__ == "__main__":
    raise SystemExit(main())
