from __future__ import annotations

from datetime import date
from typing import Any, cast

from django.core.validators import RegexValidator
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.api.serializers import ExposuresSerializer, GreeksSerializer
from marketdata.api.serializers import TICKER
from modeling import services
from modeling.models import (
    ExportHistory,
    ModelingSession,
    ModelingSessionSnapshot,
    ProFormaTrade,
    Report,
)
from portfolios.models import Portfolio
from sigmasight.api.fields import CheckedCharField
from sigmasight.api.query import QuerySerializer
from sigmasight.validators import no_control_characters, no_control_characters_multiline

# --- impacts (documentation of the stored JSON) ---------------------------------------------------


class ScenarioRowSerializer(serializers.Serializer):
    scenario = serializers.CharField()
    move = serializers.FloatField()
    predicted_pnl = serializers.FloatField()
    delta_only_pnl = serializers.FloatField(allow_null=True)
    predicted_return = serializers.FloatField()


class ScenariosSerializer(serializers.Serializer):
    market = ScenarioRowSerializer(many=True)
    rates = ScenarioRowSerializer(many=True)


class StressRowSerializer(serializers.Serializer):
    scenario_id = serializers.IntegerField()
    scenario = serializers.CharField()
    category = serializers.CharField()
    direct_pnl = serializers.FloatField()
    correlated_pnl = serializers.FloatField()
    pnl_pct = serializers.FloatField()


class BacktestSerializer(serializers.Serializer):
    exceptions = serializers.IntegerField()
    observations = serializers.IntegerField()
    kupiec_p_value = serializers.FloatField(allow_null=True)


class VarRowSerializer(serializers.Serializer):
    confidence = serializers.FloatField()
    horizon_days = serializers.IntegerField(required=False)
    var_historical = serializers.FloatField(required=False, allow_null=True)
    var_parametric = serializers.FloatField(required=False, allow_null=True)
    var_monte_carlo = serializers.FloatField(required=False, allow_null=True)
    expected_shortfall = serializers.FloatField(required=False, allow_null=True)
    volatility = serializers.FloatField(required=False, allow_null=True)
    sharpe = serializers.FloatField(required=False, allow_null=True)
    sortino = serializers.FloatField(required=False, allow_null=True)
    max_drawdown = serializers.FloatField(required=False, allow_null=True)
    beta = serializers.FloatField(required=False, allow_null=True)
    backtest = BacktestSerializer(required=False)
    observations = serializers.IntegerField(required=False)
    error = serializers.CharField(
        required=False, help_text="why the metrics could not be computed (e.g. short history)"
    )


class StateSerializer(serializers.Serializer):
    equity = serializers.DecimalField(max_digits=24, decimal_places=2)
    exposures = ExposuresSerializer()
    greeks = GreeksSerializer(help_text="delta in share equivalents (DESIGN.md)")
    normalized_by = serializers.CharField(allow_null=True, help_text="equity or gross")
    factor_betas = serializers.DictField(child=serializers.FloatField(allow_null=True))
    factor_dollar_exposures = serializers.DictField(child=serializers.FloatField())
    scenarios = ScenariosSerializer(help_text="market +-1% (options fully revalued), rates +-50bp")
    stress = StressRowSerializer(many=True, help_text="every active stress scenario")
    stress_error = serializers.CharField(
        allow_null=True, help_text="why there is no stress result (too little factor history)"
    )
    var = VarRowSerializer(many=True, help_text="1-day VaR and risk metrics at 95% and 99%")


class RiskChangeRowSerializer(serializers.Serializer):
    confidence = serializers.FloatField()
    var_historical = serializers.FloatField(allow_null=True)
    var_parametric = serializers.FloatField(allow_null=True)
    var_monte_carlo = serializers.FloatField(allow_null=True)
    expected_shortfall = serializers.FloatField(allow_null=True, help_text="historical")
    error = serializers.CharField(required=False, help_text="why a side could not be measured")


class RiskChangeSerializer(serializers.Serializer):
    var = serializers.FloatField(allow_null=True, help_text="historical 1-day VaR at 95%, currency")
    es = serializers.FloatField(allow_null=True, help_text="historical 1-day ES at 95%, currency")
    by = RiskChangeRowSerializer(many=True, help_text="every measure at 95% and 99%")


class TradeContributionSerializer(serializers.Serializer):
    var = serializers.FloatField(allow_null=True, help_text="Euler component of the VaR")
    es = serializers.FloatField(allow_null=True, help_text="Euler component of the ES")
    marginal_var = serializers.FloatField(allow_null=True, help_text="VaR per $ of exposure")
    share_of_var = serializers.FloatField(allow_null=True, help_text="component / VaR")
    error = serializers.CharField(required=False, help_text="why it is unknown")


class TradeRiskSerializer(serializers.Serializer):
    trade_id = serializers.IntegerField()
    incremental = RiskChangeSerializer(
        help_text="the change of the base book's VaR and ES when this trade alone is added "
        "(positive: it adds risk)"
    )
    contribution = TradeContributionSerializer(
        help_text="the trade's share of the after-book's 95% 1-day historical VaR and ES"
    )


class LimitSideSerializer(serializers.Serializer):
    value = serializers.FloatField(
        allow_null=True, help_text="the measure in the limit's unit; null when unknown"
    )
    level = serializers.CharField(allow_null=True, help_text="pass, warning or hard; null: unknown")
    reason = serializers.CharField(allow_null=True, help_text="why the value is unknown")


class LimitCheckSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    name = serializers.CharField()
    measure = serializers.CharField()
    params = serializers.DictField(help_text="with the measure's defaults filled in")
    bound = serializers.CharField(help_text="max, min or abs_max")
    unit = serializers.CharField(help_text="money, share_of_equity, number or days")
    warning = serializers.FloatField(allow_null=True)
    hard = serializers.FloatField()
    before = LimitSideSerializer()
    after = LimitSideSerializer()
    cleared = serializers.BooleanField(
        required=False, help_text="suggestions: beyond a level before the hedge, within after"
    )


class ImpactsSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    trade_count = serializers.IntegerField()
    calculated_at = serializers.DateTimeField()
    before = StateSerializer(help_text="the frozen base book")
    after = StateSerializer(help_text="the base with the session's trades")
    change = StateSerializer(help_text="after minus before, item by item")
    trades = TradeRiskSerializer(many=True, help_text="each trade's incremental risk")
    limits = LimitCheckSerializer(
        many=True, help_text="every active limit of the portfolio before and after the trades"
    )


# --- sessions and trades ---------------------------------------------------------------------------


# Choice fields go out as plain strings: enums of the same name elsewhere in the API would
# collide in the schema.
STATUS_HELP = "active, calculated (last_impacts are current) or saved"


class TradeSerializer(serializers.ModelSerializer):
    option_type = serializers.CharField(read_only=True, help_text="C, P, or blank for stocks")
    side = serializers.SerializerMethodField(
        help_text="buy, sell or sell_short (a sell taking the position below zero)"
    )

    class Meta:
        model = ProFormaTrade
        fields = [
            "id",
            "symbol",
            "underlying_symbol",
            "option_type",
            "strike",
            "expiration",
            "quantity",
            "price",
            "multiplier",
            "side",
            "note",
            "created_at",
        ]
        read_only_fields = fields

    def get_side(self, trade: ProFormaTrade) -> str | None:
        side = self.context.get("sides", {}).get(trade.pk)
        return services.SIDE_NAMES[side] if side else None


class TradeCreateSerializer(serializers.Serializer):
    """Numbers arrive as strings or numbers and are validated as a position row is."""

    symbol = serializers.CharField(max_length=32, help_text="ticker or OCC option symbol")
    quantity = serializers.CharField(max_length=40, help_text="signed; options in contracts")
    price = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="default: the current price (options without a close: the model price)",
    )
    underlying = serializers.CharField(max_length=16, required=False, allow_blank=True)
    option_type = serializers.CharField(max_length=4, required=False, allow_blank=True)
    strike = serializers.CharField(max_length=40, required=False, allow_blank=True)
    expiration = serializers.CharField(max_length=10, required=False, allow_blank=True)
    note = CheckedCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        validators=[no_control_characters_multiline],
    )


class SessionListSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    trade_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ModelingSession
        fields = [
            "id",
            "portfolio",
            "name",
            "status",
            "as_of",
            "trade_count",
            "calculated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    cash = serializers.SerializerMethodField()
    base_position_count = serializers.SerializerMethodField()
    data_quality = serializers.SerializerMethodField()
    trades = serializers.SerializerMethodField()
    last_impacts = serializers.SerializerMethodField(
        help_text="null until calculated, and again after the trades change"
    )

    class Meta:
        model = ModelingSession
        fields = [
            "id",
            "portfolio",
            "name",
            "status",
            "as_of",
            "cash",
            "base_position_count",
            "data_quality",
            "trades",
            "last_impacts",
            "calculated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DecimalField(max_digits=20, decimal_places=2))
    def get_cash(self, session: ModelingSession) -> str:
        return session.base_context.get("cash", "0.00")

    def get_base_position_count(self, session: ModelingSession) -> int:
        return len(session.base_positions)

    @extend_schema_field(serializers.DictField())
    def get_data_quality(self, session: ModelingSession) -> dict:
        return session.base_context.get("data_quality", {})

    @extend_schema_field(TradeSerializer(many=True))
    def get_trades(self, session: ModelingSession) -> list:
        trades = list(session.trades.all())
        sides = services.trade_sides(session, trades)
        # many=True makes a ListSerializer (a list); the stubs type every Serializer's data as a dict.
        return TradeSerializer(trades, many=True, context={"sides": sides}).data  # type: ignore[return-value]

    @extend_schema_field(ImpactsSerializer(allow_null=True))
    def get_last_impacts(self, session: ModelingSession) -> dict | None:
        return session.last_impacts


class SessionCreateSerializer(serializers.Serializer):
    portfolio = serializers.PrimaryKeyRelatedField(queryset=Portfolio.objects.none())
    name = CheckedCharField(min_length=1, max_length=120, validators=[no_control_characters])
    as_of = serializers.DateField(
        required=False, help_text="default: the latest session the batch computed for the book"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            portfolio = cast(serializers.PrimaryKeyRelatedField, self.fields["portfolio"])
            # django-stubs types Manager as a descriptor, which mypy applies to this assignment.
            portfolio.queryset = Portfolio.objects.filter(owner=request.user)  # type: ignore[arg-type]

    def validate_as_of(self, value: date) -> date:
        if value > date.today():
            raise serializers.ValidationError("The session date cannot be in the future.")
        return value


class SessionUpdateSerializer(serializers.Serializer):
    name = CheckedCharField(min_length=1, max_length=120, validators=[no_control_characters])


class SnapshotSerializer(serializers.ModelSerializer):
    trade_count = serializers.SerializerMethodField()
    impacts = serializers.SerializerMethodField()
    trades = serializers.SerializerMethodField()

    class Meta:
        model = ModelingSessionSnapshot
        fields = [
            "id",
            "session",
            "portfolio",
            "name",
            "as_of",
            "trade_count",
            "trades",
            "impacts",
            "created_at",
        ]
        read_only_fields = fields

    def get_trade_count(self, snapshot: ModelingSessionSnapshot) -> int:
        return len(snapshot.trades)

    @extend_schema_field(ImpactsSerializer)
    def get_impacts(self, snapshot: ModelingSessionSnapshot) -> dict:
        return snapshot.impacts

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_trades(self, snapshot: ModelingSessionSnapshot) -> list:
        return snapshot.trades


class SuggestionQuery(QuerySerializer):
    target = serializers.ChoiceField(choices=services.TARGETS)
    factor = serializers.CharField(
        required=False, max_length=50, help_text="reduce_factor: the factor's name"
    )
    instrument = serializers.CharField(
        required=False,
        max_length=16,
        default=services.HEDGE_INSTRUMENT,
        help_text="delta_neutral: SPY (default), another ticker, or 'underlying'",
        validators=[RegexValidator(rf"^{TICKER}$", "A ticker or 'underlying'.")],
    )


class SuggestedTradeSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    underlying_symbol = serializers.CharField()
    option_type = serializers.CharField(allow_blank=True)
    quantity = serializers.DecimalField(max_digits=20, decimal_places=6)
    price = serializers.DecimalField(max_digits=20, decimal_places=6)


class SuggestionMetricSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="delta (share equivalents) or dollar_exposure")
    factor = serializers.CharField(required=False)
    instrument = serializers.CharField()
    current = serializers.FloatField(help_text="the session's book now (base + trades)")
    per_share = serializers.FloatField(required=False)
    after = serializers.FloatField(allow_null=True, help_text="with the suggested trades")


class SuggestionSerializer(serializers.Serializer):
    target = serializers.CharField()
    factor = serializers.CharField(allow_null=True)
    instrument = serializers.CharField()
    metric = SuggestionMetricSerializer()
    trades = SuggestedTradeSerializer(many=True)
    after = StateSerializer()
    risk_removed = RiskChangeSerializer(
        help_text="the session book's VaR and ES before the hedges less after them (positive: "
        "the hedge removes risk)"
    )
    limits = LimitCheckSerializer(
        many=True, help_text="every active limit of the portfolio before and after the hedge"
    )
    limits_cleared = serializers.ListField(
        child=serializers.IntegerField(), help_text="the limits the hedge brings back within"
    )


# --- export ---------------------------------------------------------------------------------------


class ExportRequestSerializer(serializers.Serializer):
    session = serializers.IntegerField(min_value=1)
    format = serializers.ChoiceField(choices=ExportHistory.Format.values)


class ExportHistorySerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()

    class Meta:
        model = ExportHistory
        fields = ["id", "session", "format", "trade_count", "created_at", "download"]
        read_only_fields = fields

    def get_download(self, export: ExportHistory) -> str:
        return f"/api/v1/export/history/{export.pk}/download/"


# --- reports ---------------------------------------------------------------------------------------


class ReportGenerateSerializer(serializers.Serializer):
    portfolio = serializers.PrimaryKeyRelatedField(
        queryset=Portfolio.objects.none(), help_text="one of your portfolios"
    )
    kind = serializers.ChoiceField(choices=Report.Kind.choices)
    format = serializers.ChoiceField(choices=Report.Format.choices)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # Another user's portfolio is "does not exist", exactly like an unknown id.
            portfolio = cast(serializers.PrimaryKeyRelatedField, self.fields["portfolio"])
            # django-stubs types Manager as a descriptor, which mypy applies to this assignment.
            portfolio.queryset = Portfolio.objects.filter(owner=request.user)  # type: ignore[arg-type]


# Each choice set is an enum in one component only (kind and format in the request, status in
# the report), so the schema names them after it (ReportGenerateKindEnum, ReportStatusEnum)
# instead of colliding with the other "kind" and "status" enums of the API.
class ReportQueuedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="queued: poll status/ until done or failed")


class ReportSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text="risk_summary, stress or factor")
    format = serializers.CharField(read_only=True, help_text="pdf, html, csv or xlsx")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "portfolio",
            "kind",
            "format",
            "status",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, report: Report) -> str | None:
        """The download path once the report is done, else null."""
        if report.status != Report.Status.DONE:
            return None
        return reverse("report-download", kwargs={"pk": report.pk})
