"""Every law's mean against a plain NumPy transcription of its published equation.

The law files write each equation in centred coordinates; here each equation is
written again the way Shukor et al. 2025 print it (eqs. 2, 4, 5, 9, 10-11 and
appendix B.1-B.2), in the paper's own parameters, which each law's ``natural`` map
gives. The two must agree on random inputs and random prior draws, to a tolerance set
by the dtype. This is the one place a formula is written twice, on purpose: it is the
check. Each law also has a deliberately wrong transcription (the mistake a reader of
the paper could plausibly make, such as M1 with one exponential) that the same check
must reject.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers

from bayesmix import BayesmixError, load_law
from bayesmix.laws import builtin_law_names
from bayesmix.model import law_params, param_names
from bayesmix.simulate import draw_law_params

K = 4
N_REF, D_REF = 3.0e8, 6.0e9
LOSS_SCALE = 3.0
# Relative tolerance of a law's mean against the transcription, by the dtype the mean
# is evaluated in (the transcription is always float64): about 1e6 and 1e3 machine
# epsilons, room for exp() of exponents of size ~10 and for a different summation order.
RTOL = {np.float64: 1e-10, np.float32: 1e-4}

# n_params(7): sampled parameters, counted by hand from each law file's docstring
# (one more than identified for each softmax of a weighted sum: its unseen common
# shift; the data term's shares are k - 1 sticks).
N_PARAMS_7 = {
    "additive": 5 + 2 * 7, "additive_fixed_n": 3 + 2 * 7, "additive_fixed_nd": 1 + 2 * 7,
    "bimix": 4, "chinchilla": 5, "full": 9 + 6 * 7, "joint": 7 + 4 * 7, "simple": 7 + 7,
    "ye_m1": 2 * 7 + 1, "ye_m2": 7 + 2, "ye_m3": 3, "ye_m4": 7 + 2,
}

# The paper's own parameter counts at k = 7 (eqs. 2, 4, 5, 9-11 and appendix B: additive
# 5 + 2k, joint 5 + 4k, full 5 + 6k, simple k + 6, Ye M1 1 + 2k, M2-M4 k + 2, BiMix 5).
PAPER_PARAMS_7 = {
    "additive": 19, "additive_fixed_n": 17, "additive_fixed_nd": 15, "bimix": 5,
    "chinchilla": 5, "full": 47, "joint": 33, "simple": 13, "ye_m1": 15, "ye_m2": 9,
    "ye_m3": 9, "ye_m4": 9,
}


def _published(name, p, N, D, h, wrong=False):
    """The paper's equation for law ``name`` in its own parameters ``p``.

    ``N`` in parameters, ``D`` in tokens, ``h`` of shape ``(n, k)`` (``(n, 1)`` for
    BiMix). ``wrong=True`` gives the plausible misreading named beside each law.
    """

    def additive_term(p):  # 1 / sum_i C_i h_i^gamma_i (eq. 4)
        if wrong:  # misreading: without the reciprocal
            return np.sum(p["C"] * h ** p["gamma"], axis=-1)
        return 1.0 / np.sum(p["C"] * h ** p["gamma"], axis=-1)

    if name == "chinchilla":  # eq. 2
        if wrong:  # misreading: exponents swapped between N and D
            return p["E"] + p["A"] / N ** p["beta"] + p["B"] / D ** p["alpha"]
        return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    if name == "additive":  # eq. 4
        return p["E"] + additive_term(p) + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    if name == "additive_fixed_nd":  # appendix B.1, "Additive, fixed (N, D)"
        return p["E"] + additive_term(p)
    if name == "additive_fixed_n":  # appendix B.2, "Additive, fixed N"
        return p["E"] + additive_term(p) + p["B"] / D ** p["beta"]
    if name == "joint":  # eq. 5
        A_h = (h @ p["CA"]) ** p["gamma_A"]
        B_h = (h @ p["CB"]) ** p["gamma_B"]
        if wrong:  # misreading: A^h = sum_i C^A_i h_i^gamma^A
            A_h = (h ** p["gamma_A"]) @ p["CA"]
        return (p["E"] + 1.0 / np.sum(p["C"] * h ** p["gamma"], axis=-1)
                + A_h / N ** p["alpha"] + B_h / D ** p["beta"])
    if name == "full":  # eqs. 10-11, N and D in units of N_ref and D_ref (see full.py)
        n, d = N / N_REF, D / D_REF
        A_h = (h @ p["CA"]) ** p["gamma_A"]
        B_h = (h @ p["CB"]) ** p["gamma_B"]
        alpha_h = (h @ p["C_alpha"]) ** p["gamma_alpha"]
        beta_h = (h @ p["C_beta"]) ** p["gamma_beta"]
        if wrong:  # the form read before the paper's text was here: linear exponents
            alpha_h, beta_h = h @ p["C_alpha"], h @ p["C_beta"]
        return (p["E"] + 1.0 / np.sum(p["C"] * h ** p["gamma"], axis=-1)
                + A_h / n ** alpha_h + B_h / d ** beta_h)
    if name == "simple":  # eq. 9 (with eq. 2's letters for the power terms)
        gamma = -p["gamma"] if wrong else p["gamma"]  # misreading: 1 / (sum C h)^gamma
        return p["E"] + (h @ p["C"]) ** gamma + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    if name == "bimix":  # appendix B.2, "Ge 24"
        own = h[:, 0]
        if wrong:  # misreading: C multiplies B only
            return p["B"] * p["C"] / D ** p["beta"] / own ** p["gamma"] + p["E"]
        return (p["B"] / D ** p["beta"] + p["E"]) * p["C"] / own ** p["gamma"]
    if name == "ye_m1":  # appendix B.1, Ye M1
        if wrong:  # misreading: one exponential (the old ye_m1)
            return p["E"] + p["C"].sum() * np.exp(h @ p["gamma"])
        return p["E"] + np.sum(p["C"] * np.exp(p["gamma"] * h), axis=-1)
    if name == "ye_m2":  # Ye M2
        if wrong:  # misreading: M4
            return p["E"] + p["C"] * np.exp(h @ p["gamma"])
        return p["E"] + p["C"] * np.sum(np.exp(p["gamma"] * h), axis=-1)
    if name == "ye_m3":  # Ye M3
        if wrong:  # misreading: a sum for the product
            return p["E"] + p["C"] * np.exp(np.sum(p["gamma"] * h, axis=-1))
        return p["E"] + p["C"] * np.exp(np.prod(p["gamma"] * h, axis=-1))
    if name == "ye_m4":  # Ye M4
        if wrong:  # misreading: M2
            return p["E"] + p["C"] * np.sum(np.exp(p["gamma"] * h), axis=-1)
        return p["E"] + p["C"] * np.exp(h @ p["gamma"])
    raise AssertionError(f"no NumPy transcription for {name}")


def _k_seen(law, k=K):
    return 1 if law.target_domain_only else k


def _prior_params(law, seed, k=K):
    """One draw of the law's parameters from its sampling statements (factors ignored)."""
    return handlers.seed(law.sample_params, jax.random.key(seed))(_k_seen(law, k), LOSS_SCALE)


def _inputs(seed, n=24, k=K, zeros=True):
    """Random N, D and weights; the first rows have exact zeros (never in column 0)."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(3e9), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e11), n))
    h = rng.dirichlet(np.ones(k), n)
    if zeros:
        for row in range(k - 1):  # row r has r + 1 zero weights
            h[row, 1 : row + 2] = 0.0
        h /= h.sum(axis=1, keepdims=True)
    return N, D, h


def _law_mean(law, params, N, D, h, dtype):
    cast = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), params)
    log_n = jnp.asarray(np.log(N / N_REF), dtype)
    log_d = jnp.asarray(np.log(D / D_REF), dtype)
    seen = jnp.asarray(law.domain_inputs(jnp.asarray(h), 0), dtype)
    out = np.asarray(law.mean(cast, log_n, log_d, seen))
    assert out.dtype == dtype
    return out


def _agrees(got, want, dtype):
    return bool(np.all(np.isfinite(got))) and np.allclose(got, want, rtol=RTOL[dtype], atol=0)


def _natural(law, params, k=K):
    nat = law.natural(params, N_REF, D_REF, _k_seen(law, k))
    return {name: np.asarray(v, np.float64) for name, v in nat.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", builtin_law_names())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_matches_published_equation(name, seed, dtype):
    """The law's mean is its published equation; a plausible misreading is caught."""
    law = load_law(name)
    params = _prior_params(law, seed)
    N, D, h = _inputs(seed)
    seen = np.asarray(law.domain_inputs(jnp.asarray(h), 0))
    got = _law_mean(law, params, N, D, h, dtype)
    nat = _natural(law, params)
    want = _published(name, nat, N, D, seen)
    assert _agrees(got, want, dtype), np.max(np.abs(got / want - 1))
    # negative control: the misreading differs from the law by more than the tolerance
    assert not _agrees(got, _published(name, nat, N, D, seen, wrong=True), dtype)


def test_every_law_defines_natural():
    for name in builtin_law_names():
        law = load_law(name)
        assert law.natural is not None and law.natural is law.module.natural, name


@pytest.mark.parametrize("name", builtin_law_names())
def test_zero_weights_give_finite_loss_and_gradients(name):
    """h_i = 0 exactly (RegMix has many): finite loss, finite gradients in params and h.

    BiMix is the one exception the paper's form forces: infinite at the target's own
    h_i = 0, which is checked too; zeros elsewhere do not reach it.
    """
    law = load_law(name)
    params = {key: jnp.asarray(v) for key, v in _prior_params(law, 3).items()}
    log_n, log_d = jnp.asarray([0.3, -0.2, 0.0, 1.0]), jnp.asarray([-0.5, 0.1, 0.0, 0.7])
    h = jnp.asarray([[0.5, 0.0, 0.25, 0.25], [0.7, 0.0, 0.0, 0.3],
                     [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    seen = law.domain_inputs(h, 0)

    def total(p, x):
        return jnp.sum(law.mean(p, log_n, log_d, x))

    assert np.all(np.isfinite(np.asarray(law.mean(params, log_n, log_d, seen))))
    grad_p, grad_h = jax.grad(total, argnums=(0, 1))(params, seen)
    for site, g in grad_p.items():
        assert np.all(np.isfinite(np.asarray(g))), site
    assert np.all(np.isfinite(np.asarray(grad_h)))
    if law.target_domain_only:
        at_zero = law.mean(params, log_n[:1], log_d[:1], jnp.zeros((1, 1)))
        assert np.isposinf(np.asarray(at_zero)).all()


def test_zero_weight_check_catches_a_naive_power():
    """Negative control: ``(k h)^gamma`` written naively as ``exp(gamma log(k h))``.

    It has the right value at h_i = 0 but a NaN gradient in ``gamma`` there
    (``log 0 * exp(-inf)``), which the check must see.
    """
    from bayesmix import lawkit

    h = jnp.asarray([[0.6, 0.0, 0.4]])
    gamma = jnp.asarray([0.5, 0.7, 1.3])

    def naive(g):
        return jnp.sum(jax.nn.softmax(jnp.zeros(3)) * jnp.exp(g * jnp.log(3 * h)))

    def kit(g):
        return jnp.sum(lawkit.mixture_term(jnp.zeros(3), g, h))

    np.testing.assert_allclose(naive(gamma), kit(gamma), rtol=1e-12)
    assert not np.all(np.isfinite(np.asarray(jax.grad(naive)(gamma))))
    assert np.all(np.isfinite(np.asarray(jax.grad(kit)(gamma))))


def test_joint_reduces_to_additive():
    """Joint law with gamma_A = gamma_B = 1 and equal C^A_i (C^B_i) is the additive law."""
    additive, joint = load_law("additive"), load_law("joint")
    sites = draw_law_params(jax.random.key(5), additive, K, 3.0, n_proposals=200)
    p_add = law_params(additive, K, 3.0, sites)
    p_joint = dict(p_add, gamma_A=1.0, gamma_B=1.0, u_A=np.zeros(K), u_B=np.zeros(K))
    rng = np.random.default_rng(5)
    h = rng.dirichlet(np.ones(K), 32)
    log_n, log_d = rng.normal(size=32), rng.normal(size=32)
    np.testing.assert_allclose(
        joint.mean(p_joint, log_n, log_d, h), additive.mean(p_add, log_n, log_d, h), rtol=1e-12
    )
    # negative control: gamma_A away from 1 breaks the identity
    p_off = dict(p_joint, gamma_A=1.5, u_A=np.linspace(-1, 1, K))
    assert not np.allclose(joint.mean(p_off, log_n, log_d, h),
                           additive.mean(p_add, log_n, log_d, h), rtol=1e-6)


def test_full_reduces_to_joint():
    """Full law with gamma_alpha = gamma_beta = 0 (constant exponents) is the joint law."""
    joint, full = load_law("joint"), load_law("full")
    p_joint = {key: jnp.asarray(v) for key, v in _prior_params(joint, 6).items()}
    p_full = dict(p_joint, gamma_alpha=0.0, gamma_beta=0.0, u_alpha=jnp.linspace(-1, 1, K),
                  u_beta=jnp.zeros(K))
    N, D, h = _inputs(6)
    log_n, log_d = np.log(N / N_REF), np.log(D / D_REF)
    want = joint.mean(p_joint, log_n, log_d, h)
    np.testing.assert_allclose(full.mean(p_full, log_n, log_d, h), want, rtol=1e-12)
    p_off = dict(p_full, gamma_alpha=0.5)  # negative control: alpha^h depends on h
    assert not np.allclose(full.mean(p_off, log_n, log_d, h), want, rtol=1e-6)


def test_sampled_parameter_counts():
    assert len(builtin_law_names()) == 12
    assert {name: load_law(name).n_params(7) for name in builtin_law_names()} == N_PARAMS_7


def test_laws_json_reports_counts_and_published_equations(capsys):
    from bayesmix.cli import main

    assert main(["laws", "--json", "--domains", "7"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(builtin_law_names())
    for name, row in rows.items():
        law = load_law(name)
        assert row["n_params"] == N_PARAMS_7[name] and row["k"] == 7
        assert row["n_paper_params"] == PAPER_PARAMS_7[name]
        assert sum(int(np.prod(s)) for s in row["sites"].values()) == row["n_params"]
        assert row["equation"] == law.equation and row["reference"] == law.reference
        assert row["natural"] == list(_natural(law, _prior_params(law, 0, 7), 7))
    assert rows["additive"]["parameters"] == "5 + 2k"
    assert rows["additive"]["paper_parameters"] == "5 + 2k"
    assert rows["joint"]["paper_parameters"] == "5 + 4k"
    assert rows["ye_m1"]["equation"] == "L = E + sum_i C_i exp(gamma_i h_i)"
    assert rows["ye_m3"]["equation"] == "L = E + C exp(prod_i gamma_i h_i)"
    assert rows["bimix"]["domains"] == "target" and rows["ye_m2"]["uses"] == ["h"]


def test_unknown_law_and_bad_law_file(tmp_path):
    with pytest.raises(BayesmixError, match="unknown law 'nope'"):
        load_law("nope")
    bad = tmp_path / "bad_law.py"
    bad.write_text("NAME = 'bad'\n")
    with pytest.raises(BayesmixError, match="does not define EQUATION, sample_params, mean"):
        load_law(bad)
    broken = tmp_path / "broken_law.py"
    broken.write_text("import not_a_module_anywhere\n")
    with pytest.raises(BayesmixError, match="failed to import"):
        load_law(broken)
    not_fn = tmp_path / "not_fn_law.py"
    not_fn.write_text(load_law("chinchilla").path.read_text() + "\nnatural = 3\n")
    with pytest.raises(BayesmixError, match="natural must be a function"):
        load_law(not_fn)


def test_user_law_file_is_loaded_like_a_builtin(tmp_path):
    src = load_law("chinchilla").path.read_text().replace('NAME = "chinchilla"',
                                                          'NAME = "my_law"')
    path = tmp_path / "my_law.py"
    path.write_text(src.split("\ndef natural")[0])
    law = load_law(str(path))
    assert law.name == "my_law" and law.n_params(3) == 5
    assert law.natural is None  # optional: a user's law need not define it


def test_a_law_whose_priors_branch_on_a_value_still_counts_its_parameters(tmp_path):
    """Parameter shapes come from a shape-only trace; a user's priors with Python
    control flow on a sampled value (which that trace cannot follow) are run instead."""
    src = load_law("chinchilla").path.read_text().split("\ndef natural")[0]
    src = src.replace('NAME = "chinchilla"', 'NAME = "branchy"').replace(
        "def sample_params(k, loss_scale):",
        "def sample_params(k, loss_scale):\n"
        "    import numpyro, numpyro.distributions as dist\n"
        "    if float(numpyro.sample('flip', dist.Normal())) > 100:\n"
        "        raise ValueError('never')")
    path = tmp_path / "branchy.py"
    path.write_text(src)
    law = load_law(str(path))
    assert law.n_params(3) == 6 and list(law.site_shapes(3))[0] == "flip"
    assert param_names(law, 3, 1.0) == ["a", "alpha", "b", "beta", "E"]
    with pytest.raises(jax.errors.ConcretizationTypeError):  # negative control
        jax.eval_shape(lambda key: handlers.seed(law.sample_params, key)(3, 1.0),
                       jax.random.key(0))


def test_irreducible_loss_helper_evaluates_the_mean_at_the_reference():
    """``E = loss_ref - mean(E=0)`` at log_n = log_d = 0 and the uniform mixture."""
    law = load_law("additive")
    params = _prior_params(law, 4)
    reducible = law.mean({**params, "E": 0.0}, jnp.zeros(1), jnp.zeros(1),
                         jnp.full((1, K), 1.0 / K))[0]
    tr = handlers.trace(handlers.seed(law.sample_params, jax.random.key(4))).get_trace(
        K, LOSS_SCALE)
    np.testing.assert_allclose(params["E"], tr["loss_ref"]["value"] - reducible, rtol=1e-12)
    # negative control: the reducible part at another mixture is not what was subtracted
    other = law.mean({**params, "E": 0.0}, jnp.zeros(1), jnp.zeros(1),
                     jnp.asarray([[0.7, 0.1, 0.1, 0.1]]))[0]
    assert not np.isclose(params["E"], tr["loss_ref"]["value"] - other, rtol=1e-6)


@pytest.mark.parametrize("helper", ["shares_and_exponents", "reordered", "mixing_power"])
def test_reparameterised_priors_are_the_independent_priors(helper):
    """Sampling sticks and elasticities (or g = gamma u / k) leaves the stated priors
    unchanged.

    gamma ~ LogNormal(log(typical), 0.75) and u ~ Normal(0, 1), independent: checked
    by Kolmogorov-Smirnov tests on 4000 prior draws (and their independence by a
    correlation test). The data term's shares are sticks in an order (the domains'
    own, or the reverse as a sampler may set it), and only ``softmax(u)`` is defined,
    so there the check is on ``(u_0 - u_1) / sqrt(2)``, standard normal. The negative
    control is the same test against an exponent prior with sd 0.65, which must fail.
    """
    import numpyro
    from numpyro import handlers
    from scipy import stats

    from bayesmix import lawkit
    from bayesmix.sticks import ordered_shares

    def model():
        if helper == "mixing_power":
            gamma, u = lawkit.mixing_power("_A", K, typical=0.3)
            return u[0], gamma
        order = jnp.arange(K)[::-1] if helper == "reordered" else jnp.arange(K)
        with ordered_shares(order):
            u, gamma = lawkit.shares_and_exponents(K)
        return (u[0] - u[1]) / np.sqrt(2.0), gamma[0]

    def draw(key):
        return handlers.seed(model, key)()

    with numpyro.validation_enabled(False):
        u, gamma = jax.vmap(draw)(jax.random.split(jax.random.key(0), 4000))
    u, log_gamma = np.asarray(u), np.log(np.asarray(gamma))
    alpha = 1e-3
    assert stats.kstest(u, stats.norm(0.0, 1.0).cdf).pvalue > alpha
    assert stats.kstest(log_gamma, stats.norm(np.log(0.3), 0.75).cdf).pvalue > alpha
    assert stats.pearsonr(u, log_gamma).pvalue > alpha
    # negative control: a 13 % narrower exponent prior is detected
    assert stats.kstest(log_gamma, stats.norm(np.log(0.3), 0.65).cdf).pvalue < alpha
