"""Confirming refits of a suggested batch (``bayesmix suggest --confirm``) with real
NUTS refits: slow (a fit and its refits compile for new row counts, 1-2 minutes);
tests/test_design.py checks the outcomes' rows and the refusals on every run."""

import jax
import numpy as np
import pytest

from bayesmix.confirm import confirm_batch
from bayesmix.design import DesignSettings, suggest_runs
from bayesmix.fit import fit
from bayesmix.laws import load_law
from bayesmix.simulate import simulate_runs

SETTINGS = {"chains": 2, "warmup": 150, "draws": 150}
TARGET = (7e9, 1.5e11)


@pytest.fixture(scope="module")
def world():
    """A small additive study (2 domains, 3 sizes, 6 mixtures), one target fitted, and
    a suggested batch of two runs."""
    law = load_law("additive")
    sim = simulate_runs(jax.random.key(3), law, 2, sizes=(5e7, 1e8, 2e8),
                        tokens_per_param=(5.0, 10.0, 20.0), n_mixtures=6)
    table = sim.table
    fitted = fit(jax.random.key(0), law, table, ["d0"], **SETTINGS)
    suggestion = suggest_runs(
        jax.random.key(1), fitted.posteriors, *TARGET, train_n=table.frame["N"].to_numpy(),
        train_d=table.frame["D"].to_numpy(), batch=2, n_random=8,
        settings=DesignSettings(n_draws=300, n_decisions=16, threshold=0.0))
    return table, fitted, suggestion


@pytest.fixture(scope="module")
def confirmed(world):
    table, fitted, suggestion = world
    return confirm_batch(jax.random.key(2), [fitted], table, suggestion, outcomes=2)


@pytest.mark.slow
def test_refits_confirm_the_batch(world, confirmed):
    _, _, suggestion = world
    assert confirmed.regret_before == suggestion.expected_regret
    assert confirmed.estimated_after == pytest.approx(
        max(0.0, suggestion.regret_thinned - suggestion.batch_gain))
    assert confirmed.regret_after.shape == (2,) and not confirmed.failures
    assert np.all(np.isfinite(confirmed.regret_after)) and np.all(confirmed.regret_after >= 0)
    # each refit has the batch's checkpoints: its regret is that of a new posterior
    assert not np.any(confirmed.regret_after == confirmed.regret_before)
    payload = confirmed.to_dict()
    assert payload["confirmed_regret_after"] == pytest.approx(confirmed.mean_after)
    assert len(payload["per_outcome"]) == 2


@pytest.mark.slow  # two worker processes compile the refits (about 40 s)
def test_refits_in_worker_processes_are_those_here(world, confirmed):
    table, fitted, suggestion = world
    pooled = confirm_batch(jax.random.key(2), [fitted], table, suggestion, outcomes=2,
                           workers=2)
    np.testing.assert_array_equal(pooled.regret_after, confirmed.regret_after)
    np.testing.assert_array_equal(pooled.draws, confirmed.draws)


@pytest.mark.slow
def test_cli_confirms_a_batch(world, tmp_path, capsys):
    import json

    from bayesmix.cli import main
    from bayesmix.store import save_fit

    table, fitted, _ = world
    save_fit(fitted, tmp_path / "fit")
    table.frame.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["suggest", str(tmp_path / "fit"), "--N", "7e9", "--D", "1.5e11",
                 "--batch", "2", "--draws", "300", "--mixtures", "8", "--threshold", "0",
                 "--confirm", "1", "--runs", str(tmp_path / "runs.csv"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    confirmed = payload["confirmation"]
    assert confirmed["outcomes"] == 1 and not confirmed["failures"]
    assert confirmed["estimated_regret_after"] == pytest.approx(
        payload["batch"]["expected_regret_after"])
    assert confirmed["confirmed_regret_after"] >= 0
