"""Euler risk contributions against independent references (no database): risk.py's totals on the
same inputs, central finite differences of those totals, a hand-worked two-position book, pandas
and numpy on arch's real S&P 500 / NASDAQ series, and pandas group-bys.

Tolerances: components add up to their total to 1e-9 relative (rounding only); totals equal
risk.py's to 1e-12 relative (the same operations); marginals agree with central differences to
1e-6 relative (atol 1e-6 x the largest marginal, for hedges whose marginal is near zero)."""

from __future__ import annotations

import math
from functools import cache
from typing import TypedDict

import numpy as np
import pandas as pd
import pytest
from arch.data import nasdaq, sp500
from scipy import stats

from analytics.calculations import risk
from analytics.calculations.contributions import (
    group_contributions,
    parametric_contributions,
    scenario_contributions,
    scenario_es_contributions,
    scenario_var_contributions,
    scenario_volatility_contributions,
)

SUM_RTOL = 1e-9
TOTAL_RTOL = 1e-12
FD_RTOL = 1e-6


class FactorBook(TypedDict):
    dollar_exposures: np.ndarray
    factor_cov: np.ndarray
    specific_var: np.ndarray
    exposures: np.ndarray


def _factor_book(positions: int = 40, factors: int = 5, seed: int = 3) -> FactorBook:
    """Long and short positions ($10k-$2m), betas 0.2-1.5 on K factors (daily vols ~1%),
    specific vols 0.5%-3% a day."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.01, (factors, factors))
    cov = loadings @ loadings.T + np.diag(rng.uniform(1e-5, 4e-5, factors))
    exposures = rng.choice([-1.0, 1.0], positions, p=[0.3, 0.7]) * rng.uniform(1e4, 2e6, positions)
    betas = rng.uniform(0.2, 1.5, (positions, factors)) * (rng.random((positions, factors)) < 0.6)
    residual_vol = rng.uniform(0.005, 0.03, positions)
    return {
        "dollar_exposures": exposures[:, None] * betas,
        "factor_cov": cov,
        "specific_var": (exposures * residual_vol) ** 2,
        "exposures": exposures,
    }


def _scenario_book(
    scenarios: int = 500, positions: int = 30, seed: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Fat-tailed (Student t, 4 dof) correlated daily returns x signed exposures: (S, P) P&L."""
    rng = np.random.default_rng(seed)
    exposures = rng.choice([-1.0, 1.0], positions, p=[0.3, 0.7]) * rng.uniform(1e4, 1e6, positions)
    market = rng.standard_t(4, (scenarios, 1)) * 0.01
    returns = (
        market * rng.uniform(0.3, 1.5, positions) + rng.standard_t(4, (scenarios, positions)) * 0.01
    )
    return returns * exposures, exposures


def _bumped_rows(matrix: np.ndarray, i: int, factor: float) -> np.ndarray:
    bumped = matrix.copy()
    bumped[i] *= factor
    return bumped


def _assert_marginals(marginals: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(
        marginals, expected, rtol=FD_RTOL, atol=FD_RTOL * np.max(np.abs(expected))
    )


# --- parametric ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("confidence", "horizon"), [(0.99, 1), (0.95, 10), (0.975, 1)])
def test_parametric_components_sum_to_risk_totals(confidence, horizon):
    book = _factor_book()
    result = parametric_contributions(**book, confidence=confidence, horizon_days=horizon)
    d = book["dollar_exposures"].sum(axis=0)
    residual = book["specific_var"].sum()
    var = risk.parametric_var(d, book["factor_cov"], residual, confidence, horizon)
    z = stats.norm.ppf(confidence)
    np.testing.assert_allclose(result.var.total, var, rtol=TOTAL_RTOL)
    np.testing.assert_allclose(result.volatility.total * z * math.sqrt(horizon), var, rtol=1e-14)
    # Normal ES (risk.py has none): -E[L | L <= -VaR] for L ~ N(0, sigma^2 h), by quadrature
    # on the standard normal, scaled by sigma sqrt(h).
    scale = result.volatility.total * math.sqrt(horizon)
    es = -stats.norm.expect(lambda x: x, ub=-z, conditional=True) * scale
    np.testing.assert_allclose(result.es.total, es, rtol=1e-8)
    for allocation in (result.volatility, result.var, result.es):
        np.testing.assert_allclose(allocation.components.sum(), allocation.total, rtol=SUM_RTOL)
        np.testing.assert_allclose(allocation.shares.sum(), 1.0, rtol=SUM_RTOL)


def test_parametric_factor_and_specific_split_adds_up():
    book = _factor_book()
    result = parametric_contributions(**book, confidence=0.99)
    cov, D, s = book["factor_cov"], book["dollar_exposures"], book["specific_var"]
    sigma = result.volatility.total
    d = D.sum(axis=0)
    np.testing.assert_allclose(result.volatility.specific, s / sigma, rtol=1e-14)
    np.testing.assert_allclose(result.volatility.systematic, D @ cov @ d / sigma, rtol=1e-12)
    for allocation in (result.volatility, result.var, result.es):
        np.testing.assert_allclose(
            allocation.systematic + allocation.specific, allocation.components, rtol=1e-14
        )
        np.testing.assert_allclose(
            allocation.factors.sum() + allocation.specific_total, allocation.total, rtol=SUM_RTOL
        )
        np.testing.assert_allclose(
            allocation.factors.sum(), allocation.systematic.sum(), rtol=SUM_RTOL
        )
        np.testing.assert_allclose(allocation.specific_total, allocation.specific.sum(), rtol=1e-12)


def test_parametric_marginals_match_central_differences_of_parametric_var():
    """Position i scaled by (1 +/- h): its factor row by (1 +/- h), its specific variance by
    (1 +/- h)^2; dVaR/de_i ~ (VaR+ - VaR-) / (2 h e_i)."""
    book = _factor_book()
    cov, D, s, e = (
        book[k] for k in ("factor_cov", "dollar_exposures", "specific_var", "exposures")
    )
    result = parametric_contributions(**book, confidence=0.99, horizon_days=5)
    h = 1e-5

    def total(i: int, factor: float) -> float:
        bumped_s = s.copy()
        bumped_s[i] *= factor**2
        d = _bumped_rows(D, i, factor).sum(axis=0)
        return risk.parametric_var(d, cov, bumped_s.sum(), 0.99, 5)

    fd = np.array([(total(i, 1 + h) - total(i, 1 - h)) / (2 * h * e[i]) for i in range(e.size)])
    _assert_marginals(result.var.marginals, fd)
    np.testing.assert_allclose(result.var.marginals * e, result.var.components, rtol=1e-14)


def test_parametric_two_positions_hand_worked():
    """Long $1,000,000 of a stock with daily vol sigma1 = 2%, short $500,000 of one with
    sigma2 = 3%, correlation rho = 0.8, no specific risk (each stock its own factor).
    Dollar vols: 1,000,000 x 0.02 = 20,000 and -500,000 x 0.03 = -15,000.
    Book variance = 20,000^2 + 15,000^2 + 2 x 0.8 x 20,000 x (-15,000)
                  = 400,000,000 + 225,000,000 - 480,000,000 = 145,000,000;
    sigma = sqrt(145,000,000) = 12,041.594578792296.
    cov(P1, book) = 20,000^2 + 0.8 x 20,000 x (-15,000) = 400,000,000 - 240,000,000 = 160,000,000
      -> c1 = 160,000,000 / 12,041.594578792296 = 13,287.276776598395
    cov(P2, book) = 15,000^2 + 0.8 x 20,000 x (-15,000) = 225,000,000 - 240,000,000 = -15,000,000
      -> c2 = -15,000,000 / 12,041.594578792296 = -1,245.6821978060996 (the hedge: negative)
    c1 + c2 = 145,000,000 / sigma = sigma. At 99%, z = 2.3263478740408408:
    VaR = 28,012.93794843517, VaR_1 = 30,910.828081031912, VaR_2 = -2,897.8901325967413.
    Marginals: 13,287.2768 / 1,000,000 = 0.013287276776598396 per dollar; -1,245.6822 / -500,000
    = 0.002491364395612199 (making the short smaller adds risk). Shares 110.3% and -10.3%."""
    sigma1, sigma2, rho = 0.02, 0.03, 0.8
    e = np.array([1_000_000.0, -500_000.0])
    cov = np.array([[sigma1**2, rho * sigma1 * sigma2], [rho * sigma1 * sigma2, sigma2**2]])
    result = parametric_contributions(np.diag(e), cov, np.zeros(2), exposures=e, confidence=0.99)
    np.testing.assert_allclose(result.volatility.total, 12_041.594578792296, rtol=1e-12)
    np.testing.assert_allclose(
        result.volatility.components, [13_287.276776598395, -1_245.6821978060996], rtol=1e-12
    )
    np.testing.assert_allclose(result.var.total, 28_012.93794843517, rtol=1e-12)
    np.testing.assert_allclose(
        result.var.components, [30_910.828081031912, -2_897.8901325967413], rtol=1e-12
    )
    np.testing.assert_allclose(
        result.volatility.marginals, [0.013287276776598396, 0.002491364395612199], rtol=1e-12
    )
    np.testing.assert_allclose(result.volatility.shares, [160 / 145, -15 / 145], rtol=1e-12)
    # Each stock is its own factor: the factor split is the position split.
    np.testing.assert_allclose(result.volatility.factors, result.volatility.components, rtol=1e-12)
    assert result.volatility.specific_total == 0.0


def test_parametric_one_position_holds_all_the_risk():
    book = _factor_book(positions=1)
    result = parametric_contributions(**book, confidence=0.99)
    for allocation in (result.volatility, result.var, result.es):
        np.testing.assert_allclose(allocation.shares, [1.0], rtol=1e-12)


def test_parametric_zero_exposure_has_nan_marginal_and_zero_book_nan_shares():
    book = _factor_book(positions=5)
    book["dollar_exposures"][2] = 0.0
    book["specific_var"][2] = 0.0
    book["exposures"][2] = 0.0
    result = parametric_contributions(**book, confidence=0.99)
    assert result.var.components[2] == 0.0
    assert np.isnan(result.var.marginals[2])
    assert np.isfinite(np.delete(result.var.marginals, 2)).all()

    flat = parametric_contributions(
        np.zeros((3, 5)), book["factor_cov"], np.zeros(3), exposures=np.ones(3), confidence=0.99
    )
    assert flat.var.total == 0.0
    np.testing.assert_array_equal(flat.var.components, 0.0)
    assert np.isnan(flat.var.marginals).all() and np.isnan(flat.var.shares).all()


def test_parametric_refuses_bad_inputs():
    book = _factor_book(positions=4)
    with pytest.raises(ValueError, match="specific_var must be non-negative"):
        parametric_contributions(**(book | {"specific_var": -book["specific_var"]}), confidence=0.9)
    with pytest.raises(ValueError, match="factor_cov"):
        parametric_contributions(**(book | {"factor_cov": np.eye(3)}), confidence=0.9)
    with pytest.raises(ValueError, match="exposures"):
        parametric_contributions(**(book | {"exposures": np.ones(3)}), confidence=0.9)
    with pytest.raises(ValueError, match="confidence"):
        parametric_contributions(**book, confidence=1.0)


# --- scenarios -----------------------------------------------------------------------------------


def _monte_carlo_book(n: int = 2_000) -> tuple[np.ndarray, FactorBook]:
    book = _factor_book(positions=25)
    D, cov = book["dollar_exposures"], book["factor_cov"]
    moves = risk.monte_carlo_moves(cov, n=n, seed=17, horizon_days=10)
    return moves @ D.T, book


@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.975])
def test_historical_components_sum_to_risk_totals(confidence):
    pnl, e = _scenario_book()
    result = scenario_contributions(pnl, exposures=e, confidence=confidence)
    book = pnl.sum(axis=1)
    np.testing.assert_allclose(
        result.var.total, risk.historical_var(book, confidence), rtol=TOTAL_RTOL
    )
    np.testing.assert_allclose(
        result.es.total, risk.expected_shortfall(book, confidence), rtol=TOTAL_RTOL
    )
    np.testing.assert_allclose(
        result.volatility.total * math.sqrt(risk.TRADING_DAYS),
        risk.annualized_volatility(book),
        rtol=TOTAL_RTOL,
    )
    for allocation in (result.var, result.es, result.volatility):
        np.testing.assert_allclose(allocation.components.sum(), allocation.total, rtol=SUM_RTOL)
    assert result.observations == pnl.shape[0]


def test_monte_carlo_components_sum_to_monte_carlo_var_totals():
    pnl, book = _monte_carlo_book()
    D, cov = book["dollar_exposures"], book["factor_cov"]
    var, es = risk.monte_carlo_var(
        cov,
        lambda moves: (moves @ D.T).sum(axis=1),
        n=2_000,
        seed=17,
        confidence=0.99,
        horizon_days=10,
    )
    result = scenario_contributions(pnl, exposures=book["exposures"], confidence=0.99)
    np.testing.assert_allclose(result.var.total, var, rtol=TOTAL_RTOL)
    np.testing.assert_allclose(result.es.total, es, rtol=TOTAL_RTOL)
    for allocation in (result.var, result.es, result.volatility):
        np.testing.assert_allclose(allocation.components.sum(), allocation.total, rtol=SUM_RTOL)


def test_monte_carlo_components_converge_to_parametric_ones():
    """A linear book without specific risk: Monte Carlo's ES and volatility components estimate
    the delta-normal ones (sampling error ~ 1/sqrt(tail size): 5% of the total allowed)."""
    pnl, book = _monte_carlo_book(n=40_000)
    no_specific = book | {"specific_var": np.zeros_like(book["specific_var"])}
    parametric = parametric_contributions(**no_specific, confidence=0.975, horizon_days=10)
    mc = scenario_contributions(pnl, exposures=book["exposures"], confidence=0.975)
    np.testing.assert_allclose(
        mc.es.components, parametric.es.components, atol=0.05 * parametric.es.total
    )
    np.testing.assert_allclose(
        mc.volatility.components,
        parametric.volatility.components * math.sqrt(10),
        atol=0.05 * parametric.volatility.total * math.sqrt(10),
    )


def test_scenario_es_and_var_marginals_match_central_differences():
    """On fixed scenarios, position i's P&L scaled by (1 +/- h): while the tail set (and the VaR
    scenario) stays the same, ES and VaR are linear in it and the difference quotient is exact
    up to rounding."""
    pnl, e = _scenario_book()
    h = 1e-6
    result = scenario_contributions(pnl, exposures=e, confidence=0.975)
    tail = pnl.sum(axis=1) <= -result.var.total

    def totals(i: int, factor: float) -> tuple[float, float, float]:
        bumped = _bumped_rows(pnl.T, i, factor).T
        book = bumped.sum(axis=1)
        assert ((book <= -risk.historical_var(book, 0.975)) == tail).all()
        return (
            risk.historical_var(book, 0.975),
            risk.expected_shortfall(book, 0.975),
            float(np.std(book, ddof=1)),
        )

    up = np.array([totals(i, 1 + h) for i in range(e.size)])
    down = np.array([totals(i, 1 - h) for i in range(e.size)])
    fd = (up - down) / (2 * h * e[:, None])
    _assert_marginals(result.var.marginals, fd[:, 0])
    _assert_marginals(result.es.marginals, fd[:, 1])
    _assert_marginals(result.volatility.marginals, fd[:, 2])


def test_scenario_var_components_are_the_var_scenario_and_window_rescales():
    pnl, e = _scenario_book()
    book = pnl.sum(axis=1)
    k = math.ceil(500 * 0.05)  # 25
    var_row = np.argsort(book)[k - 1]
    exact = scenario_var_contributions(pnl, exposures=e, confidence=0.95)
    np.testing.assert_array_equal(exact.components, -pnl[var_row])
    smooth = scenario_var_contributions(pnl, exposures=e, confidence=0.95, window=5)
    rows = np.argsort(book)[k - 1 - 5 : k + 5]
    raw = -pnl[rows].mean(axis=0)
    np.testing.assert_allclose(smooth.components, raw * exact.total / raw.sum(), rtol=1e-12)
    np.testing.assert_allclose(smooth.components.sum(), exact.total, rtol=SUM_RTOL)


def test_scenario_var_window_straddling_zero_is_refused():
    """Book P&L -2..2 in 101 even steps: at 50% the VaR scenario is the 0 one, and a window of 5
    either side averages to a zero loss that no rescaling can turn into the VaR."""
    pnl = np.linspace(-1.0, 1.0, 101)[:, None] * np.array([1.0, 1.0])
    exact = scenario_var_contributions(pnl, exposures=np.ones(2), confidence=0.5)
    assert exact.total == 0.0
    np.testing.assert_array_equal(exact.components, 0.0)
    with pytest.raises(ValueError, match="sign"):
        scenario_var_contributions(pnl, exposures=np.ones(2), confidence=0.5, window=5)


def test_scenario_ties_are_averaged_and_in_the_tail():
    """Integer P&L in $1,000 steps: many scenarios share the book P&L x_(k). VaR components are
    the mean over those tied scenarios, ES's tail includes every one of them."""
    rng = np.random.default_rng(9)
    pnl = rng.integers(-5, 6, (200, 4)) * 1_000.0
    e = np.array([1e5, 2e5, -1e5, 5e4])
    book = pnl.sum(axis=1)
    quantile = np.sort(book)[math.ceil(200 * 0.05) - 1]
    assert (book == quantile).sum() > 1
    result = scenario_contributions(pnl, exposures=e, confidence=0.95)
    np.testing.assert_allclose(
        result.var.components, -pnl[book == quantile].mean(axis=0), rtol=1e-14
    )
    np.testing.assert_allclose(
        result.es.components, -pnl[book <= quantile].mean(axis=0), rtol=1e-14
    )
    np.testing.assert_allclose(
        result.var.components.sum(), risk.historical_var(book, 0.95), rtol=SUM_RTOL
    )
    np.testing.assert_allclose(
        result.es.components.sum(), risk.expected_shortfall(book, 0.95), rtol=SUM_RTOL
    )
    windowed = scenario_var_contributions(pnl, exposures=e, confidence=0.95, window=3)
    np.testing.assert_allclose(windowed.components.sum(), result.var.total, rtol=SUM_RTOL)


def test_scenario_one_position_and_zero_exposure():
    pnl, e = _scenario_book(positions=1)
    for allocation in (
        scenario_var_contributions(pnl, exposures=e, confidence=0.99),
        scenario_es_contributions(pnl, exposures=e, confidence=0.99),
        scenario_volatility_contributions(pnl, exposures=e),
    ):
        np.testing.assert_allclose(allocation.shares, [1.0], rtol=1e-12)

    pnl, e = _scenario_book(positions=3)
    pnl[:, 1], e[1] = 0.0, 0.0
    result = scenario_contributions(pnl, exposures=e, confidence=0.99)
    for allocation in (result.var, result.es, result.volatility):
        assert allocation.components[1] == 0.0 and np.isnan(allocation.marginals[1])


def test_scenario_nan_rows_dropped_as_risk_does_and_infinities_refused():
    pnl, e = _scenario_book(scenarios=100)
    pnl[[7, 40], [2, 11]] = np.nan
    result = scenario_contributions(pnl, exposures=e, confidence=0.95)
    assert result.observations == 98
    np.testing.assert_allclose(
        result.es.total, risk.expected_shortfall(pnl.sum(axis=1), 0.95), rtol=TOTAL_RTOL
    )
    clean = scenario_contributions(np.delete(pnl, [7, 40], axis=0), exposures=e, confidence=0.95)
    np.testing.assert_array_equal(result.es.components, clean.es.components)
    np.testing.assert_array_equal(result.volatility.components, clean.volatility.components)

    pnl[3, 4] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        scenario_contributions(pnl, exposures=e, confidence=0.95)
    overflow = np.full((100, 2), 1e308)
    with pytest.raises(ValueError, match="overflow"):
        scenario_es_contributions(overflow, exposures=np.ones(2), confidence=0.95)
    with pytest.raises(risk.InsufficientHistory):
        scenario_es_contributions(pnl[:59, :2], exposures=e[:2], confidence=0.95)


# --- real series ---------------------------------------------------------------------------------


@cache
def _sp500_nasdaq_pnl() -> pd.DataFrame:
    """Daily P&L of long $1,000,000 S&P 500 and short $400,000 NASDAQ Composite (Adj Close simple
    returns x exposure), 1999-2018 as arch ships them."""
    closes = pd.DataFrame(
        {"spx": sp500.load()["Adj Close"], "ndx": nasdaq.load()["Adj Close"]}
    ).dropna()
    return closes.pct_change().dropna() * np.array([1_000_000.0, -400_000.0])


@pytest.mark.parametrize(("confidence", "tail_per_mille"), [(0.975, 25), (0.99, 10)])
def test_real_series_es_and_volatility_components_match_pandas_and_numpy(
    confidence, tail_per_mille
):
    frame = _sp500_nasdaq_pnl()
    e = np.array([1_000_000.0, -400_000.0])
    result = scenario_contributions(frame.to_numpy(), exposures=e, confidence=confidence)

    book = frame.sum(axis=1).sort_values()
    n = len(book)
    k = -(-n * tail_per_mille // 1000)  # ceil with integers
    assert book.iloc[k] > book.iloc[k - 1]  # no tie at the boundary: the tail is the k worst
    expected_es = -frame.loc[book.index[:k]].mean()
    np.testing.assert_allclose(result.es.components, expected_es.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(result.var.components, -frame.loc[book.index[k - 1]], rtol=0)

    cov = np.cov(frame.to_numpy(), rowvar=False, ddof=1)
    np.testing.assert_allclose(
        result.volatility.components, cov.sum(axis=1) / math.sqrt(cov.sum()), rtol=1e-10
    )
    # The short NASDAQ leg hedges the long S&P 500: it takes risk away in every measure.
    assert (result.es.components[1] < 0) and (result.volatility.components[1] < 0)


# --- groups --------------------------------------------------------------------------------------


def test_group_by_single_key_partitions_the_total():
    book = _factor_book(positions=12)
    result = parametric_contributions(**book, confidence=0.99).var
    sectors = np.array(["Tech", "Energy", "Tech", "Health", "Energy", "Tech"] * 2)
    groups = group_contributions(
        result.components, sectors, exposures=book["exposures"], total=result.total
    )
    expected = (
        pd.DataFrame({"g": sectors, "c": result.components, "e": book["exposures"]})
        .groupby("g")
        .agg(c=("c", "sum"), e=("e", "sum"), n=("c", "size"))
    )
    assert [g.component for g in groups] == sorted((g.component for g in groups), reverse=True)
    for group in groups:
        np.testing.assert_allclose(group.component, expected.loc[group.name, "c"], rtol=1e-12)
        np.testing.assert_allclose(group.exposure, expected.loc[group.name, "e"], rtol=1e-12)
        assert group.positions == expected.loc[group.name, "n"]
        np.testing.assert_allclose(group.share, group.component / result.total, rtol=1e-14)
    np.testing.assert_allclose(sum(g.component for g in groups), result.total, rtol=SUM_RTOL)


def test_group_by_tags_counts_a_position_in_each_of_its_tags():
    components = np.array([10.0, 20.0, 30.0, 40.0])
    exposures = np.array([100.0, -200.0, 300.0, 400.0])
    tags = [["growth", "us"], ["us"], [], ["growth", "growth"]]
    groups = group_contributions(components, tags, exposures=exposures, total=100.0)
    exploded = (
        pd.DataFrame({"tag": [sorted(set(t)) for t in tags], "c": components, "e": exposures})
        .explode("tag")
        .dropna()
        .groupby("tag")
        .agg(c=("c", "sum"), e=("e", "sum"), n=("c", "size"))
    )
    assert [g.name for g in groups] == ["growth", "us"]  # 50 before 30
    for group in groups:
        assert group.component == exploded.loc[group.name, "c"]
        assert group.exposure == exploded.loc[group.name, "e"]
        assert group.positions == exploded.loc[group.name, "n"]
    assert [g.share for g in groups] == [0.5, 0.3]
    # Position 0 counts in both tags and position 2 in none: tags need not add up to the total.
    assert sum(g.component for g in groups) == 80.0
    with pytest.raises(TypeError, match="mixes"):
        group_contributions(components, ["a", ["b"], "c", "d"], exposures=exposures, total=1.0)
