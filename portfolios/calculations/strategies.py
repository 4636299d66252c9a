"""Strategy detection: group one portfolio's open positions into option strategies.

Pure: legs in, strategies out; no ORM, no I/O. Quantities follow DESIGN.md: signed (negative =
short), stocks in shares, options in contracts of 100 shares each.

Definitions (a leg is always used whole, a position's quantity is never split):

- ``collar``: a long stock leg + a long put + a short call on the same underlying, with
  shares >= 100 x contracts of each option (expirations may differ).
- ``covered_call``: a long stock leg + a short call, shares >= 100 x |call contracts|.
- ``protective_put``: a long stock leg + a long put, shares >= 100 x put contracts.
- ``straddle``: a call + a put, same strike, same expiration, same sign, equal |contracts|.
- ``strangle``: a call + a put, same expiration, different strikes, same sign, equal
  |contracts|. The call strike is conventionally above the put strike; the inverted shape
  (call strike below the put strike, a "guts" strangle) is accepted too.
- ``vertical_spread``: two calls or two puts, same expiration, different strikes, opposite
  signs, equal |contracts|.
- ``single``: every leg in no structure above, including short stock and zero-quantity legs.
- Pairs trades are user-defined only and never detected.

Legs combine only within one underlying.

Precedence, when a leg could belong to more than one structure:

1. Structures that hedge stock come first, in the order collar, covered call, protective put,
   so a stock lot with both a fitting put and a fitting short call is a collar, not a covered
   call plus a loose put. Long stock lots are served smallest first (shares, then id); each
   takes the first free fitting option(s) in (expiration, strike, id) order. An option that a
   small lot covers is covered by every larger lot, so within each rule serving small lots
   first hedges as many lots as any pairing could.
2. Then option-only structures on the options left over, in the order straddle, strangle,
   vertical spread. Within a rule, candidates with the same expiration and |contracts| (and
   strike for a straddle, type for a vertical) are paired greedily: straddles pair calls with
   puts in id order; strangles and verticals take the first-side legs (calls; long legs) in
   (strike, id) order, each with the lowest-strike free partner (puts; short legs) at a
   different strike, ties by id. A consequence of this order: an iron condor reads as a short
   strangle plus a long strangle, not as two verticals.
3. Everything left is ``single``.

Each leg is used at most once. The result is sorted by (kind in the order collar, covered_call,
protective_put, straddle, strangle, vertical_spread, single; underlying; lowest position id),
so it does not depend on the order of the input.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple

CONTRACT_MULTIPLIER = Decimal(100)

KIND_ORDER: tuple[str, ...] = (
    "collar",
    "covered_call",
    "protective_put",
    "straddle",
    "strangle",
    "vertical_spread",
    "single",
)
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}


@dataclass(frozen=True)
class Leg:
    id: int
    underlying: str
    quantity: Decimal
    option_type: str | None
    strike: Decimal | None
    expiration: date | None

    def __post_init__(self) -> None:
        # A malformed leg is a caller bug (the service builds legs from validated rows); failing
        # here beats silently classifying it as a stock or a single.
        if self.option_type is None:
            if self.strike is not None or self.expiration is not None:
                raise ValueError(f"stock leg {self.id} has a strike or expiration")
        elif self.option_type not in ("C", "P"):
            raise ValueError(f"leg {self.id}: option_type must be None, 'C' or 'P'")
        elif self.strike is None or self.expiration is None:
            raise ValueError(f"option leg {self.id} needs a strike and an expiration")


@dataclass(frozen=True)
class DetectedStrategy:
    kind: str
    position_ids: tuple[int, ...]
    name: str


def detect_strategies(legs: Sequence[Leg]) -> list[DetectedStrategy]:
    """Assign every leg to exactly one strategy, by the rules and precedence of this module.

    Runs per underlying in O(n log n), so a book of thousands of legs costs milliseconds.
    Raises ``ValueError`` when two legs share an id.
    """
    seen: set[int] = set()
    by_underlying: dict[str, list[Leg]] = defaultdict(list)
    for leg in legs:
        if leg.id in seen:
            raise ValueError(f"duplicate leg id {leg.id}")
        seen.add(leg.id)
        by_underlying[leg.underlying].append(leg)

    found: list[_Match] = []
    for group in by_underlying.values():
        found.extend(_detect_one_underlying(group))

    found.sort(key=lambda match: (_KIND_RANK[match.kind], match.legs[0].underlying, match.ids))
    return [
        DetectedStrategy(
            kind=match.kind, position_ids=match.ids, name=_name(match.kind, match.legs)
        )
        for match in found
    ]


class _Match(NamedTuple):
    """Legs of one underlying that make a strategy of `kind`."""

    kind: str
    legs: tuple[Leg, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(sorted(leg.id for leg in self.legs))


def _detect_one_underlying(legs: list[Leg]) -> list[_Match]:
    found: list[_Match] = []
    singles: list[Leg] = []
    stocks: list[Leg] = []
    long_puts: list[Leg] = []
    short_calls: list[Leg] = []
    other_options: list[Leg] = []
    for leg in legs:
        if leg.quantity == 0 or (leg.option_type is None and leg.quantity < 0):
            singles.append(leg)
        elif leg.option_type is None:
            stocks.append(leg)
        elif leg.option_type == "P" and leg.quantity > 0:
            long_puts.append(leg)
        elif leg.option_type == "C" and leg.quantity < 0:
            short_calls.append(leg)
        else:
            other_options.append(leg)

    matched, stocks, (long_puts, short_calls) = _hedge_stock(stocks, [long_puts, short_calls])
    found.extend(_Match(kind="collar", legs=members) for members in matched)
    matched, stocks, (short_calls,) = _hedge_stock(stocks, [short_calls])
    found.extend(_Match(kind="covered_call", legs=members) for members in matched)
    matched, stocks, (long_puts,) = _hedge_stock(stocks, [long_puts])
    found.extend(_Match(kind="protective_put", legs=members) for members in matched)
    singles.extend(stocks)

    options = other_options + long_puts + short_calls
    for kind, pair_group in (
        ("straddle", _pair_straddles),
        ("strangle", _pair_strangles),
        ("vertical_spread", _pair_verticals),
    ):
        pairs, options = pair_group(options)
        found.extend(_Match(kind=kind, legs=pair) for pair in pairs)
    singles.extend(options)

    found.extend(_Match(kind="single", legs=(leg,)) for leg in singles)
    return found


def _contracts(leg: Leg) -> Decimal:
    return abs(leg.quantity)


def _option_order(leg: Leg) -> tuple[date | None, Decimal | None, int]:
    return (leg.expiration, leg.strike, leg.id)


def _hedge_stock(
    stocks: list[Leg], pools: list[list[Leg]]
) -> tuple[list[tuple[Leg, ...]], list[Leg], list[list[Leg]]]:
    """Give each long stock lot one option from every pool, if it covers one from each.

    Lots go smallest first; options enter a heap ordered by (expiration, strike, id) once the
    current lot is big enough to cover them, so each lot takes the first option it covers.
    Returns the matches (stock, then one option per pool), and the unused stocks and pools.
    """
    by_size = [sorted(pool, key=_contracts) for pool in pools]
    next_index = [0] * len(pools)
    heaps: list[list[tuple[tuple[date | None, Decimal | None, int], Leg]]] = [[] for _ in pools]
    matched: list[tuple[Leg, ...]] = []
    unused_stocks: list[Leg] = []
    used: set[int] = set()
    for stock in sorted(stocks, key=lambda leg: (leg.quantity, leg.id)):
        for p, pool in enumerate(by_size):
            while (
                next_index[p] < len(pool)
                and _contracts(pool[next_index[p]]) * CONTRACT_MULTIPLIER <= stock.quantity
            ):
                option = pool[next_index[p]]
                heapq.heappush(heaps[p], (_option_order(option), option))
                next_index[p] += 1
        if all(heaps):
            options = tuple(heapq.heappop(heap)[1] for heap in heaps)
            used.update(option.id for option in options)
            matched.append((stock, *options))
        else:
            unused_stocks.append(stock)
    unused_pools = [[leg for leg in pool if leg.id not in used] for pool in pools]
    return matched, unused_stocks, unused_pools


def _group(legs: Iterable[Leg], key: Callable[[Leg], Hashable]) -> dict[Hashable, list[Leg]]:
    groups: dict[Hashable, list[Leg]] = defaultdict(list)
    for leg in legs:
        groups[key(leg)].append(leg)
    return groups


def _pair_straddles(options: list[Leg]) -> tuple[list[tuple[Leg, Leg]], list[Leg]]:
    pairs: list[tuple[Leg, Leg]] = []
    leftover: list[Leg] = []
    # Equal signed quantity is "same sign and equal |contracts|" in one key.
    for group in _group(options, lambda leg: (leg.expiration, leg.strike, leg.quantity)).values():
        calls = sorted((leg for leg in group if leg.option_type == "C"), key=lambda leg: leg.id)
        puts = sorted((leg for leg in group if leg.option_type == "P"), key=lambda leg: leg.id)
        n = min(len(calls), len(puts))
        pairs.extend(zip(calls[:n], puts[:n], strict=True))
        leftover.extend(calls[n:] + puts[n:])
    return pairs, leftover


def _pair_strangles(options: list[Leg]) -> tuple[list[tuple[Leg, Leg]], list[Leg]]:
    pairs: list[tuple[Leg, Leg]] = []
    leftover: list[Leg] = []
    for group in _group(options, lambda leg: (leg.expiration, leg.quantity)).values():
        calls = [leg for leg in group if leg.option_type == "C"]
        puts = [leg for leg in group if leg.option_type == "P"]
        group_pairs, group_leftover = _pair_different_strikes(calls, puts)
        pairs.extend(group_pairs)
        leftover.extend(group_leftover)
    return pairs, leftover


def _pair_verticals(options: list[Leg]) -> tuple[list[tuple[Leg, Leg]], list[Leg]]:
    pairs: list[tuple[Leg, Leg]] = []
    leftover: list[Leg] = []
    groups = _group(options, lambda leg: (leg.option_type, leg.expiration, abs(leg.quantity)))
    for group in groups.values():
        longs = [leg for leg in group if leg.quantity > 0]
        shorts = [leg for leg in group if leg.quantity < 0]
        group_pairs, group_leftover = _pair_different_strikes(longs, shorts)
        pairs.extend(group_pairs)
        leftover.extend(group_leftover)
    return pairs, leftover


def _pair_different_strikes(
    first: list[Leg], second: list[Leg]
) -> tuple[list[tuple[Leg, Leg]], list[Leg]]:
    """Pair each `first` leg, in (strike, id) order, with the lowest-strike free `second` leg at
    a different strike (ties by id).

    The free `second` legs sit in per-strike queues and only the two lowest non-empty strikes
    can ever be taken, so each pairing is O(1) and a large group stays near linear.
    """
    buckets: dict[Decimal | None, deque[Leg]] = defaultdict(deque)
    for leg in sorted(second, key=lambda leg: (leg.strike, leg.id)):
        buckets[leg.strike].append(leg)
    strikes: deque[Decimal | None] = deque(buckets)
    pairs: list[tuple[Leg, Leg]] = []
    leftover: list[Leg] = []
    for leg in sorted(first, key=lambda leg: (leg.strike, leg.id)):
        if strikes and strikes[0] != leg.strike:
            position = 0
        elif len(strikes) > 1:
            position = 1
        else:
            leftover.append(leg)
            continue
        strike = strikes[position]
        pairs.append((leg, buckets[strike].popleft()))
        if not buckets[strike]:
            del strikes[position]
    for strike in strikes:
        leftover.extend(buckets[strike])
    return pairs, leftover


def _fmt_strike(strike: Decimal | None) -> str:
    # normalize() alone would print 200 as 2E+2.
    return f"{strike.normalize():f}" if strike is not None else "?"


def _fmt_option(leg: Leg) -> str:
    return f"{leg.expiration} {_fmt_strike(leg.strike)}{leg.option_type}"


def _side(leg: Leg) -> str:
    if leg.quantity == 0:
        return "flat"
    return "long" if leg.quantity > 0 else "short"


def _name(kind: str, members: tuple[Leg, ...]) -> str:
    underlying = members[0].underlying
    if kind == "covered_call":
        return f"{underlying} covered call {_fmt_option(members[1])}"
    if kind == "protective_put":
        return f"{underlying} protective put {_fmt_option(members[1])}"
    if kind == "collar":
        put, call = members[1], members[2]
        if put.expiration == call.expiration:
            strikes = f"{_fmt_strike(put.strike)}P/{_fmt_strike(call.strike)}C"
            return f"{underlying} collar {put.expiration} {strikes}"
        return f"{underlying} collar {_fmt_option(put)} / {_fmt_option(call)}"
    if kind == "straddle":
        call = members[0]
        return f"{underlying} {_side(call)} {_fmt_strike(call.strike)} straddle {call.expiration}"
    if kind == "strangle":
        call, put = members
        strikes = f"{_fmt_strike(put.strike)}P/{_fmt_strike(call.strike)}C"
        return f"{underlying} {_side(call)} {strikes} strangle {call.expiration}"
    if kind == "vertical_spread":
        low, high = sorted(members, key=lambda leg: (leg.strike, leg.id))
        strikes = f"{_fmt_strike(low.strike)}/{_fmt_strike(high.strike)}{low.option_type}"
        return f"{underlying} {strikes} vertical {low.expiration}"
    leg = members[0]
    if leg.option_type is None:
        return f"{underlying} {_side(leg)} stock"
    return f"{underlying} {_side(leg)} {_fmt_option(leg)}"
