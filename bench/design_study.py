"""Which run next, measured: `suggest` against random runs and the paper's grid (issue 19).

A simulated world whose truth is the joint law (eq. 5), ``k`` domains, the first two
domains' losses as the targets (equal weights), the decision at ``(N*, D*) = (7e9,
1.5e11)``. Each seed draws the truth's parameters from the joint law's prior (a
different world per seed; see docs/design.md for why not one fixed parameter set) and
starts from 4 small runs (50M and 100M parameters, the uniform mixture and one random
mixture, checkpoints at 1-32 tokens per parameter). Then, for each strategy, ``steps``
times: spend at most one step's FLOP budget (the cost of one run of the largest start
size to 32 tokens per parameter, 6 N D) on new runs, refit the joint law (NUTS; a
step's refits, one a strategy, run together as jobs: in worker processes with
``--workers``, on a Dask cluster with ``--scheduler``, the same draws either way), and
record the true regret of ``h_bayes`` at ``(N*, D*)``: the true objective at the
chosen mixture minus the true optimum, relative to the true optimum.

Strategies, all choosing from the same kind of candidate runs (the sizes run so far and
one size up, their token counts, mixtures over the simplex):

- ``suggest``: :func:`bayesmix.suggest_runs` with the step budget, a batch of up to 32
  (the budget binds first), and no stop rule (threshold 0: the study compares which runs
  each strategy buys; whether the stop rule would have stopped too early is read from
  the expected regret recorded beside the true one);
- ``random``: candidate runs in random order, as many as the budget takes;
- ``grid``: the paper's design, a fixed list of (size, mixture) runs trained to 32
  tokens per parameter, smallest sizes first, as many as the budget takes.

Usage::

    python bench/design_study.py [--k 4] [--seeds 0,1,2] [--steps 4] [--out DIR]
        [--workers N | --scheduler ADDRESS]
    python bench/design_study.py --summary-only DIR1/design_study.csv DIR2/... --out DIR

Prints, per strategy and seed, the FLOPs added and the relative regret after each
step, and the FLOPs each strategy needed to bring the regret below 0.1 % (median over
seeds); for ``suggest``, the expected regret its posterior claimed before the step and
expected after the batch, beside the true regret the refit then reached (the check of
the value estimate against refits); writes ``DIR/design_study.csv`` and
``DIR/design_study.png``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TARGET = (7e9, 1.5e11)
RATIOS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
START_SIZES = (5e7, 1e8)
BAR = 1e-3
FIT = {"chains": 2, "warmup": 300, "draws": 500}


class World:
    """The truth: the joint law's parameters per target at fixed reference scales."""

    def __init__(self, key: jax.Array, k: int):
        from bayesmix import Scales, load_law
        from bayesmix.model import law_params
        from bayesmix.simulate import draw_law_params

        self.law, self.k = load_law("joint"), k
        self.domains = tuple(f"d{i}" for i in range(k))
        self.targets = self.domains[:2]
        self.scales = Scales(n_ref=1e8, d_ref=1e9, loss_scale=3.0)
        self.params = {t: law_params(self.law, k, 3.0, draw_law_params(
            jax.random.fold_in(key, i), self.law, k, 3.0)) for i, t in enumerate(self.targets)}

    def posteriors(self):
        from bayesmix import TargetPosterior

        return {t: TargetPosterior(self.law, t, self.domains, self.scales,
                                   {n: np.asarray(v, float)[None] for n, v in p.items()})
                for t, p in self.params.items()}

    def losses(self, key: jax.Array, n, d, h, noise: float = 0.003) -> dict[str, np.ndarray]:
        from bayesmix.model import centred_inputs

        out = {}
        for i, (t, p) in enumerate(self.params.items()):
            log_n, log_d, x = centred_inputs(self.law, self.scales, n, d, h,
                                             self.domains.index(t))
            mean = np.asarray(self.law.mean(p, log_n, log_d, x))
            eps = np.asarray(jax.random.normal(jax.random.fold_in(key, i), mean.shape))
            out[t] = mean * np.exp(noise * eps)
        return out

    def regret(self, mixture: np.ndarray) -> float:
        """The true objective at ``mixture`` over the true optimum, minus one."""
        from bayesmix.decision import bayes_mixture, objective_draws
        from bayesmix.objective import mixture_objective

        objective = mixture_objective(self.posteriors())
        best = float(np.asarray(bayes_mixture(objective, *TARGET).value))
        return float(objective_draws(objective, *TARGET, mixture)[0]) / best - 1.0


def run_rows(world: World, key: jax.Array, runs: list[tuple[float, float, np.ndarray]],
             first_id: int) -> pd.DataFrame:
    """The checkpoints of ``runs`` (N, D, h) with their simulated losses."""
    from bayesmix.candidates import checkpoint_tokens

    train_n = np.repeat(START_SIZES, len(RATIOS))
    train_d = train_n * np.tile(RATIOS, len(START_SIZES))
    rows = []
    for j, (n, d, h) in enumerate(runs):
        for tokens in checkpoint_tokens(train_n, train_d, n, d):
            rows.append({"run": f"r{first_id + j}", "N": n, "D": tokens,
                         **{f"h_{x}": w for x, w in zip(world.domains, h, strict=True)}})
    frame = pd.DataFrame(rows)
    h = frame[[f"h_{x}" for x in world.domains]].to_numpy(float)
    for t, loss in world.losses(key, frame["N"], frame["D"], h).items():
        frame[f"loss_{t}"] = loss
    return frame


def refit_all(world: World, pending: dict[str, tuple[jax.Array, pd.DataFrame]],
              workers: int, scheduler: str | None) -> dict[str, tuple]:
    """Each named fit of the joint law to its runs, ``{name: (key, frame)}``, as a job
    (:func:`bayesmix.jobs.run_jobs`): in this process, in worker processes or on a Dask
    cluster, the same draws as :func:`bayesmix.fit` with the same key. Returns
    ``{name: (table, fit)}``."""
    from bayesmix import load_runs
    from bayesmix.jobs import JobFailure, fit_job, run_jobs

    tables = {name: load_runs(frame.reset_index(drop=True), name="design study")
              for name, (_, frame) in pending.items()}
    jobs = [fit_job(name, key, world.law, tables[name], list(world.targets), **FIT)
            for name, (key, _) in pending.items()]
    out = run_jobs(jobs, dict.fromkeys(pending, world.law), workers=workers,
                   scheduler=scheduler)
    failed = [str(r) for r in out.values() if isinstance(r, JobFailure)]
    if failed:
        raise SystemExit("design study: a refit failed: " + "; ".join(failed))
    return {name: (tables[name], out[name]) for name in pending}


def strategy_runs(name: str, key: jax.Array, world: World, table, result, budget: float,
                  grid: list, used_grid: int):
    """The runs a strategy adds this step, and how far down the grid it got (for
    ``suggest``: what it expects, the relative expected regret before and after)."""
    from bayesmix import DesignSettings, candidate_runs, suggest_runs

    n, d = table.frame["N"].to_numpy(), table.frame["D"].to_numpy()
    if name == "suggest":
        s = suggest_runs(key, result.posteriors, *TARGET, train_n=n, train_d=d, batch=32,
                         budget=budget, likelihood_weights={
                             t: f.likelihood_weight for t, f in result.targets.items()},
                         settings=DesignSettings(threshold=0.0))
        c = s.candidates
        claims = {"expected_before": s.expected_regret / s.predicted_objective,
                  "expected_after": (s.expected_regret - s.batch_gain)
                  / s.predicted_objective}
        return [(c.n_params[i], c.n_tokens[i], c.weights[i]) for i in s.chosen], used_grid, \
            claims
    if name == "random":
        c = candidate_runs(key, world.domains, n, d, n_random=40)
        order = np.asarray(jax.random.permutation(key, len(c)))
        runs, left = [], budget
        for i in order:
            if c.cost[i] <= left:
                runs.append((c.n_params[i], c.n_tokens[i], c.weights[i]))
                left -= c.cost[i]
        return runs, used_grid, {}
    runs, left = [], budget
    while used_grid < len(grid) and 6 * grid[used_grid][0] * grid[used_grid][1] <= left:
        runs.append(grid[used_grid])
        left -= 6 * grid[used_grid][0] * grid[used_grid][1]
        used_grid += 1
    return runs, used_grid, {}


def study(seed: int, k: int, steps: int,
          strategies: tuple[str, ...] = ("suggest", "random", "grid"), *,
          workers: int = 1, scheduler: str | None = None) -> list[dict]:
    """One seed's records. Each step the strategies choose their runs here, one after
    the other, then their refits run together as jobs (``workers``, ``scheduler``);
    the keys come from the seed, step and strategy, so the records are the same
    whichever way the refits ran."""
    from bayesmix import decide
    from bayesmix.simulate import simplex_grid_mixtures

    key = jax.random.key(seed)
    world = World(jax.random.fold_in(key, 1), k)
    start_mixtures = simplex_grid_mixtures(jax.random.fold_in(key, 2), k, 2)
    start = [(n, 32 * n, h) for n in START_SIZES for h in start_mixtures]
    frame0 = run_rows(world, jax.random.fold_in(key, 3), start, 0)
    budget = 6 * START_SIZES[-1] * 32 * START_SIZES[-1]
    grid_mixtures = simplex_grid_mixtures(jax.random.fold_in(key, 4), k, 12)
    grid = [(n, 32 * n, h) for n in (5e7, 1e8, 2e8) for h in grid_mixtures[1:]]
    table, result = refit_all(world, {"start": (jax.random.fold_in(key, 5), frame0)},
                              workers, scheduler)["start"]
    regret0 = world.regret(decide(result.posteriors, *TARGET).h_bayes)
    # per strategy: its run table, fit, FLOPs spent and how far down the grid it got
    state = {name: (frame0, table, result, 0.0, 0) for name in strategies}
    records = [{"seed": seed, "k": k, "strategy": name, "step": 0, "flops": 0.0,
                "regret": regret0, "runs": len(start), "converged": True, "seconds": 0.0}
               for name in strategies]
    for step in range(1, steps + 1):
        chosen, pending, seconds = {}, {}, {}
        for name in strategies:
            t0 = time.perf_counter()
            frame, tbl, fitted, flops, used = state[name]
            step_key = jax.random.fold_in(jax.random.fold_in(key, 100 + step),
                                          ("suggest", "random", "grid").index(name))
            runs, used, claims = strategy_runs(name, step_key, world, tbl, fitted, budget,
                                               grid, used)
            if runs:
                new = run_rows(world, jax.random.fold_in(step_key, 7), runs, len(frame))
                frame = pd.concat([frame, new], ignore_index=True)
                flops += sum(6 * n * d for n, d, _ in runs)
                pending[name] = (jax.random.fold_in(step_key, 8), frame)
            chosen[name] = (len(runs), claims)
            state[name] = (frame, tbl, fitted, flops, used)
            seconds[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        refitted = refit_all(world, pending, workers, scheduler) if pending else {}
        refit_seconds = time.perf_counter() - t0
        for name in strategies:
            frame, tbl, fitted, flops, used = state[name]
            if name in refitted:
                tbl, fitted = refitted[name]
                state[name] = (frame, tbl, fitted, flops, used)
            regret = world.regret(decide(fitted.posteriors, *TARGET).h_bayes)
            n_runs, claims = chosen[name]
            records.append({"seed": seed, "k": k, "strategy": name, "step": step,
                            "flops": flops, "regret": regret,
                            "runs": frame["run"].nunique(),
                            "converged": not fitted.warnings,
                            "seconds": seconds[name], "refit_seconds": refit_seconds,
                            **claims})
            print(f"seed {seed} k {k} {name:7s} step {step}: +{n_runs} runs, "
                  f"{flops:.3g} FLOPs, regret {100 * regret:.3f} %, "
                  f"{'converged' if not fitted.warnings else 'NOT converged'}, "
                  f"{seconds[name]:.0f} s choosing (the step's refits: "
                  f"{refit_seconds:.0f} s)", flush=True)
    return records


def flops_to_bar(frame: pd.DataFrame) -> pd.DataFrame:
    """Per seed and strategy: FLOPs at the first step whose regret is below the bar
    (``flops_to_bar``), and from which it stays below to the last step (``flops_to_stay``;
    a refit's regret can rise again, so the first crossing can be luck)."""
    rows = []
    for (seed, k, name), g in frame.groupby(["seed", "k", "strategy"]):
        g = g.sort_values("step")
        below = (g["regret"] < BAR).to_numpy()
        stays = np.flatnonzero(np.logical_and.accumulate(below[::-1])[::-1])
        rows.append({"seed": seed, "k": k, "strategy": name,
                     "flops_to_bar": float(g["flops"][below].min()) if below.any() else np.inf,
                     "flops_to_stay": float(g["flops"].iloc[stays[0]]) if stays.size
                     else np.inf})
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, out: Path) -> None:
    """Print the tables and write the plot of a study's records."""
    summary = flops_to_bar(frame)
    for column, what in (("flops_to_bar", "first bring"), ("flops_to_stay", "keep")):
        print(f"\nFLOPs added that {what} the true regret below 0.1 % (inf: not within "
              f"the steps)")
        print(summary.pivot(index=["k", "seed"], columns="strategy", values=column)
              .to_string())
        print("median over seeds:")
        print(summary.groupby(["k", "strategy"])[column].median().unstack().to_string())
    claimed = frame.dropna(subset=["expected_after"]) if "expected_after" in frame else None
    if claimed is not None and len(claimed):
        print("\nsuggest: what the posterior expected against the true regret (%), per step")
        print((100 * claimed.set_index(["k", "seed", "step"])[
            ["expected_before", "expected_after", "regret"]]).round(3).to_string())
    print("\nmedian relative regret (%) after each step:")
    print((100 * frame.groupby(["k", "strategy", "step"])["regret"].median()).unstack()
          .round(3).to_string())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (k, name), g in frame.groupby(["k", "strategy"]):
        med = g.groupby("step")[["flops", "regret"]].median()
        ax.plot(med["flops"], 100 * med["regret"], marker="o", label=f"{name}, k = {k}")
    ax.axhline(100 * BAR, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("FLOPs added (median over seeds)")
    ax.set_ylabel("true regret of h_bayes (% of the optimum)")
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "design_study.png", dpi=120)
    print(f"\nwrote {out / 'design_study.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default="bench/out/design_study")
    parser.add_argument("--strategies", default="suggest,random,grid",
                        help="which strategies to run (each is seeded on its own, so their "
                             "records from separate runs combine)")
    parser.add_argument("--workers", type=int, default=1,
                        help="run each step's refits (one a strategy) in N worker "
                             "processes (the same records as one after the other)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run each step's refits on the Dask cluster at ADDRESS")
    parser.add_argument("--summary-only", nargs="+", default=None, metavar="CSV",
                        help="summarise the records of earlier runs (their design_study.csv) "
                             "instead of running")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        summarise(pd.concat([pd.read_csv(p) for p in args.summary_only], ignore_index=True),
                  out)
        return
    jax.config.update("jax_enable_x64", True)
    from bayesmix import use_compilation_cache

    use_compilation_cache()
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        records += study(seed, args.k, args.steps, tuple(args.strategies.split(",")),
                         workers=args.workers, scheduler=args.scheduler)
        pd.DataFrame(records).to_csv(out / "design_study.csv", index=False)
    summarise(pd.DataFrame(records), out)


if __name__ == "__main__":
    main()
