"""What-if sessions: open one on a portfolio (its book frozen), add and remove pro-forma trades,
calculate before/after/change, suggest hedges, save snapshots, export trades.

Trades are validated by `portfolios.position_csv.validate_record`, as positions are. A trade's
price defaults to the current (cached) close; an option without a cached close is priced by the
Greeks job's model at its underlying's close. A symbol SigmaSight holds no price for is unknown.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from analytics import selectors as analytics_selectors
from analytics.calculations import aggregation
from analytics.calculations.factors import MARKET
from analytics.models import FactorDefinition, PositionFactorExposure
from analytics.risk_services import factor_exposure
from analytics.selectors import ReadCache
from analytics.services import option_greeks
from marketdata import calendar
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.services import prices_fetch_within
from modeling import book as engine
from modeling import fix
from modeling.blotter import blotter_csv
from modeling.incremental import risk_removed, trade_contributions, trade_increments
from modeling.limits.pretrade import limits_check, limits_cleared
from modeling.models import ExportHistory, ModelingSession, ModelingSessionSnapshot, ProFormaTrade
from portfolios import position_csv
from portfolios.models import Portfolio
from sigmasight.exceptions import ConflictError, ValidationFailed

MAX_TRADES = 500
OPTION_MULTIPLIER = 100
SUGGESTION_KEY = -(10**12)  # suggested trades' row ids: below every stored trade's
TARGETS = ("delta_neutral", "beta_neutral", "reduce_factor")
HEDGE_INSTRUMENT = "SPY"
SIDE_NAMES = fix.SIDE_NAMES  # sides in words, as the API shows them


# --- sessions ---------------------------------------------------------------------------------


def _history_span() -> int:
    """The span every closes panel of a calculation covers: the factor window and one more."""
    return settings.SIGMASIGHT_FACTOR_WINDOW + 1


def session_date(portfolio: Portfolio, asked: date | None) -> date:
    """The asked date, else the latest session the factor (or Greeks) job computed for the
    portfolio, else the last completed session: the date whose stored results the base uses."""
    if asked is not None:
        return calendar.session_for(asked)
    latest = PositionFactorExposure.objects.filter(position__portfolio=portfolio).aggregate(
        d=Max("date")
    )["d"]
    return calendar.session_for(latest or analytics_selectors.latest_greeks_date(portfolio))


def _context(session: ModelingSession) -> engine.Context:
    """The session's context for one request, with a read cache of its own that knows the
    session's frozen closes without a read."""
    reads = ReadCache()
    closes, revalued = engine.arrays_from_bytes(session.base_arrays)
    if closes is not None:
        reads.closes_remember(closes, session.as_of, _history_span())
    ctx = engine.context_for(
        portfolio_id=session.portfolio_id,
        owner_id=session.owner_id,
        as_of=session.as_of,
        cash=float(session.base_context["cash"]),
        reads=reads,
    )
    ctx.revalued = revalued
    frozen = session.base_context["factors"]
    if ctx.factors != frozen:
        raise ConflictError(
            "The factor definitions changed since this session was opened; open a new session.",
            code="factors_changed",
        )
    return ctx


def session_create(
    *, owner, portfolio: Portfolio, name: str, as_of: date | None = None
) -> ModelingSession:
    """Freeze the portfolio's open positions (valued, with Greeks and betas) and their state."""
    as_of = session_date(portfolio, as_of)
    # One read of each closes panel for the whole request (the context's factor series too).
    reads = ReadCache()
    ctx = engine.context_for(
        portfolio_id=portfolio.pk,
        owner_id=owner.pk,
        as_of=as_of,
        cash=float(portfolio.cash),
        reads=reads,
    )
    base, quality = engine.base_build(portfolio.pk, ctx)
    rows = engine.book_to_json(base, ctx.factors)
    # The state is computed from the frozen rows, as every later calculation is.
    frozen = engine.book_from_json(rows, ctx.factors)
    before = _clean(engine.state(frozen, ctx))
    arrays = engine.arrays_to_bytes(
        reads.closes_known(as_of, _history_span()), engine.base_revalued(frozen, ctx)
    )
    return ModelingSession.objects.create(
        owner=owner,
        portfolio=portfolio,
        name=name,
        as_of=as_of,
        base_positions=rows,
        base_arrays=arrays,
        base_context={
            "cash": f"{portfolio.cash}",
            "factors": ctx.factors,
            "data_quality": quality,
            "before": before,
        },
    )


def engine_trade(t: ProFormaTrade) -> engine.Trade:
    return engine.Trade(
        key=-t.pk,
        symbol=t.symbol,
        underlying=t.underlying_symbol,
        option_type=t.option_type,
        strike=None if t.strike is None else float(t.strike),
        expiration=t.expiration,
        quantity=float(t.quantity),
        price=float(t.price),
        multiplier=t.multiplier,
    )


def engine_trades(trades: list[ProFormaTrade]) -> list[engine.Trade]:
    return [engine_trade(t) for t in trades]


def _after(
    session: ModelingSession, ctx: engine.Context, trades: list[engine.Trade]
) -> tuple[engine.Book, dict]:
    base = engine.book_from_json(session.base_positions, ctx.factors)
    book = base.plus(engine.trades_book(trades, base, ctx))
    return book, _clean(engine.state(book, ctx))


def session_calculate(*, session: ModelingSession) -> dict:
    """Apply the trades to the frozen base in memory: before, after and change."""
    trades = list(session.trades.order_by("id"))
    ctx = _context(session)
    after_book, after = _after(session, ctx, engine_trades(trades))
    before = session.base_context["before"]
    base = engine.book_from_json(session.base_positions, ctx.factors)
    increments = trade_increments(base, before["var"], engine_trades(trades), ctx)
    shares = trade_contributions(after_book, engine_trades(trades), ctx)
    for row in increments:
        row["contribution"] = shares[row["trade_id"]]
    impacts = {
        "as_of": session.as_of.isoformat(),
        "trade_count": len(trades),
        "calculated_at": timezone.now().isoformat(),
        "before": before,
        "after": after,
        "change": engine.change(before, after),
        "trades": _clean(increments),
        "limits": limits_check(session.owner_id, ctx, (base, before), (after_book, after)),
    }
    session.last_impacts = impacts
    session.status = ModelingSession.Status.CALCULATED
    session.calculated_at = timezone.now()
    session.save(update_fields=["last_impacts", "status", "calculated_at", "updated_at"])
    return impacts


def session_impacts(*, session: ModelingSession) -> dict:
    """The last impacts, calculated now when the trades changed since."""
    return session.last_impacts or session_calculate(session=session)


def session_save(*, session: ModelingSession) -> ModelingSessionSnapshot:
    """Freeze the session (base, trades, impacts) into a snapshot."""
    impacts = session_impacts(session=session)
    trades = [trade_json(t) for t in session.trades.order_by("id")]
    with transaction.atomic():
        snapshot = ModelingSessionSnapshot.objects.create(
            session=session,
            owner_id=session.owner_id,
            portfolio_id=session.portfolio_id,
            name=session.name,
            as_of=session.as_of,
            base_positions=session.base_positions,
            trades=trades,
            impacts=impacts,
        )
        session.status = ModelingSession.Status.SAVED
        session.save(update_fields=["status", "updated_at"])
    return snapshot


def trade_json(trade: ProFormaTrade) -> dict:
    return {
        "id": trade.pk,
        "symbol": trade.symbol,
        "underlying_symbol": trade.underlying_symbol,
        "option_type": trade.option_type,
        "strike": None if trade.strike is None else f"{trade.strike}",
        "expiration": trade.expiration.isoformat() if trade.expiration else None,
        "quantity": f"{trade.quantity}",
        "price": f"{trade.price}",
        "multiplier": trade.multiplier,
        "note": trade.note,
    }


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None, dates to ISO."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- trades -------------------------------------------------------------------------------------


def _invalid(
    message: str, fields: dict[str, list[str]], code: str = "validation_error"
) -> ValidationFailed:
    return ValidationFailed(message, code=code, fields=fields)


def trade_add(*, session: ModelingSession, data: dict) -> ProFormaTrade:
    """Validate a trade as a position row is validated, price it, and add it to the session."""
    if session.trades.count() >= MAX_TRADES:
        raise _invalid(
            f"A session holds at most {MAX_TRADES} trades.", {"non_field_errors": ["Too many."]}
        )
    given_price = data.get("price")
    given_price = None if given_price in (None, "") else str(given_price)
    problems = position_csv.Problems()
    record = position_csv.validate_record(
        {
            "symbol": data.get("symbol"),
            "quantity": data.get("quantity"),
            "entry_price": given_price if given_price is not None else "0",
            "entry_date": session.as_of.isoformat(),
            "underlying": data.get("underlying"),
            "option_type": data.get("option_type"),
            "strike": data.get("strike"),
            "expiration": data.get("expiration"),
        },
        row=0,
        problems=problems,
        today=max(session.as_of, date.today()),
        has_tags=False,
    )
    fields: dict[str, list[str]] = defaultdict(list)
    for problem in problems.items:
        column = {"entry_price": "price", "entry_date": "expiration"}.get(problem["column"])
        fields[column or problem["column"] or "non_field_errors"].append(problem["message"])
    if record is not None and record.expiration is not None and record.expiration <= session.as_of:
        fields["expiration"].append(
            f"The option expires on or before the session date ({session.as_of})."
        )
    if record is not None and given_price is not None and record.entry_price <= 0:
        fields["price"].append("A trade's price must be positive.")
    if fields:
        raise _invalid("The trade is not valid.", dict(fields))
    assert record is not None  # a row that is not a record has problems, raised above
    price = record.entry_price if given_price is not None else None
    price = _trade_price(record, session.as_of, price)
    with transaction.atomic():
        trade = ProFormaTrade.objects.create(
            session=session,
            symbol=record.symbol,
            underlying_symbol=record.underlying,
            option_type=record.option_type,
            strike=record.strike,
            expiration=record.expiration,
            quantity=record.quantity,
            price=price,
            multiplier=OPTION_MULTIPLIER if record.option_type else 1,
            note=str(data.get("note") or "")[:200],
        )
        _touch(session)
    return trade


def _trade_price(
    record: position_csv.PositionRecord, as_of: date, price: Decimal | None
) -> Decimal:
    """The given price, else the close, else (options) the model price. A symbol the cache
    lacks is fetched over the factor window first, as the market-data job fetches a held one
    (so its betas and P&L history exist), waiting at most SIGMASIGHT_WEB_PROVIDER_DEADLINE_S
    (past it: 503 market_data_pending, the fetch finishing in the background); one no provider
    prices (options: no underlying price) is unknown."""
    wanted = list(dict.fromkeys([record.symbol, record.underlying]))
    start = calendar.sessions_back(as_of, settings.SIGMASIGHT_FACTOR_WINDOW + 5)[0]
    prices_fetch_within(symbols=wanted, start=start, end=as_of)
    closes = engine.spot_prices(wanted, as_of)
    if record.underlying not in closes:
        raise _invalid(
            f"No market-data provider has a price for {record.underlying} on or before {as_of}.",
            {"symbol": [f"Unknown symbol {record.underlying}."]},
            code="unknown_symbol",
        )
    if price is not None:
        return price
    if record.symbol in closes:
        return _decimal_price(closes[record.symbol])
    assert record.strike is not None  # an option: a stock is priced by its own close
    contract = pd.DataFrame(
        {
            "symbol": [record.symbol],
            "underlying_symbol": [record.underlying],
            "option_type": [record.option_type],
            "strike": [float(record.strike)],
            "expiration": [record.expiration],
            "quantity": [1.0],
            "multiplier": [OPTION_MULTIPLIER],
        }
    )
    result, _, _, _ = option_greeks(contract, as_of, option_close=np.array([np.nan]))
    return _decimal_price(float(result.model_price[0]))


def _decimal_price(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def trade_remove(*, trade: ProFormaTrade) -> None:
    session = trade.session
    with transaction.atomic():
        trade.delete()
        _touch(session)


def _touch(session: ModelingSession) -> None:
    """Trades changed: the last impacts no longer describe the session."""
    session.last_impacts = None
    session.status = ModelingSession.Status.ACTIVE
    session.save(update_fields=["last_impacts", "status", "updated_at"])


# --- suggestions ----------------------------------------------------------------------------------


def session_suggest(
    *,
    session: ModelingSession,
    target: str,
    factor: str | None = None,
    instrument: str = HEDGE_INSTRUMENT,
) -> dict:
    """Hedge trades that bring the session's book (base + trades) to the target, and the state
    after them, computed by the same path as `session_calculate`.

    delta_neutral: portfolio delta (share equivalents, DESIGN.md) to zero with SPY shares, or
    with `instrument=underlying` each underlying's delta with its own stock; beta_neutral: the
    dollar Market exposure to zero with SPY; reduce_factor: one factor's dollar exposure to zero
    with its ETF proxy. Whole shares: what remains is less than one share's worth."""
    if target not in TARGETS:
        raise _invalid("Unknown target.", {"target": [f"Use one of {', '.join(TARGETS)}."]})
    current = engine_trades(list(session.trades.order_by("id")))
    ctx = _context(session)
    base = engine.book_from_json(session.base_positions, ctx.factors)
    book = base.plus(engine.trades_book(current, base, ctx))
    if target == "delta_neutral":
        hedges, metric = _delta_hedges(book, ctx, instrument)
    elif target == "beta_neutral":
        hedges, metric = _factor_hedge(book, ctx, MARKET, HEDGE_INSTRUMENT)
    else:
        hedges, metric = _factor_hedge(book, ctx, *_factor_proxy(factor))
    hedged, after = _after(session, ctx, [*current, *hedges])
    metric["after"] = _metric_value(after, metric)
    # The book's state before the hedges: the last calculation's while the trades are unchanged.
    now = (session.last_impacts or {}).get("after") or (
        _clean(engine.state(book, ctx)) if current else session.base_context["before"]
    )
    removed = risk_removed(now["var"], after["var"])
    limits = limits_check(session.owner_id, ctx, (book, now), (hedged, after))
    return {
        "target": target,
        "factor": metric.get("factor"),
        "instrument": metric["instrument"],
        "metric": metric,
        "trades": [
            {
                "symbol": t.symbol,
                "underlying_symbol": t.underlying,
                "option_type": t.option_type,
                "quantity": f"{Decimal(repr(t.quantity)).normalize():f}",
                "price": f"{_decimal_price(t.price)}",
            }
            for t in hedges
        ],
        "after": after,
        "risk_removed": removed,
        "limits_cleared": limits_cleared(limits),
        "limits": limits,
    }


def _hedge(ctx: engine.Context, symbol: str, quantity: float, key: int) -> engine.Trade | None:
    price = engine.spot_prices([symbol], ctx.as_of).get(symbol)
    if price is None:
        raise _invalid(
            f"SigmaSight has no price for the hedge instrument {symbol}.",
            {"instrument": [f"No cached price for {symbol}."]},
            code="unknown_symbol",
        )
    if quantity == 0:
        return None
    return engine.Trade(
        key=key,
        symbol=symbol,
        underlying=symbol,
        option_type="",
        strike=None,
        expiration=None,
        quantity=float(quantity),
        price=price,
        multiplier=1,
    )


def _delta_hedges(
    book: engine.Book, ctx: engine.Context, instrument: str
) -> tuple[list[engine.Trade], dict]:
    frame = book.frame
    total = aggregation.greeks(frame)["delta"]
    if instrument.lower() != "underlying":
        symbol = instrument.strip().upper()
        hedge = _hedge(ctx, symbol, -round(total), SUGGESTION_KEY)
        metric = {"name": "delta", "instrument": symbol, "current": total}
        return [hedge] if hedge else [], metric
    per = frame.groupby("underlying_symbol")["delta"].sum()
    quantities = {u: -round(d) for u, d in per.items()}
    # Rounding per underlying can leave more than a share in all: the largest delta takes it.
    residual = total + sum(quantities.values())
    if abs(residual) >= 0.5 and len(per):
        largest = per.abs().idxmax()
        quantities[largest] -= round(residual)
    hedges = [
        _hedge(ctx, symbol, quantity, SUGGESTION_KEY - i)
        for i, (symbol, quantity) in enumerate(sorted(quantities.items()))
    ]
    metric = {"name": "delta", "instrument": "underlying", "current": total}
    return [h for h in hedges if h is not None], metric


def _factor_proxy(name: str | None) -> tuple[str, str]:
    if not name:
        raise _invalid("Name the factor to reduce.", {"factor": ["This parameter is required."]})
    factor = FactorDefinition.objects.filter(name__iexact=name.strip(), is_active=True).first()
    if factor is None or not factor.etf_proxy:
        raise _invalid(
            f"{name} is not an active factor with a proxy.", {"factor": ["Unknown factor."]}
        )
    if factor.etf_proxy in (RATE_10Y, RATE_SHORT):
        raise _invalid(
            f"{factor.name}'s proxy {factor.etf_proxy} is a yield series, not a tradable "
            "instrument.",
            {"factor": ["No tradable proxy."]},
        )
    return factor.name, factor.etf_proxy


def _factor_hedge(
    book: engine.Book, ctx: engine.Context, factor: str, proxy: str
) -> tuple[list[engine.Trade], dict]:
    """Size the proxy so the factor's dollar exposure (exposure x beta, summed) goes to zero;
    one share's exposure is computed through the same trade path as any trade's."""
    if factor not in ctx.factors:
        raise _invalid(f"{factor} is not in the factor model.", {"factor": ["Unknown factor."]})
    k = ctx.factors.index(factor)
    current = float(np.nansum(factor_exposure(book.frame) * book.betas[:, k]))
    probe = _hedge(ctx, proxy, 1.0, SUGGESTION_KEY)
    assert probe is not None  # one share is a trade
    unit = engine.trades_book([probe], book, ctx)
    per_share = float(factor_exposure(unit.frame)[0] * unit.betas[0, k])
    metric = {
        "name": "dollar_exposure",
        "factor": factor,
        "instrument": proxy,
        "current": current,
        "per_share": per_share,
    }
    if not abs(per_share) > 1e-9:
        raise _invalid(
            f"{proxy} has no exposure to {factor} to hedge with.",
            {"factor": [f"{proxy}'s beta to {factor} is zero."]},
            code="no_hedge",
        )
    hedge = _hedge(ctx, proxy, -round(current / per_share), SUGGESTION_KEY)
    return [hedge] if hedge else [], metric


def _metric_value(state: dict, metric: dict) -> float | None:
    if metric["name"] == "delta":
        return state["greeks"]["delta"]
    return state["factor_dollar_exposures"].get(metric["factor"])


# --- export ------------------------------------------------------------------------------------


def trade_sides(session: ModelingSession, trades: list[ProFormaTrade]) -> dict[int, str]:
    """FIX side per trade: buy; sell; sell short when the sell takes the position (the frozen
    base's quantity of the symbol plus the trades before it) below zero."""
    position: dict[str, Decimal] = defaultdict(Decimal)
    for row in session.base_positions:
        position[row["symbol"]] += Decimal(repr(row["quantity"]))
    sides = {}
    for trade in trades:
        if trade.quantity > 0:
            sides[trade.pk] = fix.BUY
        else:
            sides[trade.pk] = (
                fix.SELL_SHORT if position[trade.symbol] + trade.quantity < 0 else fix.SELL
            )
        position[trade.symbol] += trade.quantity
    return sides


def trades_export(*, user, session: ModelingSession, format: str) -> ExportHistory:
    """The session's trades as a CSV blotter or FIX 4.4 NewOrderSingle messages, stored as a file
    and recorded in the export history."""
    trades = list(session.trades.order_by("id"))
    if not trades:
        raise _invalid(
            "The session has no trades to export.", {"session": ["No trades."]}, code="no_trades"
        )
    if format not in ExportHistory.Format.values:
        raise _invalid("Unknown format.", {"format": ["Use csv or fix."]})
    sides = trade_sides(session, trades)
    now = timezone.now().astimezone(UTC)
    with transaction.atomic():
        export = ExportHistory.objects.create(
            user=user, session=session, format=format, trade_count=len(trades)
        )
        orders = [_order(export, t, sides[t.pk], now) for t in trades]
        if format == ExportHistory.Format.FIX:
            content = fix.encode_orders(
                orders,
                sender=settings.SIGMASIGHT_FIX_SENDER_COMP_ID,
                target=settings.SIGMASIGHT_FIX_TARGET_COMP_ID,
                sending_time=now,
            )
        else:
            content = blotter_csv(orders, trades)
        export.file.save(f"session-{session.pk}-export-{export.pk}.{format}", ContentFile(content))
    return export


def _order(export: ExportHistory, trade: ProFormaTrade, side: str, now: datetime) -> fix.Order:
    return fix.Order(
        cl_ord_id=f"SS{export.pk}-{trade.pk}",
        symbol=trade.underlying_symbol if trade.option_type else trade.symbol,
        side=side,
        quantity=abs(trade.quantity),
        price=trade.price,
        put_or_call=trade.option_type or None,
        maturity=trade.expiration,
        strike=trade.strike,
        transact_time=now,
    )
