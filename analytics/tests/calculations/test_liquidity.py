"""Liquidity and concentration against a hand-worked book (no database).

The book (participation 20%):
  AAA long 30,000 shares at 50: exposure 1,500,000; volumes 90,000 / 110,000 alternating over
      the 20 sessions -> ADV 100,000; days = 30,000 / (0.2 x 100,000) = 1.5
  BBB short 80,000 shares at 25: exposure -2,000,000; 15 of 20 sessions with a volume of 40,000
      (5 without) -> ADV 40,000; days = 80,000 / (0.2 x 40,000) = 10
  CCC 10 calls at 5.00 (x100): exposure 5,000; position delta 600 shares; 12 sessions of
      500 / 1,500 (8 without) -> ADV 1,000; days = 600 / (0.2 x 1,000) = 3
Gross = 1,500,000 + 2,000,000 + 5,000 = 3,505,000.
Sold within 1 day: 1,500,000 / 1.5 + 2,000,000 / 10 + 5,000 / 3 = 1,201,666.67 -> 0.342844
Sold within 5 days: 1,500,000 + 1,000,000 + 5,000 = 2,505,000 -> 0.714693; within 10: all -> 1.
Herfindahl = (1.5^2 + 2^2 + 0.005^2) / 3.505^2 = 6.250025 / 12.285025 = 0.5087515.
"""

from __future__ import annotations

import numpy as np
import pytest

from analytics.calculations import liquidity as calc

ATOL = 1e-9  # currency and decimals: exact up to float rounding
EXPOSURE = np.array([1_500_000.0, -2_000_000.0, 5_000.0])
SHARES = np.array([30_000.0, -80_000.0, 600.0])  # signed: the sign must not matter


def _volumes() -> np.ndarray:
    panel = np.full((20, 3), np.nan)
    panel[:, 0] = [90_000.0, 110_000.0] * 10
    panel[5:, 1] = 40_000.0
    panel[8:, 2] = [500.0, 1_500.0] * 6
    return panel


def test_average_daily_volume_leaves_out_sessions_without_a_volume():
    found = calc.average_daily_volume(_volumes(), min_observations=10)
    np.testing.assert_allclose(found.adv, [100_000.0, 40_000.0, 1_000.0], rtol=0, atol=ATOL)
    assert found.observations.tolist() == [20, 15, 12]


def test_average_daily_volume_unknown_below_the_minimum():
    panel = _volumes()
    panel[:11, 2] = np.nan  # 9 volumes left
    found = calc.average_daily_volume(panel, min_observations=10)
    assert np.isnan(found.adv[2]) and found.observations[2] == 9
    assert not np.isnan(found.adv[:2]).any()


def test_average_daily_volume_refuses_negative_and_infinite_volumes():
    for bad in (-1.0, np.inf):
        panel = _volumes()
        panel[0, 0] = bad
        with pytest.raises(ValueError, match="volumes"):
            calc.average_daily_volume(panel, min_observations=10)


def test_days_to_liquidate_hand_worked():
    adv = calc.average_daily_volume(_volumes(), min_observations=10).adv
    np.testing.assert_allclose(
        calc.days_to_liquidate(SHARES, adv, 0.20), [1.5, 10.0, 3.0], rtol=0, atol=ATOL
    )
    # Half the participation, twice the days.
    np.testing.assert_allclose(
        calc.days_to_liquidate(SHARES, adv, 0.10), [3.0, 20.0, 6.0], rtol=0, atol=ATOL
    )


def test_days_to_liquidate_unknown_without_adv_shares_or_traded_volume():
    days = calc.days_to_liquidate(
        np.array([100.0, np.nan, 100.0, 0.0]), np.array([np.nan, 1_000.0, 0.0, 1_000.0]), 0.2
    )
    assert np.isnan(days[:3]).all() and days[3] == 0.0


@pytest.mark.parametrize("participation", [0.0, -0.1, 1.01, np.nan])
def test_days_to_liquidate_refuses_participation_outside_0_1(participation):
    with pytest.raises(ValueError, match="participation"):
        calc.days_to_liquidate(SHARES, np.ones(3), participation)


def test_liquidatable_shares_hand_worked():
    shares, gross = calc.liquidatable_shares(EXPOSURE, np.array([1.5, 10.0, 3.0]), (1, 5, 10))
    assert gross == 3_505_000.0
    expected = np.array(
        [
            (1_500_000 / 1.5 + 2_000_000 / 10 + 5_000 / 3) / 3_505_000,
            (1_500_000 + 1_000_000 + 5_000) / 3_505_000,
            1.0,
        ]
    )
    np.testing.assert_allclose(shares, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(shares, [0.3428435568, 0.7146932953, 1.0], rtol=0, atol=1e-10)


def test_liquidatable_shares_unknown_days_unsold_zero_shares_sold_at_once_unvalued_out():
    shares, gross = calc.liquidatable_shares(
        np.array([1_000.0, 3_000.0, np.nan, 6_000.0]),
        np.array([np.nan, 0.0, 1.0, np.inf]),
        (1, 5),
    )
    assert gross == 10_000.0
    np.testing.assert_allclose(shares, [0.3, 0.3], rtol=0, atol=ATOL)


def test_liquidatable_shares_of_an_empty_book_are_undefined():
    shares, gross = calc.liquidatable_shares(np.array([]), np.array([]), (1, 5, 10))
    assert gross == 0.0 and np.isnan(shares).all() and len(shares) == 3


def test_name_concentration_hand_worked():
    found = calc.name_concentration(["AAA", "BBB", "CCC"], EXPOSURE)
    assert found.keys == ["BBB", "AAA", "CCC"]
    np.testing.assert_allclose(found.gross, [2_000_000, 1_500_000, 5_000], rtol=0, atol=ATOL)
    np.testing.assert_allclose(
        found.weights, np.array([2.0, 1.5, 0.005]) / 3.505, rtol=0, atol=ATOL
    )
    herfindahl = (1.5**2 + 2**2 + 0.005**2) / 3.505**2
    assert herfindahl == pytest.approx(0.5087515, abs=1e-7)
    assert found.herfindahl == pytest.approx(herfindahl, rel=1e-12)
    assert found.effective_names == pytest.approx(1 / herfindahl, rel=1e-12)
    assert found.top_share(1) == pytest.approx(2 / 3.505, rel=1e-12)
    assert found.top_share(5) == found.top_share(10) == pytest.approx(1.0, rel=1e-12)


def test_name_concentration_sums_a_names_positions_by_absolute_exposure():
    # Long stock and a short call on the same name: gross adds, it never nets.
    found = calc.name_concentration(["X", "X", "Y", "Z"], np.array([600.0, -200.0, 200.0, np.nan]))
    assert found.keys == ["X", "Y", "Z"]
    np.testing.assert_allclose(found.gross, [800.0, 200.0, 0.0], rtol=0, atol=ATOL)
    assert found.herfindahl == pytest.approx(0.8**2 + 0.2**2, rel=1e-12)


def test_name_concentration_bounds():
    one = calc.name_concentration(["A"], np.array([-5.0]))
    assert one.herfindahl == 1.0 and one.effective_names == 1.0
    equal = calc.name_concentration(list("ABCD"), np.array([1.0, -1.0, 1.0, -1.0]))
    assert equal.herfindahl == pytest.approx(0.25) and equal.effective_names == pytest.approx(4)
    empty = calc.name_concentration([], np.array([]))
    assert empty.keys == [] and empty.total == 0.0
    assert np.isnan(empty.herfindahl) and np.isnan(empty.top_share(5))
    with pytest.raises(ValueError):
        one.top_share(0)


def test_group_exposures_long_short_net_and_share():
    found = calc.group_exposures(["Tech", "Energy", "Tech"], EXPOSURE)
    assert found.keys == ["Energy", "Tech"]
    np.testing.assert_allclose(found.gross, [2_000_000, 1_505_000], rtol=0, atol=ATOL)
    np.testing.assert_allclose(found.net, [-2_000_000, 1_505_000], rtol=0, atol=ATOL)
    np.testing.assert_allclose(found.long, [0, 1_505_000], rtol=0, atol=ATOL)
    np.testing.assert_allclose(found.short, [-2_000_000, 0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(found.share, [2 / 3.505, 1.505 / 3.505], rtol=0, atol=ATOL)
    np.testing.assert_allclose(found.gross, found.long - found.short, rtol=0, atol=ATOL)
