"""Learn the discrepancy beyond the training range by nested leave-one-size-out.

With training sizes ``N_1 < ... < N_K`` the fold ``j`` (``2 <= j < K``) refits the
law on the ``j`` smallest sizes and predicts every larger training size: the
extrapolation a user makes, at distances the runs themselves provide. Each refit is
the posterior mode (the best of :data:`FOLD_STARTS` L-BFGS runs, or of the fit's own
number when smaller: the NUTS fit's own start search, :func:`bayesmix.start.find_start`),
which costs seconds where NUTS costs minutes. A fold's log residuals ``r`` (observed
minus predicted) are modelled as

    r ~ Normal(m (tau_N phi_N + tau_D phi_D),
               sigma^2 I + J C J' + tau_N^2 phi_N phi_N' + tau_D^2 phi_D phi_D'),
    phi_N = d_N^p, phi_D = d_D^p

with ``sigma`` the mode's noise scale, ``J C J'`` the refit's parameter uncertainty
carried to the held-out rows to first order (so that what the refit's own posterior
explains is not taken for discrepancy; Gaussian draws of the Laplace approximation
instead leave the curved valley of ``E`` and predict non-positive losses, see
``docs/calibration.md``) and ``d`` the distances of
:class:`bayesmix.discrepancy.Discrepancy` from the fold's own training range. Each
target has its own ``(tau_N, tau_D)``, partially pooled across the fit's targets
(they share runs, architecture and recipe), and ``p`` and the bias ``m`` (in units of
each target's scale: the direction in which the law errs beyond its runs, shared by
targets fitted by one law to one set of runs) are shared; the posterior is computed
exactly on a grid (:func:`hyper_posterior`) and kept as draws.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.linalg
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import constrain_fn

from bayesmix._errors import BayesmixError
from bayesmix._random import numpy_rng
from bayesmix.discrepancy import Discrepancy
from bayesmix.fit import Fit, start_design_effect
from bayesmix.laws import Law
from bayesmix.model import bound_model, centred_inputs, law_params, target_inputs
from bayesmix.runs import SAME_SIZE, Fold, RunTable, model_sizes
from bayesmix.start import find_start

__all__ = ["BIAS_GRID", "BIAS_PRIOR_SCALE", "FoldResidual", "GROWTH_GRID", "TAU_GRID",
           "TAU_PRIOR_SCALE", "discrepancies", "fold_residual", "fold_residuals",
           "hyper_posterior", "learn_discrepancy", "size_folds", "try_learn_discrepancy"]

GROWTH_GRID = np.linspace(1.0, 2.0, 5)
"""Values of the growth exponent ``p`` (uniform prior)."""
BIAS_GRID = np.linspace(-6.0, 6.0, 49)
"""Values of the bias ``m``, in units of each target's scale: the mean of ``delta`` is
``m (tau_N d_N^p + tau_D d_D^p)``."""
BIAS_PRIOR_SCALE = 2.0
"""Normal(0, 2) prior of ``m``: a bias of a few times the scale's own spread is
allowed, and zero (the law errs either way) is where it starts."""
TAU_GRID = np.geomspace(1e-4, 1.0, 61)
"""Values of ``tau_N`` and ``tau_D`` (log-loss per unit distance^p)."""
TAU_PRIOR_SCALE = 0.05
"""Half-Cauchy scale of the population medians of ``tau_N`` and ``tau_D``: 5 % of the
loss per unit of log N is an error no one would call small, and the heavy tail lets
the runs say more."""
HYPER_DRAWS = 2000
FOLD_STARTS = 10
"""L-BFGS starts of a fold's refit (at most the fit's own)."""
POP_MEDIANS = np.geomspace(1e-3, 0.3, 25)
"""Grid of the population medians ``mu_N``, ``mu_D`` of the targets' scales."""
POP_SPREADS = np.array([0.25, 0.5, 1.0, 2.0])
"""Grid of the population spread ``s`` of ``log tau`` (uniform prior)."""


class FoldResidual(NamedTuple):
    """One (fold, target): log residuals, their covariance and the distances.

    The covariance is ``noise I + factor factor'``, kept as its two pieces: ``factor``
    has one column per parameter of the refit, so a fold of many held-out rows costs
    ``O(rows x parameters^2)``, never a dense ``rows x rows`` matrix.
    """

    fold: str
    target: str
    residual: np.ndarray
    noise: float
    factor: np.ndarray
    d_n: np.ndarray
    d_d: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """The dense covariance (for inspection; the likelihood never forms it)."""
        return self.noise * np.eye(self.residual.size) + self.factor @ self.factor.T

    def _capacitance(self) -> tuple[np.ndarray, np.ndarray]:
        """``u = factor / sqrt(noise)`` and the Cholesky factor of ``K = I + u'u``."""
        u = self.factor / np.sqrt(self.noise)
        return u, np.linalg.cholesky(np.eye(u.shape[1]) + u.T @ u)

    def precision_gram(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``x' Sigma^-1 y`` for columns ``x`` ``(rows, a)``, ``y`` ``(rows, b)``.

        By Woodbury: ``Sigma^-1 = (I - u K^-1 u') / noise`` (:meth:`_capacitance`).
        """
        u, chol = self._capacitance()
        ux, uy = (scipy.linalg.solve_triangular(chol, u.T @ v, lower=True) for v in (x, y))
        return (x.T @ y - ux.T @ uy) / self.noise

    def log_det(self) -> float:
        """``log det Sigma`` by the matrix determinant lemma."""
        _, chol = self._capacitance()
        return float(self.residual.size * np.log(self.noise)
                     + 2.0 * np.sum(np.log(np.diag(chol))))


def _size_label(n: float) -> str:
    return f"{n / 1e9:.4g}B" if n >= 1e9 else f"{n / 1e6:.4g}M"


def size_folds(table: RunTable, rows: np.ndarray) -> list[Fold]:
    """The nested folds of the sizes among ``rows`` (empty when fewer than three; sizes
    as :func:`bayesmix.runs.model_sizes` groups them)."""
    n = table.frame["N"].to_numpy(float)
    sizes = model_sizes(n[rows])
    folds = []
    for m in range(2, sizes.size):
        train = rows & (n <= sizes[m - 1])
        test = rows & (n > sizes[m - 1])
        held = [_size_label(s) for s in sizes[m:]]
        if len(held) > 3:  # a study with many sizes: the name stays one short line
            held = [held[0], "...", f"{held[-1]} ({len(held)} sizes)"]
        folds.append(Fold(f"N<={_size_label(sizes[m - 1])} -> " + ",".join(held),
                          train, test))
    return folds


def fold_residual(key: jax.Array, law: Law, table: RunTable, fold: Fold, target: str, *,
                  likelihood: str = "log", n_starts: int = FOLD_STARTS) -> FoldResidual:
    """Refit ``target`` on ``fold.train`` at its posterior mode and take the log residuals
    at ``fold.test``, with their covariance under the refit.

    The mode is the best of ``n_starts`` L-BFGS runs (:func:`bayesmix.start.find_start`,
    the NUTS fit's own start search), centred on the training rows as a fit of them
    would be. The refit sees every usable row of ``table`` with weight 0 on those
    outside ``fold.train``: the same row count as the fit of ``table``, so the folds
    use the fit's compiled programs instead of compiling their own. The covariance is
    ``sigma^2 I + J C J'``: the mode's noise plus the refit's parameter uncertainty
    carried to the held-out predictions to first order (``J`` the Jacobian of the log
    predictions in the unconstrained space, ``C`` the Laplace covariance times the
    design effect), so that what the refit's own posterior explains is not taken for
    discrepancy.

    Parameters
    ----------
    key : jax.Array
    law : Law
    table : RunTable
        The runs; ``fold``'s masks are over its rows.
    fold : Fold
    target : str
    likelihood : {"log", "raw"}
    n_starts : int

    Raises
    ------
    BayesmixError
        Too few training rows, or the refit predicts a non-positive loss at a held-out
        run.
    """
    index = table.frame.index.to_numpy(int)
    inputs = target_inputs(law, table.select(fold.train), target)  # checks; the scales
    data = table.target_data(target)
    train = np.isin(data.rows, index[fold.train])
    test = np.isin(data.rows, index[fold.test])
    log_n, log_d, h = centred_inputs(law, inputs.scales, data.n_params, data.n_tokens,
                                     data.weights, inputs.target_index)
    loss = jnp.asarray(data.loss)
    start = find_start(key, law, inputs.k, inputs.scales, log_n, log_d, h, loss, likelihood,
                       n_starts=n_starts, weight=train.astype(float))
    deff = start_design_effect(data, start, likelihood, train)
    args = (log_n, log_d, h, loss, jnp.asarray(inputs.scales.loss_scale, float),
            jnp.asarray(train, float))
    with numpyro.validation_enabled(False):
        centre, jac = _log_mean_program(law, inputs.k, likelihood)(
            start.unconstrained, args)
    centre, jac = np.asarray(centre, float)[test], np.asarray(jac, float)[test]
    if not np.all(np.isfinite(centre)) or not np.all(np.isfinite(jac)):
        raise BayesmixError(f"fold {fold.name}: the refit of '{target}' predicts a "
                            f"non-positive loss at a held-out size")
    sigma = float(start.constrained["sigma"])
    if likelihood != "log":  # raw-scale noise, as a log-scale variance
        sigma = sigma / float(np.median(data.loss[train]))
    cov = 0.5 * (start.covariance + start.covariance.T) * deff
    values, vectors = np.linalg.eigh(np.asarray(cov, float))
    if not (np.isfinite(sigma) and sigma > 0 and np.all(np.isfinite(values))):
        raise BayesmixError(f"fold {fold.name}: the refit of '{target}' has a noise scale "
                            f"or covariance that is not finite and positive")
    return FoldResidual(
        fold.name, target, np.log(data.loss[test]) - centre, sigma ** 2,
        jac @ (vectors * np.sqrt(np.maximum(values, 0.0))),
        np.maximum(0.0, np.log(data.n_params[test]) - np.log(data.n_params[train].max())),
        np.maximum(0.0, np.log(data.n_tokens[test]) - np.log(data.n_tokens[train].max())))


@functools.lru_cache(maxsize=32)
def _log_mean_program(law: Law, k: int, likelihood: str) -> Callable[..., Any]:
    """The law's log mean at every row and its Jacobian in the flat unconstrained
    parameters (NumPyro's sorted site order, the Laplace covariance's), jitted once per
    law: ``program(unconstrained_sites, model_args) -> (log_mean, jacobian)``."""
    model = bound_model(law, k, likelihood)

    def program(sites: dict[str, jax.Array], args: tuple) -> tuple[jax.Array, jax.Array]:
        flat, unravel = ravel_pytree(sites)

        def log_mean(x: jax.Array) -> jax.Array:
            constrained = constrain_fn(model, args, {}, unravel(x))
            params = law_params(law, k, args[4], constrained)
            return jnp.log(law.mean(params, *args[:3]))

        return log_mean(flat), jax.jacfwd(log_mean)(flat)

    return jax.jit(program)


def _log_marginal(residual: FoldResidual) -> np.ndarray:
    """Log density of one fold's residuals on the grid, shape ``(m, p, tau_N, tau_D)``.

    Woodbury on the rank-2 update of ``Sigma``: with ``A = Phi' Sigma^-1 Phi``,
    ``r_m = r - m Phi t`` (``t = (tau_N, tau_D)``, the bias), ``b = Phi' Sigma^-1 r_m``
    and ``T = diag(t^2)``, the log density is ``-1/2 [logdet Sigma + logdet(I + T A)
    + r_m' Sigma^-1 r_m - b' (T^-1 + A)^-1 b]`` up to a constant;
    ``T^(1/2) (I + T^(1/2) A T^(1/2))^-1 T^(1/2)`` stands for ``(T^-1 + A)^-1`` so
    that a scale of zero is allowed.
    """
    logdet = residual.log_det()
    r = residual.residual[:, None]
    rr0 = float(residual.precision_gram(r, r)[0, 0])
    t = TAU_GRID
    tn, td = t[:, None], t[None, :]
    m = BIAS_GRID[:, None, None]
    out = []
    for p in GROWTH_GRID:
        phi = np.stack([residual.d_n ** p, residual.d_d ** p], axis=1)
        a = residual.precision_gram(phi, phi)
        b = residual.precision_gram(phi, r)[:, 0]
        m11, m22, m12 = 1 + tn ** 2 * a[0, 0], 1 + td ** 2 * a[1, 1], tn * td * a[0, 1]
        det = m11 * m22 - m12 ** 2
        # the shifted residual's r' Sigma^-1 r and Phi' Sigma^-1 r
        rr = (rr0 - 2 * m * (tn * b[0] + td * b[1])
              + m ** 2 * (tn ** 2 * a[0, 0] + 2 * tn * td * a[0, 1] + td ** 2 * a[1, 1]))
        b1 = b[0] - m * (a[0, 0] * tn + a[0, 1] * td)
        b2 = b[1] - m * (a[0, 1] * tn + a[1, 1] * td)
        u1, u2 = tn * b1, td * b2  # T^(1/2) b
        quad = (m22 * u1 ** 2 - 2 * m12 * u1 * u2 + m11 * u2 ** 2) / det
        out.append(-0.5 * (logdet + np.log(det) + rr - quad))
    return np.stack(out, axis=1)


def _log_prior_scale(tau: np.ndarray) -> np.ndarray:
    """Half-Cauchy(:data:`TAU_PRIOR_SCALE`) on a log-spaced grid: density times ``tau``."""
    return np.log(tau) - np.log1p((tau / TAU_PRIOR_SCALE) ** 2)


def _population_weights() -> np.ndarray:
    """``W[i, m, s]``: Normal(log mu_m, s) on ``log tau_i``, normalised over ``i``."""
    z = ((np.log(TAU_GRID)[:, None, None] - np.log(POP_MEDIANS)[None, :, None])
         / POP_SPREADS[None, None, :])
    w = np.exp(-0.5 * z ** 2)
    return w / w.sum(axis=0, keepdims=True)


class _Hyper(NamedTuple):
    """The grid posterior's pieces: each target's likelihood ``lik[t][q, i, j]`` over
    the shared ``q = (m, p)`` and its scales, the population weights ``w[i, mu, s]``,
    each target's evidence ``z[t][q, mu_N, mu_D, s]`` and the posterior ``pop`` of the
    shared values ``(q, mu_N, mu_D, s)``."""

    targets: list[str]
    lik: dict[str, np.ndarray]
    w: np.ndarray
    z: dict[str, np.ndarray]
    pop: np.ndarray


def _hyper(residuals: Sequence[FoldResidual]) -> _Hyper:
    targets = list(dict.fromkeys(r.target for r in residuals))
    lik = {}
    for t in targets:
        log_lik = sum(_log_marginal(r) for r in residuals if r.target == t)
        lik[t] = np.exp(log_lik - np.max(log_lik)).reshape(-1, TAU_GRID.size, TAU_GRID.size)
    w = _population_weights()
    # Z[t][q, m_N, m_D, s] = sum_ij lik_t[q, i, j] W[i, m_N, s] W[j, m_D, s], q = (m, p):
    # one matrix product per spread (einsum, with s shared by both factors, loops)
    z = {t: np.stack([w[:, :, k].T @ lik[t] @ w[:, :, k] for k in range(POP_SPREADS.size)],
                     axis=-1)
         for t in targets}
    log_prior_bias = np.repeat(-0.5 * (BIAS_GRID / BIAS_PRIOR_SCALE) ** 2, GROWTH_GRID.size)
    log_pop = (sum(np.log(z[t] + 1e-300) for t in targets)
               + log_prior_bias[:, None, None, None]
               + _log_prior_scale(POP_MEDIANS)[None, :, None, None]
               + _log_prior_scale(POP_MEDIANS)[None, None, :, None])
    pop = np.exp(log_pop - np.max(log_pop))
    return _Hyper(targets, lik, w, z, pop / pop.sum())


def hyper_posterior(residuals: Sequence[FoldResidual]) -> dict[str, np.ndarray]:
    """Posterior weights of ``(m, p, tau_N, tau_D)`` per target on the grid.

    Each target has its own scales, drawn from one population: ``log tau_t ~ Normal(
    log mu, s)`` for ``tau_N`` and ``tau_D`` (medians ``mu_N``, ``mu_D`` on
    :data:`POP_MEDIANS` under the half-Cauchy prior of :data:`TAU_PRIOR_SCALE`, a common
    spread ``s`` uniform on :data:`POP_SPREADS`). The growth ``p`` (uniform on
    :data:`GROWTH_GRID`) and the bias ``m`` (Normal(0, :data:`BIAS_PRIOR_SCALE`) on
    :data:`BIAS_GRID`, in units of each target's scale) are shared. The targets share
    runs, architecture and recipe, so the population pins what a target's two or
    three folds leave loose, while a target the law fits far worse than the others
    keeps its own larger scale instead of widening every target's intervals; a law
    whose folds all err one way learns that direction from all of them. Computed
    exactly on the grid.

    Returns
    -------
    dict target -> ndarray, shape ``(m, p, tau_N, tau_D)``
        Normalised weights of each target's (marginal) posterior; the joint draws of
        all targets are :func:`discrepancies`'.
    """
    h = _hyper(residuals)
    shared = (BIAS_GRID.size, GROWTH_GRID.size)
    out = {}
    for t in h.targets:
        # sum over the population of pop * lik_t W W / Z_t
        ratio = h.pop / (h.z[t] + 1e-300)
        post = h.lik[t] * sum(h.w[:, :, k] @ ratio[..., k] @ h.w[:, :, k].T
                              for k in range(POP_SPREADS.size))
        out[t] = (post / post.sum()).reshape(*shared, TAU_GRID.size, TAU_GRID.size)
    return out


def _joint_draws(rng: np.random.Generator, h: _Hyper, n: int
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``n`` draws of the joint posterior: the shared bias and growth indices, and each
    target's scale indices given them (draw ``s`` of every target is one draw)."""
    flat = rng.choice(h.pop.size, n, p=h.pop.ravel())
    q, mu_n, mu_d, spread = np.unravel_index(flat, h.pop.shape)
    scales = {t: (np.empty(n, int), np.empty(n, int)) for t in h.targets}
    for value in np.unique(flat):
        at = np.flatnonzero(flat == value)
        first = at[0]
        for t in h.targets:
            weights = (h.lik[t][q[first]] * h.w[:, mu_n[first], spread[first]][:, None]
                       * h.w[:, mu_d[first], spread[first]][None, :]).ravel()
            pick = rng.choice(weights.size, at.size, p=weights / weights.sum())
            scales[t][0][at], scales[t][1][at] = np.unravel_index(pick, h.lik[t].shape[1:])
    im, ip = np.unravel_index(q, (BIAS_GRID.size, GROWTH_GRID.size))
    return im, ip, scales


def fold_residuals(key: jax.Array, fit_result: Fit, table: RunTable, *,
                   on_fold: Callable[[str, int, int], None] | None = None,
                   ) -> list[FoldResidual]:
    """Every (nested size fold, target) of ``fit_result`` refitted and scored.

    Empty when the law does not read ``N`` or the runs have fewer than three model
    sizes; a fold whose refit of a target fails (too few rows, or a non-positive
    predicted loss) is left out for that target. See :func:`learn_discrepancy`.
    """
    law = fit_result.law
    if "N" not in law.uses:
        return []
    index = table.frame.index.to_numpy(int)
    first = next(iter(fit_result.targets.values()))
    settings = first.settings
    options = {"likelihood": first.likelihood,
               "n_starts": min(FOLD_STARTS, settings.n_starts if settings else FOLD_STARTS)}
    rows = np.isin(index, np.concatenate([tf.rows for tf in fit_result.targets.values()]))
    folds = size_folds(table, rows)
    residuals: list[FoldResidual] = []
    for i, fold in enumerate(folds):
        if on_fold:
            on_fold(fold.name, i, len(folds))
        for j, target in enumerate(fit_result.targets):
            sub = jax.random.fold_in(jax.random.fold_in(key, i), j)
            try:
                residuals.append(fold_residual(sub, law, table, fold, target, **options))
            except BayesmixError:
                continue  # too few rows in the fold, or a refit that cannot extrapolate
    return residuals


def discrepancies(key: jax.Array, fit_result: Fit, table: RunTable,
                  residuals: Sequence[FoldResidual]) -> dict[str, Discrepancy]:
    """The discrepancy of every target with a scored fold: :data:`HYPER_DRAWS` joint
    draws of the grid posterior (:func:`hyper_posterior`), ``key`` picking them.

    Draw ``s`` of every target is one draw of the joint posterior: the bias ``m`` and
    the growth ``p`` are shared, so pairing targets' draws by index (as decisions over
    several targets do) keeps their common direction.
    """
    if not residuals:
        return {}
    im, ip, scales = _joint_draws(numpy_rng(key), _hyper(residuals), HYPER_DRAWS)
    return {target: _term(table, tf.rows, [r for r in residuals if r.target == target],
                          *scales[target], ip, im)
            for target, tf in fit_result.targets.items()
            if target in scales}  # else no fold of this target could be scored


def _term(table: RunTable, rows: np.ndarray, mine: Sequence[FoldResidual], itn: np.ndarray,
          itd: np.ndarray, ip: np.ndarray, im: np.ndarray) -> Discrepancy:
    """One target's term from its grid indices per hyper draw: scales ``itn``, ``itd``,
    growth ``ip`` and bias ``im`` (on the target's training ``rows`` and ``mine``, its
    folds)."""
    # when no fold reached beyond the training D (by more than a rounding, SAME_SIZE)
    # nothing was learnt of the error in D:
    # tau_D's draws are then its prior's (the likelihood is flat in it), with no bias
    d_learnt = any(np.any(r.d_d > SAME_SIZE) for r in mine)
    tau_d = TAU_GRID[itd]
    trained = np.isin(table.frame.index.to_numpy(int), rows)
    return Discrepancy(
        log_n_max=float(np.log(table.frame["N"].to_numpy(float)[trained].max())),
        log_d_max=float(np.log(table.frame["D"].to_numpy(float)[trained].max())),
        tau_n=TAU_GRID[itn], tau_d=tau_d, growth=GROWTH_GRID[ip],
        folds=tuple(dict.fromkeys(r.fold for r in mine)),
        bias_n=BIAS_GRID[im] * TAU_GRID[itn],
        bias_d=BIAS_GRID[im] * tau_d if d_learnt else np.zeros(itd.size), d_learnt=d_learnt)


def learn_discrepancy(key: jax.Array, fit_result: Fit, table: RunTable, *,
                      on_fold: Callable[[str, int, int], None] | None = None,
                      ) -> dict[str, Discrepancy]:
    """The discrepancy of every target of ``fit_result``, learnt from its own runs.

    :func:`fold_residuals` then :func:`discrepancies`.

    Parameters
    ----------
    key : jax.Array
    fit_result : Fit
    table : RunTable
        The rows the fit was trained on (row numbers of its source).
    on_fold : callable, optional
        ``on_fold(name, index, count)`` before each fold.

    Returns
    -------
    dict target -> Discrepancy
        Empty when the law does not read ``N`` or the runs have fewer than three model
        sizes (nothing to extrapolate from). A fold whose refit of a target fails (too
        few rows, or a non-positive predicted loss) is left out for that target; a
        target with no fold left gets no entry, so a finished NUTS fit is never lost
        to its discrepancy.
    """
    key_fit, key_draw = jax.random.split(key)
    residuals = fold_residuals(key_fit, fit_result, table, on_fold=on_fold)
    return discrepancies(key_draw, fit_result, table, residuals)


def try_learn_discrepancy(key: jax.Array, fit_result: Fit, table: RunTable, *,
                          on_fold: Callable[[str, int, int], None] | None = None,
                          ) -> tuple[Fit, str | None]:
    """``fit_result`` with its discrepancy (:func:`learn_discrepancy`), and why there is
    none when folds existed but nothing was learnt.

    A finished NUTS fit is never lost to its discrepancy: when learning it raises (any
    error, memory included), the fit comes back unchanged with the error's first line.

    Returns
    -------
    (Fit, str or None)
        The reason is None when a term was learnt, or when none could be (a law that
        does not read ``N``, fewer than three sizes).
    """
    try:
        learnt = learn_discrepancy(key, fit_result, table, on_fold=on_fold)
    except Exception as exc:  # noqa: BLE001 (the NUTS fit is kept; the reason is said)
        return fit_result, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    folds = size_folds(table, np.ones(len(table.frame), bool))
    failed = (None if learnt or "N" not in fit_result.law.uses or not folds
              else f"none of {len(folds)} fold(s) could be refitted to extrapolate")
    return fit_result.with_discrepancy(learnt), failed
