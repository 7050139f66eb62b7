"""Predict losses from posterior draws (or a point estimate) of a law."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayesmix._errors import BayesmixError
from bayesmix.discrepancy import discrepancy_draws
from bayesmix.model import TargetPosterior, centred_inputs, noise_draws, on_likelihood_scale
from bayesmix.runs import SAME_SIZE, RunTable

QUANTILES = (0.05, 0.25, 0.75, 0.95)
"""The quantiles :func:`predict_table` writes: the 90 % and 50 % central intervals."""

__all__ = ["check_domains", "law_only", "predict_draws", "predict_table", "predictive_draws",
           "extrapolation_notes", "with_discrepancy", "with_input_columns"]


@partial(jax.jit, static_argnums=0)
def _mean_over_draws(law, params, log_n, log_d, h):
    """One program per law and shapes (the law static: a new ``jit`` per call would
    trace and lower again every time)."""
    return jax.vmap(lambda p: law.mean(p, log_n, log_d, h))(params)


def predict_draws(
    posterior: TargetPosterior, n_params, n_tokens, weights
) -> np.ndarray:
    """The law's mean at each run for every draw, shape ``(S, n)``.

    Parameters
    ----------
    posterior : TargetPosterior
    n_params, n_tokens : array_like, shape ``(n,)``
        Parameters and tokens.
    weights : array_like, shape ``(n, k)``
        Domain weights, in ``posterior.domains`` order.
    """
    log_n, log_d, h = centred_inputs(
        posterior.law, posterior.scales, n_params, n_tokens, weights, posterior.target_index
    )
    params = {name: jnp.asarray(value) for name, value in posterior.params.items()}
    return np.asarray(_mean_over_draws(posterior.law, params, log_n, log_d, h))


def predictive_draws(key: jax.Array, posterior: TargetPosterior, mean: np.ndarray, *,
                     log: bool = False) -> np.ndarray:
    """Posterior predictive losses (law mean plus Student-t noise), shape of ``mean``.

    With ``log`` the draws are of the log loss, taken without the round trip through
    ``exp`` (a heavy-tailed draw of a log-likelihood fit overflows to ``inf`` there); a
    raw-likelihood draw at or below zero is ``-inf``.
    """
    if posterior.noise is None:
        draws, scale = np.asarray(mean, float), "raw"
    else:
        loc = on_likelihood_scale(mean, posterior.likelihood)
        draws = noise_draws(key, posterior.noise["nu"][:, None], loc,
                            posterior.noise["sigma"][:, None])
        scale = posterior.likelihood
    if scale == "log":
        if log:
            return draws
        with np.errstate(over="ignore"):  # heavy-tailed draws may overflow to inf
            return np.exp(draws)
    if not log:
        return draws
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(draws > 0, np.log(np.where(draws > 0, draws, 1.0)), -np.inf)


def with_discrepancy(key: jax.Array, posterior: TargetPosterior, n_params, n_tokens,
                     *draws: np.ndarray, log: bool = False) -> tuple[np.ndarray, ...]:
    """``draws`` (each ``(S, n)``) times ``exp(delta)``, one draw of ``delta`` for all.

    The same ``delta`` multiplies every array (the law's mean and its posterior
    predictive share it); without a learnt discrepancy the draws come back as they
    are. Inside the training range ``delta`` is zero. With ``log`` the draws are log
    losses and ``delta`` is added.
    """
    if posterior.discrepancy is None:
        return draws
    delta = discrepancy_draws(key, posterior.discrepancy, n_params, n_tokens,
                              draws[0].shape[0])
    if log:
        return tuple(d + delta for d in draws)
    factor = np.exp(delta)
    return tuple(d * factor for d in draws)


def law_only(posteriors: Mapping[str, TargetPosterior]) -> dict[str, TargetPosterior]:
    """The posteriors without their discrepancy terms: the law's own predictive."""
    return {t: replace(p, discrepancy=None) for t, p in posteriors.items()}


def extrapolation_notes(posteriors: Mapping[str, TargetPosterior], n_params: Any,
                        n_tokens: Any) -> list[str]:
    """One line per target with runs at ``(n_params, n_tokens)`` where its intervals
    say less than a user may read in them.

    - Beyond its training range with no discrepancy term (fewer than three model
      sizes, a law without ``N``, or ``--no-discrepancy``): the law's own intervals,
      which under-cover there (``docs/calibration.md``).
    - Beyond its training ``D`` where no fold measured the law's error in ``D``
      (:attr:`bayesmix.discrepancy.Discrepancy.d_learnt`): that part of the interval
      is its prior's, wide by design.
    """
    n = np.atleast_1d(np.asarray(n_params, float))
    d = np.atleast_1d(np.asarray(n_tokens, float))
    notes = []
    for target, posterior in posteriors.items():
        term, scales = posterior.discrepancy, posterior.scales
        if term is not None:
            count = term.unlearnt_reach(n, d, SAME_SIZE)  # a rounding of D is no reach
            if count:
                notes.append(f"{target}: {count} run(s) beyond the tokens the training runs "
                             f"of their size or larger saw (at most "
                             f"{np.exp(term.log_d_max):.3g}), where no fold measured the "
                             f"law's error in D; the interval's D part is its prior's")
        elif scales.n_max is not None and scales.d_max is not None:
            beyond = ((np.log(n) - np.log(scales.n_max) > SAME_SIZE)
                      | (np.log(d) - np.log(scales.d_max) > SAME_SIZE))
            if beyond.any():
                notes.append(f"{target}: {int(beyond.sum())} run(s) beyond the training range "
                             f"(N {scales.n_max:.3g}, D {scales.d_max:.3g}) and no discrepancy "
                             f"term: the intervals there are the law's own, which hold less "
                             f"than they claim beyond the runs")
    return notes


def check_domains(posterior: TargetPosterior, table: RunTable) -> None:
    """Refuse a run table whose domains are not the ones ``posterior`` was trained on.

    Raises
    ------
    BayesmixError
        Naming the table, the target and both sets of domains.
    """
    if set(table.domains) != set(posterior.domains):
        raise BayesmixError(
            f"{table.source} has domains ({', '.join(table.domains)}) but the fit of "
            f"'{posterior.target}' was trained on ({', '.join(posterior.domains)})"
        )


def predict_table(
    key: jax.Array, posteriors: dict[str, TargetPosterior], table: RunTable
) -> pd.DataFrame:
    """Summaries of predictions for every row of ``table`` and every target.

    Columns after the input columns: ``T_mean``, ``T_median``, ``T_q05``, ``T_q25``,
    ``T_q75``, ``T_q95`` (the law's mean over draws) and ``T_pp_q05``, ``T_pp_q25``,
    ``T_pp_q75``, ``T_pp_q95`` (posterior predictive, with noise) for each target ``T``.
    A posterior with a learnt discrepancy has it in both (:func:`with_discrepancy`);
    remove it (``dataclasses.replace(p, discrepancy=None)``) for the law's own.

    Raises
    ------
    BayesmixError
        ``table``'s domains are not the ones a posterior was trained on.
    """
    for posterior in posteriors.values():
        check_domains(posterior, table)
    out = table.frame.copy()
    for target, posterior in posteriors.items():
        weights = out[[f"h_{d}" for d in posterior.domains]].to_numpy(float)
        key, sub = jax.random.split(key)
        mean = predict_draws(posterior, table.frame["N"], table.frame["D"], weights)
        pp = predictive_draws(sub, posterior, mean)
        mean, pp = with_discrepancy(jax.random.fold_in(sub, 1), posterior,
                                    table.frame["N"], table.frame["D"], mean, pp)
        out[f"{target}_mean"] = mean.mean(axis=0)
        out[f"{target}_median"] = np.median(mean, axis=0)
        for name, draws in (("", mean), ("_pp", pp)):
            for q in QUANTILES:
                out[f"{target}{name}_q{round(100 * q):02d}"] = np.quantile(draws, q, axis=0)
    return out


def with_input_columns(predictions: pd.DataFrame, table: RunTable,
                       inputs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The user's own columns of each predicted row, then the prediction columns.

    Parameters
    ----------
    predictions : DataFrame
        :func:`predict_table`'s output for ``table``: its canonical columns, then the
        prediction columns.
    table : RunTable
        The table predicted at; its index holds row numbers of ``inputs``.
    inputs : DataFrame
        The wide table ``table`` was loaded from, as read (the user's column names and
        cells; :attr:`bayesmix.ingest.RawTable.frame`), rows numbered from 1.

    Returns
    -------
    (DataFrame, list of str)
        ``inputs``' rows in ``table`` (same order), every column of them, then the
        prediction columns; and the input columns left out because a prediction column
        has their name (the prediction replaces them).
    """
    columns = list(predictions.columns[len(table.frame.columns):])
    replaced = [c for c in inputs.columns if c in set(columns)]
    out = inputs.loc[table.frame.index].drop(columns=replaced)
    return pd.concat([out, predictions.loc[table.frame.index, columns]], axis=1), replaced
