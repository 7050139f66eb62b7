"""Mirror descent on the simplex, constraints, and decisions under the posterior."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from bayesmix import BayesmixError
from bayesmix.decision import (
    bayes_mixture,
    decide,
    expected_regret,
    mixture_bounds,
    objective_draws,
    optimal_mixture_draws,
    optimum_path,
    prob_better,
)
from bayesmix.laws import load_law
from bayesmix.model import Scales, TargetPosterior, law_params
from bayesmix.objective import mixture_objective, paired_draws
from bayesmix.simplex import frank_wolfe_gap, kl_projection, md_init, md_update, minimize_on_simplex
from bayesmix.simulate import draw_law_params

LAW = load_law("additive")
SCALES = Scales(n_ref=1.0e9, d_ref=2.0e10, loss_scale=3.0)
N, D = 2.0e9, 4.0e10


def _posteriors(seed: int, k: int, n_targets: int, n_draws: int, law=LAW):
    """Targets whose draws are independent prior draws of the law (k domains)."""
    domains = tuple(f"d{i}" for i in range(k))
    out = {}
    for t in range(n_targets):
        draws = []
        for s in range(n_draws):
            key = jax.random.fold_in(jax.random.key(seed), 1000 * t + s)
            sites = draw_law_params(key, law, k, SCALES.loss_scale, n_proposals=500)
            draws.append(law_params(law, k, SCALES.loss_scale, sites))
        params = {name: np.stack([np.asarray(d[name]) for d in draws]) for name in draws[0]}
        name = domains[t] if t < k else f"extra{t}"
        out[name] = TargetPosterior(law=law, target=name, domains=domains, scales=SCALES,
                                    params=params)
    return out


@pytest.fixture(scope="module")
def posteriors4():
    return _posteriors(0, 4, 3, 12)


def _slsqp(fun_and_grad, k, lower=None, upper=None):
    bounds = [(0.0 if lower is None else lower[i], 1.0 if upper is None else upper[i])
              for i in range(k)]
    start = kl_projection(jnp.zeros(k), lower, upper) if lower is not None else np.ones(k) / k
    res = scipy.optimize.minimize(
        fun_and_grad, np.asarray(start), jac=True, method="SLSQP", bounds=bounds,
        constraints=[{"type": "eq", "fun": lambda x: np.sum(x) - 1.0,
                      "jac": lambda x: np.ones_like(x)}],
        options={"ftol": 1e-14, "maxiter": 500})
    return res.x, fun_and_grad(res.x)[0]


# ------------------------------------------------------------------ simplex invariants


@pytest.mark.parametrize("bounded", [False, True])
def test_every_step_stays_on_the_feasible_set(bounded):
    rng = np.random.default_rng(0)
    k = 6
    lower = np.array([0.0, 0.05, 0.0, 0.1, 0.0, 0.0]) if bounded else None
    upper = np.array([0.3, 1.0, 0.2, 1.0, 0.5, 1.0]) if bounded else None
    state = md_init(jnp.asarray(rng.dirichlet(np.ones(k))), lower, upper)
    for step in range(200):
        grad = jnp.asarray(rng.normal(size=k) * 10.0 ** rng.uniform(-3, 4))
        state = md_update(grad, state, 10.0 ** rng.uniform(-2, 2), lower, upper)
        h = np.asarray(state.h)
        assert np.all(np.isfinite(h)) and np.all(h >= 0), (step, h)
        assert abs(h.sum() - 1.0) < 1e-12, (step, h.sum())
        if bounded:
            assert np.all(h >= lower - 1e-15) and np.all(h <= upper + 1e-15), (step, h)
    assert int(state.count) == 200


def test_kl_projection_matches_a_generic_solver():
    rng = np.random.default_rng(1)
    project = jax.jit(kl_projection)
    for k in (4, 7, 4, 7, 4, 7, 4, 7):
        y = rng.dirichlet(np.ones(k) * 0.5) + 1e-12
        lower = rng.uniform(0, 0.8 / k, size=k) * (rng.uniform(size=k) < 0.5)
        upper = np.maximum(lower, rng.uniform(1.2 / k, 1.0, size=k))
        h = np.asarray(project(jnp.log(jnp.asarray(y)), lower, upper))

        def kl(x, y=y):
            x = np.clip(x, 1e-300, None)
            return float(np.sum(x * np.log(x / y))), np.log(x / y) + 1.0

        x, _ = _slsqp(kl, k, lower, upper)
        np.testing.assert_allclose(h, x, atol=1e-6)
        assert abs(h.sum() - 1) < 1e-12
    # without bounds it is plain renormalisation, even for huge log-values
    log_y = jnp.array([1000.0, 999.0, -jnp.inf, -1000.0])
    np.testing.assert_allclose(kl_projection(log_y), jax.nn.softmax(log_y))
    np.testing.assert_allclose(kl_projection(log_y, 0.0, 1.0), jax.nn.softmax(log_y),
                               atol=1e-15)


def test_frank_wolfe_gap_is_the_linear_programme():
    rng = np.random.default_rng(2)
    for _ in range(10):
        k = 5
        g = rng.normal(size=k)
        lower = np.full(k, 0.05)
        upper = rng.uniform(0.2, 0.6, size=k)
        h = np.asarray(kl_projection(jnp.asarray(rng.normal(size=k)), lower, upper))
        lp = scipy.optimize.linprog(g, A_eq=np.ones((1, k)), b_eq=[1.0],
                                    bounds=list(zip(lower, upper, strict=True)))
        expected = g @ h - lp.fun
        assert float(frank_wolfe_gap(jnp.asarray(g), jnp.asarray(h), lower, upper)) == (
            pytest.approx(expected, abs=1e-10))
    g = rng.normal(size=4)
    h = rng.dirichlet(np.ones(4))
    assert float(frank_wolfe_gap(g, h)) == pytest.approx(g @ h - g.min())


def test_minimize_on_simplex_quadratic_and_constrained():
    target = jnp.array([0.2, 0.3, 0.5])
    res = minimize_on_simplex(lambda h: jnp.sum((h - target) ** 2), jnp.ones(3) / 3)
    assert bool(res.converged)
    np.testing.assert_allclose(res.h, target, atol=1e-6)
    capped = minimize_on_simplex(lambda h: jnp.sum((h - target) ** 2), jnp.ones(3) / 3,
                                 upper=jnp.array([1.0, 1.0, 0.4]))
    np.testing.assert_allclose(capped.h, [0.25, 0.35, 0.4], atol=1e-6)


# ------------------------------------------------------------------ the objective


def test_paired_draws_truncate_and_broadcast(posteriors4):
    short = posteriors4["d0"]
    short = TargetPosterior(law=LAW, target="d0", domains=short.domains, scales=SCALES,
                            params={n: v[:5] for n, v in short.params.items()})
    point = posteriors4["d1"]
    point = TargetPosterior(law=LAW, target="d1", domains=point.domains, scales=SCALES,
                            params={n: v[:1] for n, v in point.params.items()})
    paired = paired_draws({"d0": short, "d1": point, "d2": posteriors4["d2"]})
    assert {v["gamma"].shape[0] for v in paired.values()} == {5}
    np.testing.assert_array_equal(paired["d1"]["gamma"][3], point.params["gamma"][0])
    np.testing.assert_array_equal(paired["d2"]["gamma"], posteriors4["d2"].params["gamma"][:5])


def test_objective_goes_through_the_law_mean(posteriors4):
    from bayesmix.predict import predict_draws

    weights = {"d0": 0.5, "d1": 0.2, "d2": 0.3}
    objective = mixture_objective(posteriors4, weights)
    h = np.array([0.1, 0.2, 0.3, 0.4])
    expected = sum(w * predict_draws(posteriors4[t], [N], [D], h[None])[:, 0]
                   for t, w in weights.items())
    np.testing.assert_allclose(objective_draws(objective, N, D, h), expected, rtol=1e-12)


def test_gradient_matches_finite_differences(posteriors4):
    objective = mixture_objective(posteriors4)
    params = objective.draw(3)
    fun = jax.jit(lambda h: objective(h, params, N, D))
    grad = np.asarray(jax.grad(lambda h: objective(h, params, N, D))(jnp.array(
        [0.15, 0.25, 0.35, 0.25])))
    h = np.array([0.15, 0.25, 0.35, 0.25])
    step = 1e-6
    for i in range(4):
        e = np.zeros(4)
        e[i] = step
        fd = (float(fun(jnp.asarray(h + e))) - float(fun(jnp.asarray(h - e)))) / (2 * step)
        assert grad[i] == pytest.approx(fd, rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------ optima


def test_known_two_domain_optimum_on_a_fine_grid():
    params = {"a": np.array([-2.0]), "alpha": np.array([0.3]), "b": np.array([-1.5]),
              "beta": np.array([0.3]), "m": -np.logaddexp([0.4], [-0.3]),
              "u": np.array([[0.4, -0.3]]),
              "gamma": np.array([[0.35, 0.8]]), "E": np.array([1.9])}
    post = TargetPosterior(law=LAW, target="x", domains=("p", "q"), scales=SCALES,
                           params=params)
    objective = mixture_objective({"x": post})
    grid = np.linspace(1e-6, 1 - 1e-6, 200_001)
    values = objective_draws(objective, N, D, np.stack([grid, 1 - grid], axis=1))[:, 0]
    best = grid[np.argmin(values)]
    result = optimal_mixture_draws(objective, N, D)
    assert bool(result.converged[0])
    assert float(result.h[0, 0]) == pytest.approx(best, abs=2e-5)
    assert float(result.value[0]) <= values.min() + 1e-12
    # and the grid has a genuinely interior optimum (not a boundary case)
    assert 0.05 < best < 0.95


def test_vmap_over_draws_equals_a_python_loop(posteriors4):
    objective = mixture_objective(posteriors4)
    batched = optimal_mixture_draws(objective, N, D)
    h0 = jnp.full((4,), 0.25)
    one = jax.jit(lambda p: minimize_on_simplex(lambda h: objective(h, p, N, D), h0,
                                                tol=1e-9, max_iter=3000))
    for s in range(objective.n_draws):
        single = one(objective.draw(s))
        np.testing.assert_allclose(batched.h[s], single.h, atol=1e-12)
        assert float(batched.value[s]) == pytest.approx(float(single.value), rel=1e-14)
    assert bool(np.all(batched.converged))


@pytest.mark.parametrize("k", [3, 5, 7])
def test_agrees_with_slsqp_on_random_laws(k):
    posts = _posteriors(10 + k, k, 3, 4)
    objective = mixture_objective(posts, {t: w for t, w in zip(posts, (0.5, 0.3, 0.2),
                                                                 strict=True)})
    result = optimal_mixture_draws(objective, N, D)
    value_and_grad = jax.jit(jax.value_and_grad(lambda h, p: objective(h, p, N, D)))
    for s in range(objective.n_draws):
        params = objective.draw(s)

        def fun(x, params=params):
            v, g = value_and_grad(jnp.asarray(x), params)
            return float(v), np.asarray(g)

        _, best = _slsqp(fun, k)
        assert float(result.value[s]) <= best * (1 + 1e-7), (s, float(result.value[s]), best)
        assert np.all(np.asarray(result.h[s]) >= 0)
        assert abs(float(result.h[s].sum()) - 1) < 1e-12


# ------------------------------------------------------------------ constraints


def test_constraints_hold_and_match_slsqp(posteriors4):
    domains = posteriors4["d0"].domains
    objective = mixture_objective(posteriors4)
    free = optimal_mixture_draws(objective, N, D)
    favourite = int(np.argmax(np.median(np.asarray(free.h), axis=0)))
    cap = float(np.quantile(np.asarray(free.h)[:, favourite], 0.1)) * 0.8
    tokens = {domains[favourite]: cap * D / 2.0}  # two epochs of these tokens allow `cap`
    lower, upper = mixture_bounds(domains, min_weight=0.05, max_weight={domains[0]: 0.6},
                                  tokens=tokens, max_epochs=2.0, n_tokens=D)
    assert upper[favourite] == pytest.approx(cap)
    result = optimal_mixture_draws(objective, N, D, lower=lower, upper=upper)
    h = np.asarray(result.h)
    assert np.all(h >= 0.05 - 1e-12) and np.all(h <= upper + 1e-12)
    np.testing.assert_allclose(h.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(h[:, favourite] * D <= 2.0 * tokens[domains[favourite]] * (1 + 1e-12))
    assert np.mean(np.isclose(h[:, favourite], cap)) > 0.8  # the token limit binds
    value_and_grad = jax.jit(jax.value_and_grad(lambda x, p: objective(x, p, N, D)))
    for s in range(4):
        params = objective.draw(s)

        def fun(x, params=params):
            v, g = value_and_grad(jnp.asarray(x), params)
            return float(v), np.asarray(g)

        _, best = _slsqp(fun, 4, lower, upper)
        assert float(result.value[s]) <= best * (1 + 1e-7)


@pytest.mark.parametrize("kwargs, message", [
    ({"min_weight": 0.3}, "minimum weights sum"),
    ({"max_weight": 0.2}, "maximum weights sum"),
    ({"min_weight": {"a": 0.5}, "max_weight": {"a": 0.4}}, "exceeds maximum"),
    ({"tokens": {"a": 1e9, "b": 1e9, "c": 1e9, "d": 1e9}, "n_tokens": 1e10},
     "not enough data"),
    ({"min_weight": {"zzz": 0.1}}, "unknown domain"),
    ({"max_epochs": 2.0}, "needs tokens"),
    ({"min_weight": -0.1}, ">= 0"),
])
def test_infeasible_constraints_are_refused(kwargs, message):
    with pytest.raises(BayesmixError, match=message) as info:
        mixture_bounds(("a", "b", "c", "d"), **kwargs)
    assert "\n" not in str(info.value)


def test_feasible_constraints_and_epochs():
    lower, upper = mixture_bounds(("a", "b"), tokens={"a": 1e9}, max_epochs=4.0, n_tokens=1e10)
    np.testing.assert_allclose(upper, [0.4, 1.0])
    np.testing.assert_allclose(lower, [0.0, 0.0])


# ------------------------------------------------------------------ decisions


def test_decisions_and_negative_control(posteriors4):
    domains = posteriors4["d0"].domains
    objective = mixture_objective(posteriors4)
    draws = optimal_mixture_draws(objective, N, D)
    bayes = bayes_mixture(objective, N, D)
    assert bool(bayes.converged)
    values_bayes = objective_draws(objective, N, D, bayes.h)
    # h_bayes minimises the posterior mean: no mixture (draws' optima, uniform) does better
    candidates = np.concatenate([np.asarray(draws.h), np.full((1, 4), 0.25)])
    assert values_bayes.mean() <= objective_draws(objective, N, D, candidates).mean(
        axis=1).min() + 1e-12
    # negative control: against itself P(better) is 0.5, not > 0.9
    assert prob_better(values_bayes, values_bayes) == 0.5
    # positive control: a nearly-pure mixture of the least useful domain is beaten
    worst = int(np.argmin(np.asarray(bayes.h)))
    bad = np.full(4, 0.01)
    bad[worst] = 0.97
    assert prob_better(values_bayes, objective_draws(objective, N, D, bad)) > 0.9
    regret_bayes = expected_regret(objective, N, D, bayes.h, draws.value)
    regret_bad = expected_regret(objective, N, D, bad, draws.value)
    assert 0 <= regret_bayes < regret_bad

    baseline = {t: TargetPosterior(law=LAW, target=t, domains=domains, scales=SCALES,
                                   params={n: v[:1] for n, v in p.params.items()})
                for t, p in posteriors4.items()}
    report = decide(posteriors4, N, D, references={"uniform": np.full(4, 0.25), "bad": bad},
                    baseline=baseline)
    out = json.loads(json.dumps(report.to_dict()))
    assert set(out["h_star"]) == set(domains)
    assert set(out["h_star"]["d0"]) == {"mean", "median", "q05", "q95"}
    assert sum(out["h_bayes"].values()) == pytest.approx(1.0)
    assert set(out["objective"]) == {"h_bayes", "baseline_h_star", "uniform", "bad"}
    assert out["objective"]["h_bayes"]["p_h_bayes_better"] == 0.5
    assert out["objective"]["bad"]["p_h_bayes_better"] > 0.9
    # the baseline's h* is the optimum of draw 0 (the point fit)
    np.testing.assert_allclose(report.mixtures["baseline_h_star"], draws.h[0], atol=1e-5)


def test_optimum_path_moves_only_for_scale_dependent_laws():
    joint = load_law("joint")
    posts = _posteriors(3, 3, 2, 3, law=joint)
    additive = _posteriors(3, 3, 2, 3)
    grid_n = [1e8, 1e10]
    grid_d = [2e9, 2e11]
    path_joint = optimum_path(mixture_objective(posts), grid_n, grid_d)
    path_add = optimum_path(mixture_objective(additive), grid_n, grid_d)
    assert [p["N"] for p in path_joint] == grid_n

    def moved(path):
        return max(abs(path[0]["h_bayes"][d] - path[1]["h_bayes"][d]) for d in ("d0", "d1"))

    assert moved(path_add) < 1e-5
    assert moved(path_joint) > 1e-3


def test_weights_and_domains_are_checked(posteriors4):
    with pytest.raises(BayesmixError, match="no fit provides"):
        mixture_objective(posteriors4, {"nope": 1.0})
    with pytest.raises(BayesmixError, match="all target weights are zero"):
        mixture_objective(posteriors4, {"d0": 0.0})
    other = TargetPosterior(law=LAW, target="x", domains=("a", "b", "c", "d"), scales=SCALES,
                            params=posteriors4["d0"].params)
    with pytest.raises(BayesmixError, match="refit on the same run table"):
        mixture_objective({"d0": posteriors4["d0"], "x": other})


# ------------------------------------------------------------------ CLI


def test_cli_optimize(posteriors4, tmp_path, monkeypatch, capsys):
    import bayesmix.commands.optimize
    from bayesmix.cli import main

    domains = posteriors4["d0"].domains
    monkeypatch.setattr(bayesmix.commands.optimize, "_load_posteriors",
                        lambda path: {t: p for t, p in posteriors4.items()
                                      if t == str(path).rsplit("/", 1)[-1]})
    reference = tmp_path / "mixes.csv"
    reference.write_text("name," + ",".join(f"h_{d}" for d in domains)
                         + "\nskewed,0.7,0.1,0.1,0.1\n")
    fits = [str(tmp_path / t) for t in posteriors4]
    status = main(["optimize", *fits, "--N", "2e9", "--D", "4e10", "--weights", "d0=1,d1=1",
                   "--min-weight", "0.02", "--max-weight", "d2=0.3",
                   "--tokens", ",".join(f"{d}=2e10" for d in domains), "--max-epochs", "2",
                   "--reference", "uniform", "--reference", "natural",
                   "--reference", str(reference), "--json"])
    assert status == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["objective"]) == {"h_bayes", "uniform", "natural", "skewed"}
    assert out["target_weights"] == {"d0": 1.0, "d1": 1.0}
    assert out["h_bayes"]["d2"] <= 0.3 + 1e-12
    assert min(out["h_bayes"].values()) >= 0.02 - 1e-12
    assert out["optimizer"]["fraction_converged"] > 0.9
    status = main(["optimize", *fits, "--N", "2e9", "--D", "4e10", "--out",
                   str(tmp_path / "opt"), "--path-flops", "1e19,1e21"])
    assert status == 0
    saved = json.loads((tmp_path / "opt" / "optimum.json").read_text())
    assert set(saved) >= {"h_star", "h_bayes", "objective", "path"}
    assert [p["N"] * p["D"] * 6 for p in saved["path"]] == pytest.approx([1e19, 1e21])
    assert (tmp_path / "opt" / "h_star_draws.csv").is_file()
    status = main(["optimize", *fits, "--N", "2e9", "--D", "4e10", "--min-weight", "0.5",
                   "--json"])
    assert status == 2
    assert "minimum weights sum" in capsys.readouterr().err
