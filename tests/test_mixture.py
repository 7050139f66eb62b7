"""Mirror descent on the simplex, constraints, and decisions under the posterior."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from bayesmix import BayesmixError
from bayesmix.bounds import mixture_bounds
from bayesmix.decision import (
    bayes_mixture,
    decide,
    expected_regret,
    objective_draws,
    optimal_mixture_draws,
    prob_better,
)
from bayesmix.laws import load_law
from bayesmix.model import Scales, TargetPosterior, law_params
from bayesmix.objective import mixture_objective, paired_draws
from bayesmix.path import optimum_path
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


def _slsqp(fun_and_grad, k, lower=None, upper=None, start=None):
    bounds = [(0.0 if lower is None else lower[i], 1.0 if upper is None else upper[i])
              for i in range(k)]
    if start is None:
        start = (kl_projection(jnp.zeros(k), lower, upper) if lower is not None
                 else np.ones(k) / k)
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


def test_simplex_knows_nothing_of_laws():
    """``bayesmix.simplex`` imports from bayesmix at most ``_errors`` (read from its source:
    importing it runs ``bayesmix/__init__``, which loads everything)."""
    import ast
    from pathlib import Path

    import bayesmix.simplex

    tree = ast.parse(Path(bayesmix.simplex.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    ours = {name for name in imported if name and name.split(".")[0] == "bayesmix"}
    assert ours <= {"bayesmix._errors"}, ours
    assert {name.split(".")[0] for name in imported} <= {"__future__", "collections", "functools",
                                                         "typing", "jax", "bayesmix"}


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


class _DoubleWell:
    """A non-convex objective on two domains: minima near ``h_0 = 0.3`` (local) and
    ``0.9`` (global, by the tilt ``0.01 * p``), the barrier near 0.6."""

    k = 2

    def __call__(self, h, p, n_params, n_tokens):
        x = h[0]
        return (x - 0.3) ** 2 * (x - 0.9) ** 2 - 0.01 * p * x

    def __hash__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, _DoubleWell)


def test_a_non_convex_objective_gets_its_global_minimum():
    from bayesmix.decision import _solve_draws, _solve_mean

    params = jnp.array([1.0, 2.0])
    options = {"tol": 1e-9, "max_iter": 3000}
    result = _solve_draws(_DoubleWell(), params, 1.0, 1.0, None, None, **options)
    grid = np.linspace(0, 1, 100_001)
    for s, p in enumerate(np.asarray(params)):
        values = (grid - 0.3) ** 2 * (grid - 0.9) ** 2 - 0.01 * p * grid
        assert float(result.h[s, 0]) == pytest.approx(grid[np.argmin(values)], abs=1e-3)
    mean = _solve_mean(_DoubleWell(), params, 1.0, 1.0, None, None, **options)
    assert float(mean.h[0]) > 0.85
    # negative control: one descent from the uniform mixture ends in the local minimum
    one = minimize_on_simplex(lambda h: _DoubleWell()(h, 1.0, 1.0, 1.0), jnp.full(2, 0.5),
                              **options)
    assert bool(one.converged) and float(one.h[0]) == pytest.approx(0.3, abs=0.02)


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
    ({"max_weight": {"b": 15.0}}, "shares of 1, got above 1: max b 15"),
    ({"min_weight": 1.5}, "shares of 1"),
])
def test_infeasible_constraints_are_refused(kwargs, message):
    with pytest.raises(BayesmixError, match=message) as info:
        mixture_bounds(("a", "b", "c", "d"), **kwargs)
    assert "\n" not in str(info.value)
    assert "--" not in str(info.value)  # the library names arguments, not CLI flags


def test_feasible_constraints_and_epochs():
    lower, upper = mixture_bounds(("a", "b"), tokens={"a": 1e9}, max_epochs=4.0, n_tokens=1e10)
    np.testing.assert_allclose(upper, [0.4, 1.0])
    np.testing.assert_allclose(lower, [0.0, 0.0])


# ------------------------------------------------------------------ decisions


def _additive_by_hand(params, h, n_params=N, n_tokens=D):
    """The additive law written out in NumPy (independent of ``law.mean``): ``(S, m)``."""
    h = np.atleast_2d(np.asarray(h, float))
    k = h.shape[1]
    shares = np.exp(params["u"]) / np.exp(params["u"]).sum(axis=1, keepdims=True)
    mixture = np.sum(shares[:, None, :] * (k * h[None]) ** params["gamma"][:, None, :], axis=2)
    n_term = np.exp(params["a"] - params["alpha"] * np.log(n_params / SCALES.n_ref))
    d_term = np.exp(params["b"] - params["beta"] * np.log(n_tokens / SCALES.d_ref))
    return (params["E"] + n_term + d_term)[:, None] + np.exp(params["m"])[:, None] / mixture


def test_decisions_and_regret(posteriors4):
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
    # positive control: a nearly-pure mixture of the least useful domain is beaten
    worst = int(np.argmin(np.asarray(bayes.h)))
    bad = np.full(4, 0.01)
    bad[worst] = 0.97
    assert prob_better(values_bayes, objective_draws(objective, N, D, bad)) > 0.9

    # expected regret against an independent computation: each draw's objective by
    # hand (NumPy, not the law's mean), each draw's minimum by SLSQP (not mirror descent)
    weights = objective.target_weights
    value_and_grad = jax.jit(jax.value_and_grad(lambda x, p: objective(x, p, N, D)))
    minima = []
    for s in range(objective.n_draws):
        params = objective.draw(s)

        def fun(x, params=params):
            v, g = value_and_grad(jnp.asarray(x), params)
            return float(v), np.asarray(g)

        # SLSQP from the uniform mixture and from near each vertex (one start alone can
        # stall on these random laws), the best of the five
        starts = [np.full(4, 0.25), *(np.full(4, 0.05) + 0.8 * np.eye(4))]
        minima.append(min(_slsqp(fun, 4, start=x0)[1] for x0 in starts))
    minima = np.array(minima)
    assert np.all(np.asarray(draws.value) <= minima * (1 + 1e-9))

    def by_hand(h):
        return sum(w * _additive_by_hand(objective.params[t], h)[:, 0]
                   for t, w in weights.items())

    regret_bayes = expected_regret(objective, N, D, bayes.h, draws.value)
    regret_bad = expected_regret(objective, N, D, bad, draws.value)
    independent_bayes = float(np.mean(by_hand(np.asarray(bayes.h)) - minima))
    independent_bad = float(np.mean(by_hand(bad) - minima))
    # SLSQP's minima are within 1e-7 (relative) of mirror descent's, the loss ~ 3
    assert regret_bayes == pytest.approx(independent_bayes, abs=1e-6)
    assert regret_bad == pytest.approx(independent_bad, abs=1e-6)
    # the regret of h_bayes is not zero (so "f(h) - f(h_bayes)" would be caught) and
    # far below the bad mixture's
    assert 1e-5 < regret_bayes < 0.5 * regret_bad

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
    assert out["objective"]["bad"]["p_h_bayes_better"] > 0.9
    assert out["objective"]["bad"]["expected_regret"] == pytest.approx(independent_bad,
                                                                       abs=1e-6)
    assert out["objective"]["h_bayes"]["expected_regret"] == pytest.approx(
        independent_bayes, abs=1e-6)
    # the baseline's h* is the optimum of draw 0 (the point fit)
    np.testing.assert_allclose(report.mixtures["baseline_h_star"], draws.h[0], atol=1e-5)


def _two_type_posteriors(seed: int, n_draws: int, p: float):
    """Two targets on domains (p, q) whose draws share a type: with probability ``p``
    both favour ``q`` (shares softmax(-1.5, 1.5)), else both favour ``p``; each
    target's ``E`` is independent noise (sd 3) that cancels only within a paired draw.
    """
    rng = np.random.default_rng(seed)
    favours_q = rng.uniform(size=n_draws) < p
    u = np.where(favours_q[:, None], [-1.5, 1.5], [1.5, -1.5])
    posts = {}
    for target in ("x", "y"):
        params = {"a": np.full(n_draws, -2.0), "alpha": np.full(n_draws, 0.3),
                  "b": np.full(n_draws, -1.5), "beta": np.full(n_draws, 0.3),
                  "m": np.full(n_draws, np.log(0.3)), "u": u,
                  "gamma": np.full((n_draws, 2), 0.5),
                  "E": 2.0 + 3.0 * rng.normal(size=n_draws)}
        posts[target] = TargetPosterior(law=LAW, target=target, domains=("p", "q"),
                                        scales=SCALES, params=params)
    return posts, favours_q


def test_prob_better_is_over_paired_draws():
    """Negative control for pairing: h_bayes beats B = (0.9, 0.1) exactly in the draws
    that favour domain q, a known fraction p = 0.8 of them. Any comparison of unpaired
    draws (targets shuffled against each other, draws compared across s, or against
    the mean of B's objective) gives a different fraction, and this test fails."""
    n_draws, p = 400, 0.8
    posts, favours_q = _two_type_posteriors(7, n_draws, p)
    p_hat = float(np.mean(favours_q))
    assert abs(p_hat - p) < 4 * np.sqrt(p * (1 - p) / n_draws)  # binomial tolerance
    B = np.array([0.9, 0.1])
    report = decide(posts, N, D, references={"B": B})
    h_bayes = report.h_bayes
    assert h_bayes[1] > 0.6  # leans to q, as 80 % of the draws do
    # independent: by hand, h_bayes is better than B exactly where q is favoured
    by_hand = sum(0.5 * _additive_by_hand(posts[t].params, np.stack([h_bayes, B]))
                  for t in posts)
    np.testing.assert_array_equal(by_hand[:, 0] < by_hand[:, 1], favours_q)
    got = report.to_dict()["objective"]["B"]["p_h_bayes_better"]
    assert got == pytest.approx(p_hat, abs=1e-12)
    assert prob_better(report.objective["h_bayes"], report.objective["B"]) == got

    # the control has power: each unpairing bug moves the answer by far more than the
    # binomial tolerance (0.08)
    rng = np.random.default_rng(1)
    values_bayes, values_b = report.objective["h_bayes"], report.objective["B"]
    assert abs(prob_better(values_bayes, rng.permutation(values_b)) - p_hat) > 0.15
    assert abs(prob_better(values_bayes, np.full(n_draws, values_b.mean())) - p_hat) > 0.15
    assert abs(prob_better(np.sort(values_bayes), np.sort(values_b)) - p_hat) > 0.15
    perm = rng.permutation(n_draws)
    shuffled = dict(posts, y=TargetPosterior(
        law=LAW, target="y", domains=("p", "q"), scales=SCALES,
        params={n: v[perm] for n, v in posts["y"].params.items()}))
    unpaired = decide(shuffled, N, D, references={"B": B})
    # the posterior mean (and so h_bayes) does not depend on the pairing; P does
    np.testing.assert_allclose(unpaired.h_bayes, h_bayes, atol=1e-9)
    assert abs(unpaired.to_dict()["objective"]["B"]["p_h_bayes_better"] - p_hat) > 0.1


@pytest.mark.parametrize("n_params, n_tokens", [
    (0.0, D), (N, -1.0), (float("nan"), D), (N, float("inf"))])
def test_decide_refuses_a_bad_planned_run(posteriors4, n_params, n_tokens):
    with pytest.raises(BayesmixError, match="must be positive and finite") as info:
        decide(posteriors4, n_params, n_tokens)
    assert "\n" not in str(info.value) and "--" not in str(info.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"tol": -1.0}, "tol must be a positive number"), ({"tol": float("nan")}, "tol must"),
    ({"max_iter": 0}, "max_iter must be at least 1")])
def test_decide_refuses_bad_solver_options(posteriors4, options, message):
    with pytest.raises(BayesmixError, match=message):
        decide(posteriors4, N, D, **options)


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
    with pytest.raises(BayesmixError, match="target_weights names target.* no fit provides"):
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
    assert saved["seed"] == 0 and saved["discrepancy"] is True  # for report --optimum
    assert [p["N"] * p["D"] * 6 for p in saved["path"]] == pytest.approx([1e19, 1e21])
    assert (tmp_path / "opt" / "h_star_draws.csv").is_file()
    status = main(["optimize", *fits, "--N", "2e9", "--D", "4e10", "--seed", "7",
                   "--no-discrepancy", "--out", str(tmp_path / "plain")])
    saved = json.loads((tmp_path / "plain" / "optimum.json").read_text())
    assert status == 0 and saved["seed"] == 7 and saved["discrepancy"] is False
    status = main(["optimize", *fits, "--N", "2e9", "--D", "4e10", "--min-weight", "0.5",
                   "--json"])
    assert status == 2
    assert "minimum weights sum" in capsys.readouterr().err


def test_cli_optimize_prints_a_table_by_default(posteriors4, tmp_path, monkeypatch, capsys):
    import bayesmix.commands.optimize
    from bayesmix.cli import main

    monkeypatch.setattr(bayesmix.commands.optimize, "_load_posteriors",
                        lambda path: {t: p for t, p in posteriors4.items()
                                      if t == str(path).rsplit("/", 1)[-1]})
    fits = [str(tmp_path / t) for t in posteriors4]
    status = main(["optimize", *fits, "--N", "2e9", "--D", "4e10", "--min-weight", "0.02"])
    assert status == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("optimal mixture at N = 2e+09 parameters, D = 4e+10 tokens")
    header = next(i for i, line in enumerate(lines) if line.startswith("domain"))
    assert lines[header].split()[:3] == ["domain", "h_bayes", "h*"]
    # one row per domain, with h_bayes, the h* median and the interval
    report = decide(posteriors4, N, D, lower=np.full(4, 0.02), upper=np.ones(4),
                    references={"uniform": np.full(4, 0.25)}).to_dict()
    for i, domain in enumerate(posteriors4["d0"].domains):
        row = lines[header + 1 + i].split()
        assert row[0] == domain
        assert float(row[1]) == pytest.approx(report["h_bayes"][domain], abs=5e-5)
        assert float(row[2]) == pytest.approx(report["h_star"][domain]["median"], abs=5e-5)
    # the comparison with the default reference (uniform)
    row = next(line for line in lines if line.startswith("uniform")).split()
    uniform = report["objective"]["uniform"]
    assert float(row[1]) == pytest.approx(uniform["median"], rel=1e-5)
    assert float(row[4]) == pytest.approx(uniform["p_h_bayes_better"], abs=5e-4)
    assert float(row[5]) == pytest.approx(uniform["expected_regret"], rel=1e-2)
    assert "{" not in text  # a table, not JSON
    assert not list(tmp_path.iterdir())  # and nothing written


def test_cli_optimize_bad_run_size_is_one_line(posteriors4, tmp_path, monkeypatch, capsys):
    import bayesmix.commands.optimize
    from bayesmix.cli import main

    monkeypatch.setattr(bayesmix.commands.optimize, "_load_posteriors",
                        lambda path: posteriors4)
    status = main(["optimize", str(tmp_path / "fit"), "--N", "-1", "--D", "4e10"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be positive and finite" in err


def test_reference_mixtures_and_their_errors(tmp_path):
    """The reference mixtures the decision is compared with, from the library."""
    from bayesmix.references import reference_mixtures

    domains = ("a", "b")
    path = tmp_path / "mixes.csv"
    path.write_text("name,h_a,weight_b\nmine,0.3,0.7\n")
    out = reference_mixtures(["uniform", "natural", str(path)], domains,
                             tokens={"a": 1.0, "b": 3.0})
    np.testing.assert_allclose(out["uniform"], [0.5, 0.5])
    np.testing.assert_allclose(out["natural"], [0.25, 0.75])
    np.testing.assert_allclose(out["mine"], [0.3, 0.7])
    assert list(reference_mixtures(None, domains)) == ["uniform"]
    with pytest.raises(BayesmixError, match="needs tokens for every domain; missing b"):
        reference_mixtures(["natural"], domains, tokens={"a": 1.0})
    with pytest.raises(BayesmixError, match="no column for domain 'b'"):
        path.write_text("h_a\n1.0\n")
        reference_mixtures([str(path)], domains)
    for text, column, row in (("h_a,h_b\n0.5,0.5\n0.3,\n", "h_b", "2 \\('nan'\\)"),
                              ("h_a,h_b\nhalf,0.5\n", "h_a", "1 \\('half'\\)")):
        path.write_text(text)
        with pytest.raises(BayesmixError, match=f"column '{column}' is blank, non-numeric "
                                                f"or infinite in row {row}"):
            reference_mixtures([str(path)], domains)
