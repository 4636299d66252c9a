from __future__ import annotations

from datetime import date

from django.conf import settings
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from analytics.models import BatchJob, FactorDefinition
from sigmasight.api.fields import id_field
from sigmasight.api.query import AsOfQuery, PortfolioQuery


class ScenarioQuery(PortfolioQuery):
    moves = serializers.CharField(required=False, help_text="comma-separated decimal moves")


class MetricsQuery(PortfolioQuery):
    confidence = serializers.FloatField(default=0.95, min_value=0.5, max_value=0.999)
    horizon_days = serializers.IntegerField(default=1, min_value=1, max_value=60)


class ExposureQuery(PortfolioQuery):
    level = serializers.ChoiceField(choices=["portfolio", "position"], default="portfolio")


class AccuracyQuery(PortfolioQuery):
    days_back = serializers.IntegerField(default=90, min_value=10, max_value=500)


class CorrelationQuery(AsOfQuery):
    lookback = serializers.IntegerField(default=252, min_value=20, max_value=1000)


class ScenarioCalculateBody(serializers.Serializer):
    portfolio = id_field()
    as_of = serializers.DateField(required=False)


class GreeksSerializer(serializers.Serializer):
    delta = serializers.FloatField()
    gamma = serializers.FloatField()
    theta = serializers.FloatField()
    vega = serializers.FloatField()
    rho = serializers.FloatField()
    dollar_delta = serializers.FloatField()


class ExposuresSerializer(serializers.Serializer):
    gross = serializers.DecimalField(max_digits=24, decimal_places=2)
    net = serializers.DecimalField(max_digits=24, decimal_places=2)
    long = serializers.DecimalField(max_digits=24, decimal_places=2)
    short = serializers.DecimalField(max_digits=24, decimal_places=2)
    long_count = serializers.IntegerField()
    short_count = serializers.IntegerField()
    options = serializers.DecimalField(max_digits=24, decimal_places=2)
    stock = serializers.DecimalField(max_digits=24, decimal_places=2)
    notional = serializers.DecimalField(max_digits=24, decimal_places=2)
    unvalued = serializers.IntegerField(help_text="positions without a price on as_of")


class DataSourcesSerializer(serializers.Serializer):
    book = serializers.ListField(
        child=serializers.CharField(), help_text="sources of the book's prices"
    )
    factors = serializers.ListField(
        child=serializers.CharField(), help_text="sources of the factor proxies"
    )
    rates = serializers.ListField(
        child=serializers.CharField(), help_text="sources of the rate series"
    )


class DataQualitySerializer(serializers.Serializer):
    # A field named like Field.source: DRF's metaclass moves declared fields off the class.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="the one source the result rests on (synthetic, csv, polygon, yfinance; real "
        "ones joined with +), or mixed when real prices meet synthetic series"
    )
    mixed = serializers.BooleanField(help_text="real book prices meet synthetic series")
    sources = DataSourcesSerializer()
    stale = serializers.BooleanField()
    fallbacks = serializers.IntegerField(help_text="options priced with default or mock volatility")
    missing_greeks = serializers.IntegerField(help_text="options with no Greeks stored for as_of")


class SummarySerializer(serializers.Serializer):
    portfolio = serializers.IntegerField()
    as_of = serializers.DateField()
    equity = serializers.DecimalField(max_digits=24, decimal_places=2)
    market_value = serializers.DecimalField(max_digits=24, decimal_places=2)
    cash = serializers.DecimalField(max_digits=24, decimal_places=2)
    exposures = ExposuresSerializer()
    greeks = GreeksSerializer()
    delta_adjusted_exposure = serializers.DecimalField(max_digits=24, decimal_places=2)
    daily_pnl = serializers.DecimalField(max_digits=24, decimal_places=2)
    unrealized_pnl = serializers.DecimalField(max_digits=24, decimal_places=2)
    normalized_by = serializers.ChoiceField(choices=["equity", "gross"])
    factor_betas = serializers.DictField(child=serializers.FloatField())
    data_quality = DataQualitySerializer()


class PositionGreeksRowSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    symbol = serializers.CharField()
    delta = serializers.FloatField()
    gamma = serializers.FloatField()
    theta = serializers.FloatField()
    vega = serializers.FloatField()
    rho = serializers.FloatField()
    dollar_delta = serializers.FloatField(allow_null=True)
    implied_volatility = serializers.FloatField(allow_null=True)
    volatility = serializers.FloatField(allow_null=True)
    # A field named like Field.source: DRF's metaclass moves declared fields off the class.
    source = serializers.CharField()  # type: ignore[assignment]
    # Named like Field.style (the browsable API's): the same metaclass rule as `source`.
    style = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["american", "european"],
        allow_null=True,
        help_text="the contract's exercise style (null for stocks)",
    )
    dividend_yield = serializers.FloatField(
        allow_null=True, help_text="the underlying's continuous yield the Greeks used, decimal"
    )
    early_exercise_premium = serializers.FloatField(
        allow_null=True,
        help_text="American minus European value per share (0 for European contracts)",
    )
    early_exercise_value = serializers.FloatField(
        allow_null=True,
        help_text="the position's early exercise premium in currency (per share x units)",
    )


class RiskGreeksSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    portfolio = GreeksSerializer()
    positions = PositionGreeksRowSerializer(many=True)


class OptionInputSerializer(serializers.Serializer):
    option_type = serializers.ChoiceField(choices=["C", "P", "call", "put", "c", "p"])
    underlying_price = serializers.FloatField()
    strike = serializers.FloatField()
    expiration = serializers.DateField(required=False)
    days_to_expiry = serializers.IntegerField(required=False, min_value=0, max_value=36500)
    volatility = serializers.FloatField(required=False, help_text="decimal, 0.25 = 25%")
    option_price = serializers.FloatField(
        required=False, help_text="solve the implied volatility from it"
    )
    rate = serializers.FloatField(
        required=False, help_text="decimal; default: the cached 13-week T-bill yield"
    )
    dividend_yield = serializers.FloatField(
        required=False, default=0.0, help_text="continuous annual yield, decimal; default 0"
    )
    # The API's name for it; DRF's metaclass takes declared fields off the class, so it does not
    # shadow Field.style at run time (the stubs see the class attribute).
    style = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["american", "european"],
        required=False,
        help_text="exercise style; default: the contract's (`underlying_symbol`: European for "
        "cash-settled index options, else American), else european",
    )
    underlying_symbol = serializers.CharField(
        required=False, max_length=32, help_text="the underlying: decides the default style"
    )
    quantity = serializers.FloatField(
        required=False, help_text="contracts: Greeks x quantity x 100"
    )

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, list[str]] = {}
        for name in ("underlying_price", "strike"):
            if not attrs[name] > 0:
                errors[name] = ["Must be positive."]
        if ("expiration" in attrs) == ("days_to_expiry" in attrs):
            errors["expiration"] = ["Give exactly one of expiration and days_to_expiry."]
        elif "expiration" in attrs and attrs["expiration"] < date.today():
            errors["expiration"] = ["The expiration is in the past."]
        if ("volatility" in attrs) == ("option_price" in attrs):
            errors["volatility"] = ["Give exactly one of volatility and option_price."]
        elif "volatility" in attrs and not 0 <= attrs["volatility"] <= 10:
            errors["volatility"] = ["Volatility is a decimal between 0 and 10 (0.25 = 25%)."]
        elif "option_price" in attrs and not attrs["option_price"] > 0:
            errors["option_price"] = ["Must be positive."]
        if "rate" in attrs and not -0.1 <= attrs["rate"] <= 1:
            errors["rate"] = ["The rate is a decimal (0.045 = 4.5%)."]
        if not 0 <= attrs.get("dividend_yield", 0.0) <= 1:
            errors["dividend_yield"] = ["The dividend yield is a decimal between 0 and 1."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class CalculateSerializer(serializers.Serializer):
    # many=True hands max_length to the ListSerializer; the stubs type the child's arguments.
    options = OptionInputSerializer(  # type: ignore[call-arg]
        many=True, allow_empty=False, max_length=settings.SIGMASIGHT_MAX_GREEKS_REQUEST
    )


class CalculatedSerializer(serializers.Serializer):
    price = serializers.FloatField()
    delta = serializers.FloatField()
    gamma = serializers.FloatField()
    theta = serializers.FloatField()
    vega = serializers.FloatField()
    rho = serializers.FloatField()
    implied_volatility = serializers.FloatField(allow_null=True)
    style = serializers.ChoiceField(choices=["american", "european"])  # type: ignore[assignment]
    early_exercise_premium = serializers.FloatField(
        help_text="American minus European price per share (0 for a European option)"
    )


class CalculatedListSerializer(serializers.Serializer):
    results = CalculatedSerializer(many=True)


class FactorDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = FactorDefinition
        fields = [
            "id",
            "name",
            "etf_proxy",
            "factor_type",
            "display_order",
            "is_active",
            "description",
        ]


FACTOR_ROW = inline_serializer(
    "PortfolioFactorRow",
    {
        "factor": serializers.CharField(),
        "etf_proxy": serializers.CharField(),
        "beta": serializers.FloatField(),
        "dollar_exposure": serializers.FloatField(),
        "r_squared": serializers.FloatField(allow_null=True),
        "observations": serializers.IntegerField(),
        "capped": serializers.IntegerField(
            help_text="positions whose beta to this factor was capped"
        ),
    },
)

RISK_FACTORS = inline_serializer(
    "RiskFactors",
    {
        "as_of": serializers.DateField(),
        "portfolio": serializers.IntegerField(),
        "normalized_by": serializers.CharField(),
        "factors": FACTOR_ROW.__class__(many=True),
    },
)

SCENARIO_ROWS = inline_serializer(
    "RiskScenarioRow",
    {
        "scenario": serializers.CharField(),
        "move": serializers.FloatField(),
        "predicted_pnl": serializers.FloatField(),
        "delta_only_pnl": serializers.FloatField(allow_null=True),
        "predicted_return": serializers.FloatField(),
    },
    many=True,
)


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=2)


def _statistic(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class SnapshotExposureSerializer(serializers.Serializer):
    date = serializers.DateField()
    gross = _money()
    net = _money()
    long = _money()
    short = _money()
    delta_adjusted = _money()


class PerformancePointSerializer(serializers.Serializer):
    date = serializers.DateField()
    equity = _money()
    daily_pnl = _money()
    daily_return = serializers.FloatField(help_text="decimal")
    cumulative_return = serializers.FloatField(help_text="compounded since the first point")


class PerformanceSerializer(serializers.Serializer):
    series = PerformancePointSerializer(many=True)
    total_return = _statistic("compounded over the series, decimal")
    annualized_return = _statistic("geometric, 252 sessions a year")
    volatility = _statistic("annualized stdev of daily returns")
    sharpe = _statistic("annualized, over the cached short rate")
    sortino = _statistic("annualized, over the cached short rate")
    max_drawdown = _statistic("negative decimal")


class TriggerBody(serializers.Serializer):
    date = serializers.DateField(required=False, help_text="default: the last NYSE session")
    portfolios = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, allow_empty=False
    )


class JobIdSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()


class BatchJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = BatchJob
        fields = [
            "id",
            "name",
            "run_date",
            "status",
            "started_at",
            "finished_at",
            "duration_s",
            "counts",
            "error",
            "failed_portfolios",
            "warnings",
            "triggered_by",
            "owner",
            "heartbeat_at",
        ]
