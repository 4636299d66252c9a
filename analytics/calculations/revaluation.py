"""Full revaluation of a book's options at shocked underlyings: the one repricing that market
scenarios, stress tests, Monte Carlo VaR and what-if all use (pure numpy, whole book at once).

An option leg is revalued by its contract's style through `marketdata.calculations.options`:
Black-Scholes-Merton with its continuous dividend yield when European, Bjerksund-Stensland 2002
(with the same yield) when American, at its underlying moved by a decimal return (-0.10 = the
underlying down 10%), its volatility, yield, time to expiry and rate unchanged. Its P&L is
(shocked price - today's model price) x units, in the book's currency, gains positive. Units are
signed contracts x multiplier (shares controlled).

Spot floor, the one rule: a shocked spot is spot x (1 + return), never below spot x SPOT_FLOOR.
A move of -100% or worse leaves the underlying at a millionth of today's spot, where both
models are still defined and already at their limit (a call worth ~0, a European put ~K e^-rT,
an American put its intrinsic value K - S), instead of the NaN they give at a spot of 0.

American legs under many scenarios: the premium grid. Bjerksund-Stensland costs 10-25
European prices, so a Monte Carlo run (SIGMASIGHT_MONTE_CARLO_DRAWS = 10,000 draws) does not
evaluate it at every (draw, leg). An American leg's price at a shocked spot is then its exact
European price there plus its early exercise premium (American - European, per share),
interpolated along a uniform grid in log spot: nodes at today's spot x e^(k h) for integer k
(today's spot is one), from below the leg's lowest to above its highest shocked spot over the
scenarios, h at most `grid_spacing` = 0.1% x sqrt(sigma / 5%) (the premium is smoother at higher
volatility). Between nodes the premium is the cubic through the four nearest (4-point Lagrange).
The model is not smooth everywhere: past its exercise boundary its price is the intrinsic value,
with a kink at the boundary (its two flat boundaries do not paste smoothly), and where its
formula falls below the European price it takes that, with another kink. So each node records
whether the leg is exercised there or has no premium (below 1e-12 x strike: rounding), and a
scenario between two exercised nodes is worth its intrinsic value, between two nodes without
premium its European price (both exact); the cubic is used only where none of its four nodes is
either, and the other scenarios (the four nodes straddle a kink: about 0.3% of Monte Carlo's)
are priced directly.

The rule: an American leg goes through the grid when it needs at most half as many nodes as
there are scenarios (nodes: at least MIN_GRID_NODES = 32, so below 64 scenarios, stress tests
for one, every American leg is priced directly). Measured against direct pricing on 8,448 legs
(moneyness 0.5-2; 1 day-2 years; (r, q) from (-1%, 3%) to (10%, 20%), calls that exercise early
included; sigma 5%-120%; calls and puts, deep in-the-money puts past the boundary), 400-1,000
scenarios spanning 7% to 280% in log spot: within 9.4e-8 x strike per share, the worst at sigma
5% and one day (5e-8 at 15%, 2e-8 at 60%); tested to 1e-7 x strike. On a Monte Carlo book
(`bench/bench_revaluation.py`: 10,000 draws x 400 legs) it is 8-10x faster than direct
pricing, about 2.5x the European cost. A scenario on a node, today's spot above all, takes the
node's price: no move, no P&L, exactly (as for European legs, and for American legs priced
directly: the engine's value for a row does not depend on the batch it is priced in), and a leg
never exercised early (a call without dividends) is revalued exactly as a European one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketdata.calculations import black_scholes as bs
from marketdata.calculations import options

SPOT_FLOOR = 1e-6  # the lowest shocked spot, as a fraction of today's spot
GRID_SPACING = 1e-3  # the premium grid's widest step in log spot at GRID_VOLATILITY
GRID_VOLATILITY = 0.05
MIN_GRID_NODES = 32  # the fewest nodes of a premium grid (so below 64 scenarios: direct)
STYLES = ("american", "european")
_KNOWN = {repr(s) for s in STYLES}
_TOO_MANY = 2**31  # nodes: more than any scenario count
# A premium this small (x strike) is rounding: the American price is the European one there.
_NOISE = 1e-12

Array = npt.NDArray[np.float64]

# A node's state on the premium grid: the premium is smooth around it, the leg is exercised
# there (price = intrinsic value), or it has no premium (price = European price).
_SMOOTH, _EXERCISED, _NO_PREMIUM = 0, 1, 2
_DIRECT = 3  # an interval whose four nodes straddle a kink: its scenarios are priced directly
_BLOCK = 32_768  # scenario x leg cells interpolated at a time (in cache)


@dataclass(frozen=True, eq=False)
class OptionLegs:
    """The option positions of a book frame that can be revalued (an option without a
    volatility cannot, and contributes nothing), one entry per leg; `rows` index the legs among
    the frame's rows, so a per-position array `a` gives the legs' values as `a[rows]`."""

    rows: npt.NDArray[np.intp]  # positions of the legs in the frame
    spot: Array  # today's underlying price, currency per share
    strike: Array  # currency per share
    years: Array  # time to expiry: calendar days / bs.DAYS_PER_YEAR
    rate: Array  # continuous risk-free rate, decimal
    volatility: Array  # annualized, decimal
    is_call: npt.NDArray[np.bool_]
    units: Array  # signed contracts x multiplier
    dividend_yield: Array  # continuous, decimal (NaN: unknown, so NaN P&L)
    american: npt.NDArray[np.bool_]  # exercise style: True American, False European

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> OptionLegs:
        """The legs of a valued book frame (`book_frame`'s columns: is_option, volatility,
        underlying_price, strike, days_to_expiry, risk_free_rate, dividend_yield, option_type
        "C"/"P", exercise_style "american"/"european", quantity, multiplier). A leg of any
        other style is a ValueError naming it."""
        leg = frame["is_option"].to_numpy(dtype=bool) & frame["volatility"].notna().to_numpy()

        def column(name: str) -> Array:
            values: Array = frame[name].to_numpy(dtype=float)[leg]
            return values

        style = frame["exercise_style"].to_numpy(dtype=object)[leg]
        unknown = sorted({repr(s if isinstance(s, str) else None) for s in style} - _KNOWN)
        if unknown:
            raise ValueError(
                f"Unknown exercise style {', '.join(unknown)}: "
                f"an option is {' or '.join(map(repr, STYLES))}."
            )
        return cls(
            rows=np.flatnonzero(leg),
            spot=column("underlying_price"),
            strike=column("strike"),
            years=column("days_to_expiry") / bs.DAYS_PER_YEAR,
            rate=column("risk_free_rate"),
            volatility=column("volatility"),
            is_call=(frame["option_type"] == "C").to_numpy()[leg],
            units=(frame["quantity"] * frame["multiplier"]).to_numpy(dtype=float)[leg],
            dividend_yield=column("dividend_yield"),
            american=np.asarray(style == "american", dtype=bool),
        )

    def subset(self, legs: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> OptionLegs:
        """The legs picked by a mask or by indices (repeats allowed)."""
        return OptionLegs(**{f.name: getattr(self, f.name)[legs] for f in fields(self)})

    def price(self, spot: npt.ArrayLike) -> Array:
        """Each leg's price per share (its style, `options.price`) at `spot` (broadcast)."""
        return options.price(
            spot,
            self.strike,
            self.years,
            self.rate,
            self.volatility,
            self.is_call,
            self.dividend_yield,
            self.american,
        )


def shocked_spot(spot: Array, returns: Array) -> Array:
    """spot x (1 + returns), floored at spot x SPOT_FLOOR (the module's one rule); broadcasts."""
    return np.maximum(spot * (1.0 + returns), spot * SPOT_FLOOR)


def grid_spacing(volatility: Array) -> Array:
    """The premium grid's widest step in log spot: GRID_SPACING at GRID_VOLATILITY, wider by
    the square root of a higher volatility (the premium is smoother), never below 0."""
    with np.errstate(invalid="ignore"):
        spacing: Array = GRID_SPACING * np.sqrt(volatility / GRID_VOLATILITY)
    return spacing


def grid_nodes(legs: OptionLegs, returns: Array) -> npt.NDArray[np.intp]:
    """The premium grid's node count per leg under `returns` (S, L): at least MIN_GRID_NODES,
    and enough for steps of at most `grid_spacing` from the leg's lowest to highest log move
    (and 0), with two nodes beyond each end. A leg without a usable spacing or span (sigma 0,
    NaN returns) needs more nodes than any scenario count."""
    return _nodes(legs, *_span(_log_moves(returns)))


def revalue(legs: OptionLegs, returns: Array, *, by_leg: bool = False) -> Array:
    """P&L of the legs, in currency, when each leg's underlying moves by a decimal return.

    `returns` is (S, L): scenario s moves leg l's underlying by returns[s, l] (a 1-d (L,) array
    is one scenario). Returns the (S,) P&L of the legs together, or with `by_leg` the (S, L)
    P&L of each. A leg without a spot, or with any NaN input (its dividend yield included), has
    NaN P&L (never a silent 0). An American leg takes the premium grid when it needs at most
    half as many nodes as there are scenarios (module docstring); every other leg is priced at
    each shocked spot."""
    returns = np.atleast_2d(np.asarray(returns, dtype=float))
    scenarios = len(returns)
    if not len(legs.rows):
        return np.zeros((scenarios, 0)) if by_leg else np.zeros(scenarios)
    shocked = shocked_spot(legs.spot, returns)
    gridded = np.zeros(len(legs.rows), dtype=bool)
    if scenarios >= 2 * MIN_GRID_NODES and legs.american.any():
        american = np.flatnonzero(legs.american)
        moves = _log_moves(returns[:, american])
        low, high = _span(moves)
        nodes = _nodes(legs.subset(american), low, high)
        fits = 2 * nodes <= scenarios
        gridded[american[fits]] = True
    if not gridded.any():
        change = legs.price(shocked) - legs.price(legs.spot)
    else:
        change = np.empty_like(shocked)
        direct = ~gridded
        if direct.any():
            each = legs.subset(direct)
            change[:, direct] = each.price(shocked[:, direct]) - each.price(each.spot)
        change[:, gridded] = _grid_change(
            legs.subset(gridded),
            moves[:, fits],
            shocked[:, gridded],
            low[fits],
            high[fits],
            nodes[fits],
        )
    return change * legs.units if by_leg else change @ legs.units


# (legs, betas (L, K), factor moves (S, K)) -> the (S, L) price change per share of each leg
# when its underlying moves by moves @ betas[leg]: `change_under`, or a memo of it
# (analytics.montecarlo.LegDraws) that books holding the same contracts share.
ChangeUnder = Callable[[OptionLegs, Array, Array], Array]


def change_under(legs: OptionLegs, betas: Array, moves: Array) -> Array:
    """(S, L) price change per share of the legs under factor `moves` through their betas."""
    per_share = replace(legs, units=np.ones(len(legs.rows)))
    return revalue(per_share, np.atleast_2d(moves) @ np.asarray(betas).T, by_leg=True)


def _log_moves(returns: Array) -> Array:
    """log(shocked spot / spot): exactly 0 for a return of 0, floored like `shocked_spot`."""
    with np.errstate(invalid="ignore"):
        moves: Array = np.log(np.maximum(1.0 + returns, SPOT_FLOOR))
    return moves


def _span(moves: Array) -> tuple[Array, Array]:
    """Each leg's lowest and highest log move, 0 included (NaN where all are NaN)."""
    low: Array = np.minimum(np.fmin.reduce(moves, axis=0), 0.0)
    high: Array = np.maximum(np.fmax.reduce(moves, axis=0), 0.0)
    return low, high


def _nodes(legs: OptionLegs, low: Array, high: Array) -> npt.NDArray[np.intp]:
    """`grid_nodes` from each leg's span of log moves."""
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = (high - low) / grid_spacing(legs.volatility)
    # Two nodes beyond each end for the cubic, and one so that rounding never runs past them.
    needed = np.ceil(np.nan_to_num(steps, nan=np.inf, posinf=np.inf)) + 5.0
    return np.clip(needed, MIN_GRID_NODES, _TOO_MANY).astype(np.intp)


def _grid_change(
    legs: OptionLegs,
    moves: Array,
    shocked: Array,
    low: Array,
    high: Array,
    nodes: npt.NDArray[np.intp],
) -> Array:
    """(S, L) price change per share of American legs through the premium grid."""
    count = len(legs.rows)
    step = np.where(high > low, (high - low) / (nodes - 5), grid_spacing(legs.volatility))
    # Nodes at integer multiples of the step, so node `today` is today's spot itself (e^0 = 1).
    first = np.floor(low / step) - 1.0
    # The (nodes, L) tables, flat (node k of leg l at k L + l); a leg's nodes past its own
    # count are not priced, nor read.
    node, leg = np.nonzero(np.arange(nodes.max())[:, None] < nodes)
    at_nodes = legs.subset(leg)
    spots = at_nodes.spot * np.exp((first[leg] + node) * step[leg])
    cells = node * count + leg
    american, european = np.full((2, nodes.max() * count), np.nan)
    american[cells] = at_nodes.price(spots)
    european[cells] = replace(at_nodes, american=np.zeros(len(leg), dtype=bool)).price(spots)
    premium = american - european
    state = np.full(nodes.max() * count, _SMOOTH, dtype=np.int8)
    intrinsic = np.where(at_nodes.is_call, spots - at_nodes.strike, at_nodes.strike - spots)
    state[cells] = np.where(
        premium[cells] <= _NOISE * at_nodes.strike,
        _NO_PREMIUM,
        np.where(american[cells] <= intrinsic, _EXERCISED, _SMOOTH),
    )
    today = (-first).astype(np.intp) * count + np.arange(count)
    am_today, eu_today, premium_today = american[today], european[today], premium[today]

    # Interval j (nodes j to j + 1) of each leg: how its scenarios are priced, and the cubic
    # in f (0 at node j, 1 at node j + 1) through the premium at nodes j - 1 .. j + 2.
    p = [np.roll(premium, -k * count) for k in (-1, 0, 1, 2)]
    s = [np.roll(state, -k * count) for k in (-1, 0, 1, 2)]
    rule = np.where(
        (s[1] == _EXERCISED) & (s[2] == _EXERCISED),
        _EXERCISED,
        np.where(
            (s[1] == _NO_PREMIUM) & (s[2] == _NO_PREMIUM),
            _NO_PREMIUM,
            np.where((s[0] | s[1] | s[2] | s[3]) == _SMOOTH, _SMOOTH, _DIRECT),
        ),
    ).astype(np.int8)
    # The cubic's coefficients (powers of f); on an interval without premium, the line between
    # its two premiums (rounding, or exactly 0); at f = 0 always node j's premium, so that a
    # scenario on a node (today's spot above all) takes the node's own price.
    smooth, flat = rule == _SMOOTH, rule == _NO_PREMIUM
    cubic = [
        p[1],
        np.where(
            smooth,
            p[2] - p[0] / 3.0 - p[1] / 2.0 - p[3] / 6.0,
            np.where(flat, p[2] - p[1], 0.0),
        ),
        np.where(smooth, (p[0] + p[2]) / 2.0 - p[1], 0.0),
        np.where(smooth, (p[1] - p[2]) / 2.0 + (p[3] - p[0]) / 6.0, 0.0),
    ]

    change = np.empty_like(shocked)
    direct: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
    block = max(1, _BLOCK // count)
    for start in range(0, len(shocked), block):
        rows = slice(start, start + block)
        with np.errstate(invalid="ignore"):
            t = moves[rows] / step - first  # in nodes: an integer at each, today's exactly
        j = np.fmin(np.fmax(np.floor(t), 1.0), nodes - 3.0)
        f = t - j
        at = j.astype(np.intp) * count + np.arange(count)
        how = np.take(rule, at)
        premium_at = np.take(cubic[3], at) * f + np.take(cubic[2], at)
        premium_at = (premium_at * f + np.take(cubic[1], at)) * f + np.take(cubic[0], at)
        spot = shocked[rows]
        exercise = np.where(legs.is_call, spot - legs.strike, legs.strike - spot) - am_today
        european_at = bs.price_at_spots(
            spot,
            legs.strike,
            legs.years,
            legs.rate,
            legs.volatility,
            legs.is_call,
            legs.dividend_yield,
        )
        moved = european_at - eu_today + (premium_at - premium_today)
        part = np.where(how == _EXERCISED, exercise, moved)
        scenario, leg = np.nonzero((how == _DIRECT) & (f != 0.0))
        if scenario.size:
            direct.append((scenario + start, leg))
        change[rows] = part
    if direct:  # priced together: one engine call, not one per block
        scenario, leg = (np.concatenate(a) for a in zip(*direct, strict=True))
        change[scenario, leg] = legs.subset(leg).price(shocked[scenario, leg]) - am_today[leg]
    return change
