"""The Monte Carlo position P&L held factored (`PositionDraws`): its tail means and weighted
sums equal the same of the (draws x positions) array built the plain way, and the contributions
of a factored ScenarioPnl equal those of the dense one."""

import numpy as np
import pytest

from analytics.contributions import ScenarioPnl
from analytics.montecarlo import PositionDraws


@pytest.fixture
def draws():
    rng = np.random.default_rng(7)
    moves = rng.normal(0, 0.01, (5000, 6))
    dollar = rng.normal(0, 1e5, (9, 6))
    rows = np.array([1, 4, 8])  # three option legs: no linear exposure of their own
    dollar[rows] = 0.0
    legs = rng.normal(0, 2e3, (5000, 3))
    return PositionDraws(moves, dollar, legs, rows)


def _plain(d: PositionDraws) -> np.ndarray:
    """Each position's P&L draw by draw: a stock's moves . dollar, a leg its column."""
    out = np.zeros(d.shape)
    for i in range(d.shape[1]):
        out[:, i] = d.moves @ d.dollar[i]
    for column, row in enumerate(d.rows):
        out[:, row] = d.legs[:, column]
    return out


def test_dense_is_the_positions_pnl(draws):
    np.testing.assert_allclose(draws.dense(), _plain(draws), rtol=1e-13, atol=1e-9)
    assert draws.shape == (5000, 9)


def test_tail_mean_and_weighted_sum_equal_the_arrays(draws):
    full = _plain(draws)
    book = full.sum(axis=1)
    tail = book <= np.quantile(book, 0.01)
    np.testing.assert_allclose(draws.tail_mean(tail), full[tail].mean(axis=0), rtol=1e-12)
    centred = book - book.mean()
    np.testing.assert_allclose(draws.weighted(centred), full.T @ centred, rtol=1e-11)


def test_contributions_from_the_factors_equal_the_dense_ones(draws):
    """ES components over the tail and volatility components, noise shared by weights, as the
    dense ScenarioPnl gives them; both sum to their totals."""
    full = _plain(draws)
    noise = np.random.default_rng(8).normal(0, 500, 5000)
    weights = np.linspace(1, 9, 9) / np.linspace(1, 9, 9).sum()
    book = full.sum(axis=1) + noise
    exposure = np.ones(9)
    factored, dense = ScenarioPnl(draws, noise, weights), ScenarioPnl(full, noise, weights)
    tail = book <= np.quantile(book, 0.025)
    np.testing.assert_allclose(factored.tail_mean(tail), dense.tail_mean(tail), rtol=1e-12)
    assert factored.tail_mean(tail).sum() == pytest.approx(book[tail].mean(), rel=1e-12)
    vol_f, vol_d = factored.volatility(book, exposure), dense.volatility(book, exposure)
    np.testing.assert_allclose(vol_f.components, vol_d.components, rtol=1e-11)
    assert vol_f.components.sum() == pytest.approx(np.std(book, ddof=1), rel=1e-12)
