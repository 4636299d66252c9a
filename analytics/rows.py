"""The rows the analytics jobs write in bulk (`sigmasight.db.upsert_records`, `update_records`):
NamedTuples whose fields are the model's columns, by attname (`position_id`), so the columns of
a write come from the row type. JSON columns hold their text, or the value the column's field
prepares for the database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple


class ValuationRow(NamedTuple):
    """A position's valuation on a session, as `update_records` writes it (the key last)."""

    last_price: Decimal | None
    market_value: Decimal | None
    exposure: Decimal | None
    unrealized_pnl: Decimal | None
    daily_pnl: Decimal | None
    valued_as_of: date | None
    updated_at: object
    id: int


class GreeksRow(NamedTuple):
    """A `PositionGreeks` row as upserted (None where a number is not finite)."""

    position_id: int
    date: date
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    rho: float | None
    dollar_delta: float | None
    implied_volatility: float | None
    volatility: float | None
    volatility_source: str
    underlying_price: float | None
    model_price: float | None
    risk_free_rate: float
    dividend_yield: float
    exercise_style: str
    early_exercise_premium: float | None
    days_to_expiry: int
    computed_at: object


class PositionFactorRow(NamedTuple):
    """A `PositionFactorExposure` row as upserted."""

    position_id: int
    factor_id: int
    date: date
    beta: float
    raw_beta: float
    std_error: float
    dollar_exposure: float
    r_squared: float
    observations: int
    capped: bool


class PortfolioFactorRow(NamedTuple):
    """A `PortfolioFactorExposure` row as upserted."""

    portfolio_id: int
    factor_id: int
    date: date
    beta: float
    dollar_exposure: float
    normalized_by: str
    positions_with_beta: int
    positions_without_beta: int


class RateBetaRow(NamedTuple):
    """A `PositionInterestRateBeta` row as upserted."""

    position_id: int
    date: date
    ir_beta: float
    r_squared: float
    observations: int


class ScenarioRow(NamedTuple):
    """A `MarketRiskScenario` row as upserted."""

    portfolio_id: int
    date: date
    kind: str
    move: float
    predicted_pnl: float
    delta_only_pnl: float | None
    predicted_return: float


class RiskMetricRow(NamedTuple):
    """A `RiskMetricSnapshot` row as upserted (JSON columns as their text)."""

    portfolio_id: int
    date: date
    confidence: float
    horizon_days: int
    var_historical: float
    var_parametric: float | None
    var_monte_carlo: float | None
    expected_shortfall: float
    volatility: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    beta: float | None
    backtest: str
    observations: int
    details: str


class SnapshotRow(NamedTuple):
    """A `PortfolioSnapshot` row as upserted (JSON columns prepared for the database)."""

    portfolio_id: int
    date: date
    equity: Decimal
    market_value: Decimal
    cash: Decimal
    daily_pnl: Decimal
    daily_return: float
    cumulative_pnl: Decimal
    gross_exposure: Decimal
    net_exposure: Decimal
    long_exposure: Decimal
    short_exposure: Decimal
    delta_adjusted_exposure: Decimal
    greeks: object
    factor_betas: object
    position_count: int
    data_quality: object


class PortfolioAttributionRow(NamedTuple):
    """A `PortfolioAttribution` row as upserted (JSON columns prepared for the database)."""

    portfolio_id: int
    date: date
    total_pnl: float
    factor_pnl: float
    specific_pnl: float
    by_factor: object
    greeks: object
    basis: str
    computed_at: object


class PositionAttributionRow(NamedTuple):
    """A `PositionAttribution` row as upserted (the Greek parts None for stocks)."""

    position_id: int
    date: date
    total_pnl: float
    factor_pnl: float
    specific_pnl: float
    by_factor: object
    delta_pnl: float | None
    gamma_pnl: float | None
    vega_pnl: float | None
    theta_pnl: float | None
    rho_pnl: float | None
    residual_pnl: float | None
