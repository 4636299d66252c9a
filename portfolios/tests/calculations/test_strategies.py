"""Strategy detection over hand-built books, plus property checks on random books."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from portfolios.calculations.strategies import (
    KIND_ORDER,
    DetectedStrategy,
    Leg,
    detect_strategies,
)

JAN = date(2025, 1, 17)
FEB = date(2025, 2, 21)
MAR = date(2025, 3, 21)


def stock(id: int, underlying: str, shares: int | str) -> Leg:
    return Leg(id, underlying, Decimal(shares), None, None, None)


def option(
    id: int, underlying: str, option_type: str, strike: int | str, expiration: date, contracts: int
) -> Leg:
    return Leg(id, underlying, Decimal(contracts), option_type, Decimal(strike), expiration)


def kinds(result: list[DetectedStrategy]) -> list[tuple[str, tuple[int, ...]]]:
    return [(s.kind, s.position_ids) for s in result]


# --- one test per kind ---------------------------------------------------------------------


def test_detect_strategies_covered_call() -> None:
    result = detect_strategies([stock(1, "AAPL", 200), option(2, "AAPL", "C", 200, JAN, -2)])
    assert result == [DetectedStrategy("covered_call", (1, 2), "AAPL covered call 2025-01-17 200C")]


def test_detect_strategies_protective_put() -> None:
    result = detect_strategies([option(7, "AAPL", "P", "180.00", JAN, 1), stock(3, "AAPL", 100)])
    assert result == [
        DetectedStrategy("protective_put", (3, 7), "AAPL protective put 2025-01-17 180P")
    ]


def test_detect_strategies_collar() -> None:
    legs = [
        stock(1, "AAPL", 300),
        option(2, "AAPL", "P", 180, JAN, 3),
        option(3, "AAPL", "C", 210, JAN, -3),
    ]
    assert detect_strategies(legs) == [
        DetectedStrategy("collar", (1, 2, 3), "AAPL collar 2025-01-17 180P/210C")
    ]


def test_detect_strategies_collar_with_different_expirations() -> None:
    legs = [
        stock(1, "AAPL", 100),
        option(2, "AAPL", "P", "182.5", JAN, 1),
        option(3, "AAPL", "C", 210, FEB, -1),
    ]
    [collar] = detect_strategies(legs)
    assert collar.kind == "collar"
    assert collar.name == "AAPL collar 2025-01-17 182.5P / 2025-02-21 210C"


def test_detect_strategies_vertical_spread() -> None:
    legs = [option(5, "MSFT", "C", 420, MAR, -2), option(4, "MSFT", "C", 400, MAR, 2)]
    assert detect_strategies(legs) == [
        DetectedStrategy("vertical_spread", (4, 5), "MSFT 400/420C vertical 2025-03-21")
    ]


def test_detect_strategies_put_vertical_spread() -> None:
    legs = [option(1, "MSFT", "P", 380, MAR, -1), option(2, "MSFT", "P", 360, MAR, 1)]
    assert kinds(detect_strategies(legs)) == [("vertical_spread", (1, 2))]


def test_detect_strategies_straddle() -> None:
    legs = [option(1, "SPY", "C", 450, MAR, -5), option(2, "SPY", "P", 450, MAR, -5)]
    assert detect_strategies(legs) == [
        DetectedStrategy("straddle", (1, 2), "SPY short 450 straddle 2025-03-21")
    ]


def test_detect_strategies_strangle() -> None:
    legs = [option(1, "SPY", "C", 470, MAR, 1), option(2, "SPY", "P", 430, MAR, 1)]
    assert detect_strategies(legs) == [
        DetectedStrategy("strangle", (1, 2), "SPY long 430P/470C strangle 2025-03-21")
    ]


def test_detect_strategies_strangle_accepts_call_strike_below_put_strike() -> None:
    legs = [option(1, "SPY", "C", 430, MAR, -1), option(2, "SPY", "P", 470, MAR, -1)]
    [strangle] = detect_strategies(legs)
    assert (strangle.kind, strangle.name) == ("strangle", "SPY short 470P/430C strangle 2025-03-21")


def test_detect_strategies_single() -> None:
    legs = [
        stock(1, "AAPL", 100),
        stock(2, "TSLA", -50),
        option(3, "NVDA", "C", 900, JAN, 1),
        option(4, "NVDA", "P", 800, FEB, 1),  # different expiration: no strangle
    ]
    assert detect_strategies(legs) == [
        DetectedStrategy("single", (1,), "AAPL long stock"),
        DetectedStrategy("single", (3,), "NVDA long 2025-01-17 900C"),
        DetectedStrategy("single", (4,), "NVDA long 2025-02-21 800P"),
        DetectedStrategy("single", (2,), "TSLA short stock"),
    ]


# --- edges and precedence ------------------------------------------------------------------


def test_detect_strategies_empty_input_gives_empty_list() -> None:
    assert detect_strategies([]) == []


def test_detect_strategies_not_enough_shares_is_not_covered() -> None:
    # 2 contracts need 200 shares; the position is never split into 100 covered + 50 loose.
    legs = [stock(1, "AAPL", 150), option(2, "AAPL", "C", 200, JAN, -2)]
    assert kinds(detect_strategies(legs)) == [("single", (1,)), ("single", (2,))]


def test_detect_strategies_short_stock_never_hedges() -> None:
    legs = [stock(1, "AAPL", -500), option(2, "AAPL", "C", 200, JAN, -1)]
    assert {s.kind for s in detect_strategies(legs)} == {"single"}


def test_detect_strategies_long_call_does_not_cover_stock() -> None:
    legs = [stock(1, "AAPL", 500), option(2, "AAPL", "C", 200, JAN, 1)]
    assert {s.kind for s in detect_strategies(legs)} == {"single"}


def test_detect_strategies_collar_beats_covered_call_and_protective_put() -> None:
    legs = [
        stock(1, "AAPL", 100),
        option(2, "AAPL", "C", 210, JAN, -1),
        option(3, "AAPL", "P", 180, JAN, 1),
    ]
    assert kinds(detect_strategies(legs)) == [("collar", (1, 2, 3))]


def test_detect_strategies_competing_short_calls_use_the_stock_once() -> None:
    # Both calls fit the 100 shares; the earlier expiration wins, the other stays single.
    legs = [
        stock(1, "AAPL", 100),
        option(2, "AAPL", "C", 200, FEB, -1),
        option(3, "AAPL", "C", 210, JAN, -1),
    ]
    assert kinds(detect_strategies(legs)) == [("covered_call", (1, 3)), ("single", (2,))]


def test_detect_strategies_competing_calls_same_expiration_lower_strike_wins() -> None:
    legs = [
        stock(1, "AAPL", 100),
        option(2, "AAPL", "C", 220, JAN, -1),
        option(3, "AAPL", "C", 210, JAN, -1),
    ]
    assert kinds(detect_strategies(legs)) == [("covered_call", (1, 3)), ("single", (2,))]


def test_detect_strategies_smallest_stock_lot_served_first() -> None:
    # Lot 1 (500 sh) could take either call, lot 2 (100 sh) only the 1-lot one. Serving the
    # small lot first covers both; serving by id would have left lot 2 single.
    legs = [
        stock(1, "AAPL", 500),
        stock(2, "AAPL", 100),
        option(3, "AAPL", "C", 200, JAN, -1),
        option(4, "AAPL", "C", 200, FEB, -5),
    ]
    assert kinds(detect_strategies(legs)) == [
        ("covered_call", (1, 4)),
        ("covered_call", (2, 3)),
    ]


def test_detect_strategies_covered_call_beats_vertical_spread() -> None:
    legs = [
        stock(1, "AAPL", 100),
        option(2, "AAPL", "C", 200, JAN, 1),
        option(3, "AAPL", "C", 210, JAN, -1),
    ]
    assert kinds(detect_strategies(legs)) == [("covered_call", (1, 3)), ("single", (2,))]


def test_detect_strategies_straddle_beats_strangle() -> None:
    legs = [
        option(1, "SPY", "P", 440, MAR, 1),
        option(2, "SPY", "C", 450, MAR, 1),
        option(3, "SPY", "P", 450, MAR, 1),
    ]
    assert kinds(detect_strategies(legs)) == [("straddle", (2, 3)), ("single", (1,))]


def test_detect_strategies_strangle_beats_vertical_so_iron_condor_is_two_strangles() -> None:
    legs = [
        option(1, "SPY", "P", 420, MAR, 1),
        option(2, "SPY", "P", 430, MAR, -1),
        option(3, "SPY", "C", 470, MAR, -1),
        option(4, "SPY", "C", 480, MAR, 1),
    ]
    assert kinds(detect_strategies(legs)) == [("strangle", (1, 4)), ("strangle", (2, 3))]


def test_detect_strategies_vertical_with_unequal_contracts_is_not_a_vertical() -> None:
    legs = [option(1, "MSFT", "C", 400, MAR, 2), option(2, "MSFT", "C", 420, MAR, -1)]
    assert kinds(detect_strategies(legs)) == [("single", (1,)), ("single", (2,))]


def test_detect_strategies_vertical_needs_opposite_signs_and_same_expiration() -> None:
    legs = [
        option(1, "MSFT", "C", 400, MAR, 1),
        option(2, "MSFT", "C", 420, MAR, 1),
        option(3, "MSFT", "P", 380, JAN, 1),
        option(4, "MSFT", "P", 360, FEB, -1),
    ]
    assert {s.kind for s in detect_strategies(legs)} == {"single"}


def test_detect_strategies_vertical_ladder_pairs_lowest_strikes_first() -> None:
    legs = [
        option(1, "MSFT", "C", 440, MAR, 1),
        option(2, "MSFT", "C", 460, MAR, -1),
        option(3, "MSFT", "C", 400, MAR, 1),
        option(4, "MSFT", "C", 420, MAR, -1),
    ]
    # Output is ordered by first id, so the 440/460 spread (ids 1, 2) comes first.
    assert [(s.position_ids, s.name) for s in detect_strategies(legs)] == [
        ((1, 2), "MSFT 440/460C vertical 2025-03-21"),
        ((3, 4), "MSFT 400/420C vertical 2025-03-21"),
    ]


def test_detect_strategies_vertical_skips_partner_at_the_same_strike() -> None:
    legs = [
        option(1, "MSFT", "C", 400, MAR, 1),
        option(2, "MSFT", "C", 400, MAR, -1),
        option(3, "MSFT", "C", 420, MAR, -1),
    ]
    assert kinds(detect_strategies(legs)) == [("vertical_spread", (1, 3)), ("single", (2,))]


def test_detect_strategies_different_underlyings_never_combine() -> None:
    legs = [
        stock(1, "AAPL", 1000),
        option(2, "MSFT", "C", 200, JAN, -1),
        option(3, "MSFT", "P", 200, FEB, 1),
        option(4, "GOOG", "P", 200, FEB, 1),
        option(5, "AMZN", "C", 200, FEB, 1),
        option(6, "META", "C", 210, FEB, -1),
    ]
    assert {s.kind for s in detect_strategies(legs)} == {"single"}


def test_detect_strategies_zero_quantity_leg_is_single() -> None:
    legs = [stock(1, "AAPL", 100), option(2, "AAPL", "C", 200, JAN, 0)]
    result = detect_strategies(legs)
    assert kinds(result) == [("single", (1,)), ("single", (2,))]
    assert result[1].name == "AAPL flat 2025-01-17 200C"


def test_detect_strategies_sorts_by_kind_then_underlying_then_first_id() -> None:
    legs = [
        option(1, "ZZZ", "C", 10, JAN, 1),
        option(2, "ZZZ", "P", 10, JAN, 1),
        stock(3, "BBB", 100),
        option(4, "BBB", "C", 10, JAN, -1),
        stock(5, "AAA", 100),
        option(6, "AAA", "C", 10, JAN, -1),
        stock(7, "AAA", 10),
    ]
    assert kinds(detect_strategies(legs)) == [
        ("covered_call", (5, 6)),
        ("covered_call", (3, 4)),
        ("straddle", (1, 2)),
        ("single", (7,)),
    ]


def test_detect_strategies_rejects_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="duplicate leg id 1"):
        detect_strategies([stock(1, "AAPL", 100), stock(1, "MSFT", 100)])


@pytest.mark.parametrize(
    ("option_type", "strike", "expiration"),
    [("X", Decimal(1), JAN), ("C", None, JAN), ("P", Decimal(1), None), (None, Decimal(1), None)],
)
def test_leg_rejects_malformed_legs(
    option_type: str | None, strike: Decimal | None, expiration: date | None
) -> None:
    with pytest.raises(ValueError):
        Leg(1, "AAPL", Decimal(1), option_type, strike, expiration)


# --- properties on random books ------------------------------------------------------------

# 400 legs over 20 names: dense enough for every kind, sparse enough that collars don't absorb
# every covered call and protective put.
SYMBOLS = [f"U{i:02d}" for i in range(20)]
STRIKES = [Decimal(s) for s in (90, 95, 100, 105, 110)]
EXPIRATIONS = [JAN, FEB, MAR]


def random_book(rng: random.Random, size: int, symbols: list[str]) -> list[Leg]:
    legs = []
    for id in rng.sample(range(1, size * 10), size):
        underlying = rng.choice(symbols)
        if rng.random() < 0.2:
            legs.append(stock(id, underlying, rng.choice([-100, 50, 100, 150, 200, 300, 500])))
        else:
            legs.append(
                Leg(
                    id,
                    underlying,
                    Decimal(rng.choice([-3, -2, -1, 0, 1, 2, 3])),
                    rng.choice(["C", "P"]),
                    rng.choice(STRIKES),
                    rng.choice(EXPIRATIONS),
                )
            )
    return legs


def covers(stock_leg: Leg, option_leg: Leg) -> bool:
    return stock_leg.quantity >= 100 * abs(option_leg.quantity)


def is_long_stock(leg: Leg) -> bool:
    return leg.option_type is None and leg.quantity > 0


def fits(kind: str, members: list[Leg]) -> bool:
    """The module's definitions, restated independently of its implementation."""
    if len({leg.underlying for leg in members}) != 1:
        return False
    stocks = [leg for leg in members if leg.option_type is None]
    calls = [leg for leg in members if leg.option_type == "C"]
    puts = [leg for leg in members if leg.option_type == "P"]
    if kind == "collar":
        return (
            len(members) == 3
            and len(stocks) == len(calls) == len(puts) == 1
            and is_long_stock(stocks[0])
            and calls[0].quantity < 0 < puts[0].quantity
            and covers(stocks[0], calls[0])
            and covers(stocks[0], puts[0])
        )
    if kind in ("covered_call", "protective_put"):
        option_legs = calls if kind == "covered_call" else puts
        return (
            len(members) == 2
            and len(stocks) == len(option_legs) == 1
            and is_long_stock(stocks[0])
            and (
                option_legs[0].quantity < 0
                if kind == "covered_call"
                else option_legs[0].quantity > 0
            )
            and covers(stocks[0], option_legs[0])
        )
    if len(members) != 2 or stocks or members[0].quantity == 0:
        return False
    a, b = members
    same_expiration = a.expiration == b.expiration
    if kind in ("straddle", "strangle"):
        same_strike = a.strike == b.strike
        return (
            len(calls) == len(puts) == 1
            and same_expiration
            and a.quantity == b.quantity
            and same_strike == (kind == "straddle")
        )
    if kind == "vertical_spread":
        return (
            a.option_type == b.option_type
            and same_expiration
            and a.strike != b.strike
            and a.quantity == -b.quantity
        )
    return False


@pytest.mark.parametrize("seed", [7, 2024, 31337])
def test_detect_strategies_every_leg_in_exactly_one_valid_strategy(seed: int) -> None:
    rng = random.Random(seed)
    legs = random_book(rng, 400, SYMBOLS)
    by_id = {leg.id: leg for leg in legs}

    result = detect_strategies(legs)

    counts = Counter(i for strategy in result for i in strategy.position_ids)
    assert set(counts) == set(by_id)
    assert set(counts.values()) == {1}
    for strategy in result:
        assert list(strategy.position_ids) == sorted(strategy.position_ids)
        members = [by_id[i] for i in strategy.position_ids]
        if strategy.kind != "single":
            assert fits(strategy.kind, members), strategy
    # The random book is dense enough that every kind shows up, so the checks above bite.
    assert {s.kind for s in result} == set(KIND_ORDER)


@pytest.mark.parametrize("seed", [7, 2024, 31337])
def test_detect_strategies_leaves_no_two_singles_that_form_a_pair(seed: int) -> None:
    # Greedy matching must be maximal: two legs left single never fit a two-leg definition
    # (a collar left over would contain a covered call, so pairs cover that too).
    rng = random.Random(seed)
    legs = random_book(rng, 400, SYMBOLS)
    by_id = {leg.id: leg for leg in legs}
    singles = [by_id[s.position_ids[0]] for s in detect_strategies(legs) if s.kind == "single"]
    two_leg_kinds = ("covered_call", "protective_put", "straddle", "strangle", "vertical_spread")
    for i, a in enumerate(singles):
        for b in singles[i + 1 :]:
            for kind in two_leg_kinds:
                assert not fits(kind, [a, b]), (kind, a, b)


def test_detect_strategies_is_independent_of_input_order() -> None:
    rng = random.Random(42)
    legs = random_book(rng, 300, SYMBOLS)
    expected = detect_strategies(legs)
    for _ in range(5):
        shuffled = legs[:]
        rng.shuffle(shuffled)
        assert detect_strategies(shuffled) == expected


def test_detect_strategies_handles_a_large_book_per_underlying() -> None:
    # 10,000 legs over 2,000 underlyings: detection works per underlying, so this is quick; a
    # cubic search over the whole book would not finish in any reasonable time.
    rng = random.Random(1)
    symbols = [f"S{i:04d}" for i in range(2000)]
    legs = random_book(rng, 10_000, symbols)
    result = detect_strategies(legs)
    assert sum(len(s.position_ids) for s in result) == 10_000


def test_detect_strategies_handles_a_large_single_underlying() -> None:
    # Near-linear within one underlying too: 5,000 options on one name with a handful of keys.
    rng = random.Random(3)
    legs = random_book(rng, 5_000, ["SPY"])
    result = detect_strategies(legs)
    assert sum(len(s.position_ids) for s in result) == 5_000
