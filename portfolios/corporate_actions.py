"""Applying corporate actions to the books on their ex-date, once, audited.

A position takes an action when it was held into the ex-date: open, entered before the ex-date,
and recorded before that day began (a position uploaded later is already in post-action terms).
One `AppliedCorporateAction` per (position, action) is both its history record and the reason
re-running a session changes nothing.

Rules (ratio = split_to / split_from):
- stock split: quantity x ratio, entry price / ratio (cost basis unchanged);
- option on a split stock, integer ratio (2:1, 3:1, 4:1; OCC): contracts x ratio at strike /
  ratio, a new OCC symbol (and security) whose history is the old contract's / ratio;
- option, any other ratio (3-for-2, reverse splits): the deliverable changes, multiplier x
  ratio (150 shares per contract), strike, symbol and contracts unchanged, entry price and the
  contract's stored prices / ratio so value and P&L stay continuous;
- cash dividend: the portfolio's cash += quantity x multiplier x amount for stock (a short pays
  it: negative), recorded in `cash`; the session's daily P&L adds it (analytics' book frame).

The split stock's own stored prices before the ex-date are made split-adjusted once
(`marketdata.corporate_actions.prices_split_adjust`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import F

from marketdata.corporate_actions import ex_date_start, prices_split_adjust, prices_split_copy
from marketdata.models import CorporateAction, Security
from marketdata.symbols import SymbolError, build_occ, looks_like_occ, parse_occ
from portfolios.models import AppliedCorporateAction, Portfolio, Position
from sigmasight.audit.services import audit_record

AUDIT_ACTION = "corporate_action.apply"
SIX = Decimal("0.000001")
CENTS = Decimal("0.01")
OCC_STRIKE = Decimal("0.001")


@dataclass
class ApplyReport:
    as_of: date
    actions: int = 0  # actions with this ex-date
    applied: int = 0  # (position, action) applications made now
    stock_splits: int = 0
    option_splits: int = 0  # integer ratio: new contracts
    option_deliverables: int = 0  # other ratios: multiplier changed
    dividends: int = 0
    cash: dict[int, Decimal] = field(default_factory=dict)  # portfolio -> dividend cash
    prices_adjusted: int = 0  # stored bars divided or copied
    warnings: dict[int, list[str]] = field(default_factory=dict)  # portfolio -> reasons


def _ratio(action: CorporateAction) -> Decimal:
    assert action.split_to is not None and action.split_from is not None
    return Decimal(action.split_to) / Decimal(action.split_from)


def corporate_actions_apply(*, as_of: date, portfolio_ids: list[int] | None = None) -> ApplyReport:
    """Apply the actions whose ex-date is `as_of` to the open positions of the portfolios
    (every portfolio for None) that held them into it; a no-op for what was applied before."""
    report = ApplyReport(as_of=as_of)
    actions = list(
        CorporateAction.objects.filter(ex_date=as_of)
        .select_related("security")
        .order_by("security__symbol", "-kind")  # splits before the dividend of the same day
    )
    report.actions = len(actions)
    if not actions:
        return report
    symbols = {a.security.symbol for a in actions}
    positions = Position.objects.filter(
        closed_at__isnull=True,
        entry_date__lt=as_of,
        created_at__lt=ex_date_start(as_of),
        underlying_symbol__in=symbols,
    ).select_related("portfolio")
    if portfolio_ids is not None:
        positions = positions.filter(portfolio_id__in=portfolio_ids)
    held = list(positions.order_by("portfolio_id", "id"))
    done = set(
        AppliedCorporateAction.objects.filter(
            action__in=actions, position__in=[p.id for p in held]
        ).values_list("position_id", "action_id")
    )
    with transaction.atomic():
        for action in actions:
            if action.kind == CorporateAction.Kind.SPLIT:
                # The stock's own history, whoever holds it (once per action).
                report.prices_adjusted += (
                    prices_split_adjust(
                        action=action, security_id=action.security_id, factor=_ratio(action)
                    )
                    or 0
                )
            for position in held:
                if position.underlying_symbol != action.security.symbol:
                    continue
                if (position.id, action.id) in done:
                    continue
                record = _apply(action, position, report)
                if record is None:
                    continue
                record.save()
                done.add((position.id, action.id))
                report.applied += 1
                _audit(record, position)
        for portfolio_id, amount in report.cash.items():
            Portfolio.objects.filter(pk=portfolio_id).update(cash=F("cash") + amount)
    return report


def _apply(
    action: CorporateAction, position: Position, report: ApplyReport
) -> AppliedCorporateAction | None:
    record = AppliedCorporateAction(
        portfolio_id=position.portfolio_id,
        position=position,
        action=action,
        ex_date=action.ex_date,
        kind=action.kind,
        old_symbol=position.symbol,
        old_quantity=position.quantity,
        old_entry_price=position.entry_price,
        old_strike=position.strike,
        old_multiplier=position.multiplier,
    )
    if action.kind == CorporateAction.Kind.CASH_DIVIDEND:
        if position.option_type:
            return None  # listed options are not adjusted for ordinary cash dividends
        assert action.cash_amount is not None
        cash = (position.quantity * position.multiplier * action.cash_amount).quantize(
            CENTS, ROUND_HALF_UP
        )
        record.rule = "dividend_long" if cash >= 0 else "dividend_short"
        record.cash = cash
        report.cash[position.portfolio_id] = (
            report.cash.get(position.portfolio_id, Decimal(0)) + cash
        )
        report.dividends += 1
    elif not position.option_type:
        _split_stock(action, position, record, report)
    else:
        ratio = _ratio(action)
        if ratio == ratio.to_integral_value() and ratio > 1:
            if not _split_option(action, position, record, report, ratio):
                return None
        elif not _adjust_deliverable(action, position, record, report, ratio):
            return None
    record.new_symbol = position.symbol
    record.new_quantity = position.quantity
    record.new_entry_price = position.entry_price
    record.new_strike = position.strike
    record.new_multiplier = position.multiplier
    return record


def _split_stock(
    action: CorporateAction, position: Position, record: AppliedCorporateAction, report: ApplyReport
) -> None:
    ratio = _ratio(action)
    position.quantity = (position.quantity * ratio).quantize(SIX, ROUND_HALF_UP)
    position.entry_price = (position.entry_price / ratio).quantize(SIX, ROUND_HALF_UP)
    position.save(update_fields=["quantity", "entry_price", "updated_at"])
    record.rule = "stock_split"
    report.stock_splits += 1


def _split_option(
    action: CorporateAction,
    position: Position,
    record: AppliedCorporateAction,
    report: ApplyReport,
    ratio: Decimal,
) -> bool:
    assert position.strike is not None and position.expiration is not None
    strike = (position.strike / ratio).quantize(OCC_STRIKE, ROUND_HALF_UP)
    try:
        root = parse_occ(position.symbol).root if looks_like_occ(position.symbol) else ""
        symbol = build_occ(
            root or action.security.symbol, position.expiration, position.option_type, strike
        )
    except SymbolError as exc:
        _warn(report, position, f"{position.symbol}: no contract after the split ({exc})")
        return False
    clash = Position.objects.filter(
        portfolio_id=position.portfolio_id,
        symbol=symbol,
        entry_date=position.entry_date,
        closed_at__isnull=True,
    ).exists()
    if clash:
        _warn(
            report,
            position,
            f"{position.symbol}: the portfolio already holds {symbol} "
            f"entered {position.entry_date}; split not applied, merge the lots by hand",
        )
        return False
    old_security_id = position.security_id
    security, _ = Security.objects.get_or_create(
        symbol=symbol,
        defaults={
            "asset_type": Security.AssetType.OPTION,
            "underlying": action.security.symbol,
            "expiration": position.expiration,
            "strike": strike,
            "option_type": position.option_type,
            "multiplier": position.multiplier,
        },
    )
    position.security = security
    position.symbol = symbol
    position.strike = strike
    position.quantity = (position.quantity * ratio).quantize(SIX, ROUND_HALF_UP)
    position.entry_price = (position.entry_price / ratio).quantize(SIX, ROUND_HALF_UP)
    position.save(
        update_fields=["security", "symbol", "strike", "quantity", "entry_price", "updated_at"]
    )
    record.rule = "option_split"
    report.option_splits += 1
    report.prices_adjusted += (
        prices_split_copy(
            action=action,
            from_security_id=old_security_id,
            to_security_id=security.id,
            factor=ratio,
        )
        or 0
    )
    return True


def _adjust_deliverable(
    action: CorporateAction,
    position: Position,
    record: AppliedCorporateAction,
    report: ApplyReport,
    ratio: Decimal,
) -> bool:
    multiplier = Decimal(position.multiplier) * ratio
    if multiplier != multiplier.to_integral_value() or multiplier < 1:
        _warn(
            report,
            position,
            f"{position.symbol}: a {action.split_to}:{action.split_from} "
            f"split makes a deliverable of {multiplier} shares; not applied, adjust by hand",
        )
        return False
    old_multiplier = position.multiplier
    position.multiplier = int(multiplier)
    position.entry_price = (position.entry_price / ratio).quantize(SIX, ROUND_HALF_UP)
    position.save(update_fields=["multiplier", "entry_price", "updated_at"])
    record.rule = "option_deliverable"
    report.option_deliverables += 1
    # The contract itself (shared by every book holding it) delivers the new number of shares.
    Security.objects.filter(pk=position.security_id, multiplier=old_multiplier).update(
        multiplier=int(multiplier)
    )
    report.prices_adjusted += (
        prices_split_adjust(
            action=action, security_id=position.security_id, factor=ratio, all_sources=True
        )
        or 0
    )
    return True


def _warn(report: ApplyReport, position: Position, message: str) -> None:
    report.warnings.setdefault(position.portfolio_id, []).append(message[:300])


def _audit(record: AppliedCorporateAction, position: Position) -> None:
    audit_record(
        AUDIT_ACTION,
        obj=position,
        portfolio_id=position.portfolio_id,
        owner_id=position.portfolio.owner_id,
        corporate_action_id=record.action_id,
        kind=record.kind,
        rule=record.rule,
        ex_date=record.ex_date,
        old={
            "symbol": record.old_symbol,
            "quantity": record.old_quantity,
            "entry_price": record.old_entry_price,
            "strike": record.old_strike,
            "multiplier": record.old_multiplier,
        },
        new={
            "symbol": record.new_symbol,
            "quantity": record.new_quantity,
            "entry_price": record.new_entry_price,
            "strike": record.new_strike,
            "multiplier": record.new_multiplier,
        },
        cash=record.cash,
    )
