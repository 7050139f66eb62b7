"""Every law's mean against a plain NumPy transcription of its equation.

The law files write each equation in centred coordinates; here each equation is
written again the way the paper writes it, in natural parameters, and the two must
agree on random inputs and random prior draws. This is the one place a formula is
written twice, on purpose: it is the check.
"""

import jax
import numpy as np
import pytest

from bayesmix import BayesmixError, load_law
from bayesmix.laws import builtin_law_names
from bayesmix.model import Scales, centred_inputs, law_params, n_law_domains
from bayesmix.simulate import draw_law_params

K = 4
N_REF, D_REF = 3.0e8, 6.0e9


def _natural_additive_mixture(p, h):
    k = h.shape[-1]
    shares = np.exp(p["u"]) / np.exp(p["u"]).sum()
    C = np.exp(-p["m"]) * shares * k ** p["gamma"]
    return 1.0 / np.sum(C * h ** p["gamma"], axis=-1)


def _numpy_law(name, p, N, D, h):
    """The paper's equations with natural parameters (N, D in params and tokens)."""
    k = h.shape[-1]
    if name == "chinchilla":
        A, B = np.exp(p["a"]) * N_REF ** p["alpha"], np.exp(p["b"]) * D_REF ** p["beta"]
        return p["E"] + A / N ** p["alpha"] + B / D ** p["beta"]
    if name == "additive":
        A, B = np.exp(p["a"]) * N_REF ** p["alpha"], np.exp(p["b"]) * D_REF ** p["beta"]
        return p["E"] + _natural_additive_mixture(p, h) + A / N ** p["alpha"] + B / D ** p["beta"]
    if name == "additive_fixed_nd":
        return p["E"] + _natural_additive_mixture(p, h)
    if name == "additive_fixed_n":
        B = np.exp(p["b"]) * D_REF ** p["beta"]
        return p["E"] + _natural_additive_mixture(p, h) + B / D ** p["beta"]
    if name in ("joint", "full"):
        def softmax(u):
            return np.exp(u) / np.exp(u).sum()
        if name == "joint":
            alpha_h, beta_h = p["alpha"], p["beta"]
            n_unit, d_unit = N_REF, D_REF
        else:  # full: exponents depend on h, so N and D are in units of N_ref, D_ref
            alpha_h, beta_h = h @ p["alpha"], h @ p["beta"]
            n_unit, d_unit = N_REF, D_REF
        CA = k * softmax(p["u_A"]) * np.exp(p["a"] / p["gamma_A"])
        CB = k * softmax(p["u_B"]) * np.exp(p["b"] / p["gamma_B"])
        A_h = (h @ CA) ** p["gamma_A"]
        B_h = (h @ CB) ** p["gamma_B"]
        return (p["E"] + _natural_additive_mixture(p, h)
                + A_h / (N / n_unit) ** alpha_h + B_h / (D / d_unit) ** beta_h)
    if name == "simple":
        A, B = np.exp(p["a"]) * N_REF ** p["alpha"], np.exp(p["b"]) * D_REF ** p["beta"]
        w = np.exp(p["u"]) / np.exp(p["u"]).sum()
        C = k * w * np.exp(p["c"] / p["gamma"])
        return p["E"] + 1.0 / (h @ C) ** p["gamma"] + A / N ** p["alpha"] + B / D ** p["beta"]
    if name == "bimix":
        # A_i / h^alpha (B / D^beta + C) with A C = exp(a), B / C = exp(b) D_ref^beta; take C = 2
        C = 2.0
        A, B = np.exp(p["a"]) / C, np.exp(p["b"]) * C * D_REF ** p["beta"]
        return A / h[:, 0] ** p["alpha"] * (B / D ** p["beta"] + C)
    if name == "ye_m1":
        kk = np.exp(p["a"] - p["t"].sum() / k)
        return p["E"] + kk * np.exp(h @ p["t"])
    if name == "ye_m2":
        kj = np.exp(p["a"] - p["t"] / k)
        return p["E"] + np.sum(kj * np.exp(p["t"] * h), axis=-1)
    if name == "ye_m3":
        kk = np.exp(p["a"] - p["t"].sum() / k - p["s"].sum() / k**2)
        return p["E"] + kk * np.exp(h @ p["t"] + (h**2) @ p["s"])
    if name == "ye_m4":
        c = p["E"] + p["e"] - p["e"].mean()
        kk = np.exp(p["a"] - p["t"].sum() / k)
        return h @ c + kk * np.exp(h @ p["t"])
    raise AssertionError(f"no NumPy transcription for {name}")


@pytest.mark.parametrize("name", builtin_law_names())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_matches_numpy_transcription(name, seed):
    law = load_law(name)
    key_p, key_x = jax.random.split(jax.random.key(seed))
    k_seen = n_law_domains(law, K)
    sites = draw_law_params(key_p, law, K, loss_scale=3.0, n_proposals=200)
    params = {key: np.asarray(v) for key, v in law_params(law, k_seen, 3.0, sites).items()}
    rng = np.random.default_rng(seed)
    n = 16
    N = np.exp(rng.uniform(np.log(5e7), np.log(3e9), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e11), n))
    weights = rng.dirichlet(np.ones(K), n) * 0.9 + 0.1 / K
    scales = Scales(N_REF, D_REF, 3.0)
    log_n, log_d, h = centred_inputs(law, scales, N, D, weights, 0)
    got = np.asarray(law.mean(params, log_n, log_d, h))
    want = _numpy_law(name, params, N, D, np.asarray(h))
    np.testing.assert_allclose(got, want, rtol=1e-10)


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


def test_zero_weight_has_finite_gradient():
    law = load_law("additive")
    sites = draw_law_params(jax.random.key(0), law, 3, 3.0, n_proposals=100)
    params = law_params(law, 3, 3.0, sites)
    h = np.array([[0.0, 0.4, 0.6]])
    grad = jax.grad(lambda g: law.mean(dict(params, gamma=g), np.zeros(1), np.zeros(1), h)[0])(
        params["gamma"]
    )
    assert np.all(np.isfinite(np.asarray(grad)))


def test_twelve_builtin_laws_and_counts():
    names = builtin_law_names()
    assert len(names) == 12
    # sampled parameters: the additive law's 5 + 2k and the shares' unseen common shift
    assert load_law("additive").n_params(7) == 6 + 2 * 7
    assert load_law("chinchilla").n_params(7) == 5
    assert load_law("bimix").n_params(17) == 4


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


def test_user_law_file_is_loaded_like_a_builtin(tmp_path):
    src = load_law("chinchilla").path.read_text().replace('NAME = "chinchilla"',
                                                          'NAME = "my_law"')
    path = tmp_path / "my_law.py"
    path.write_text(src)
    law = load_law(str(path))
    assert law.name == "my_law" and law.n_params(3) == 5


@pytest.mark.parametrize("helper", ["shares_and_exponents", "mixing_power"])
def test_reparameterised_priors_are_the_independent_priors(helper):
    """Sampling elasticities (or g = gamma u / k) leaves the stated priors unchanged.

    gamma ~ LogNormal(log(typical), 0.75) and u ~ Normal(0, 1), independent: checked
    by Kolmogorov-Smirnov tests on 4000 prior draws (and their independence by a
    correlation test); the negative control is the same test against an exponent
    prior with sd 0.65, which must fail.
    """
    import numpyro
    from numpyro import handlers
    from scipy import stats

    from bayesmix import lawkit

    def model():
        if helper == "shares_and_exponents":
            u, gamma = lawkit.shares_and_exponents(K)
            return u[0], gamma[0]
        gamma, u = lawkit.mixing_power("_A", K, typical=0.3)
        return u[0], gamma

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
