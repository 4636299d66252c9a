from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from rest_framework import serializers

from portfolios.models import Portfolio, Position, Strategy, Tag
from sigmasight.api.fields import CheckedCharField, id_field
from sigmasight.api.query import QuerySerializer
from sigmasight.validators import no_control_characters


class PortfolioSerializer(serializers.ModelSerializer):
    class Meta:
        model = Portfolio
        fields = ["id", "name", "description", "base_currency", "cash", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_name(self, value: str) -> str:
        owner = self.context["request"].user
        clash = Portfolio.objects.filter(owner=owner, name=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(f"You already have a portfolio named '{value}'.")
        return value


class TagBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name", "color"]


class PositionSerializer(serializers.ModelSerializer):
    tags = TagBriefSerializer(many=True, read_only=True)
    # Declared: a read-only model field loses allow_blank, and stocks have "" here.
    option_type = serializers.ChoiceField(
        choices=Position.OptionType.choices, allow_blank=True, read_only=True
    )
    greeks = serializers.SerializerMethodField(
        help_text="Latest stored position Greeks {as_of, delta, gamma, theta, vega, rho, "
        "dollar_delta, implied_volatility, volatility, source, style (american/european), "
        "dividend_yield, early_exercise_premium (per share)}; for stocks delta = quantity; "
        "null for an option before the Greeks job has run."
    )

    class Meta:
        model = Position
        fields = [
            "id",
            "portfolio",
            "symbol",
            "underlying_symbol",
            "position_type",
            "quantity",
            "entry_price",
            "entry_date",
            "strike",
            "expiration",
            "option_type",
            "multiplier",
            "last_price",
            "market_value",
            "exposure",
            "unrealized_pnl",
            "daily_pnl",
            "valued_as_of",
            "notes",
            "tags",
            "greeks",
        ]
        read_only_fields = fields

    def get_greeks(self, position: Position) -> dict | None:
        return self.context.get("greeks", {}).get(position.id)


class PositionCreateSerializer(serializers.Serializer):
    """Numbers and dates arrive as strings or numbers and are validated like a CSV row."""

    portfolio = serializers.PrimaryKeyRelatedField(queryset=Portfolio.objects.none())
    symbol = serializers.CharField(max_length=32)
    quantity = serializers.CharField(max_length=40)
    entry_price = serializers.CharField(max_length=40)
    entry_date = serializers.CharField(max_length=10)
    underlying = serializers.CharField(max_length=16, required=False, allow_blank=True)
    option_type = serializers.CharField(max_length=4, required=False, allow_blank=True)
    strike = serializers.CharField(max_length=40, required=False, allow_blank=True)
    expiration = serializers.CharField(max_length=10, required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    tag_ids = serializers.ListField(child=id_field(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            portfolio = cast(serializers.PrimaryKeyRelatedField, self.fields["portfolio"])
            # django-stubs types Manager as a descriptor, which mypy applies to this assignment.
            portfolio.queryset = Portfolio.objects.filter(owner=request.user)  # type: ignore[arg-type]


class PositionUpdateSerializer(serializers.Serializer):
    quantity = serializers.CharField(max_length=40, required=False)
    entry_price = serializers.CharField(max_length=40, required=False)
    entry_date = serializers.CharField(max_length=10, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)


class PositionTagsSerializer(serializers.Serializer):
    tag_ids = serializers.ListField(child=id_field(), allow_empty=True)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    mode = serializers.ChoiceField(choices=["append", "replace"], default="append")


class UploadResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    total = serializers.IntegerField()


class ExportQuery(QuerySerializer):
    format = serializers.ChoiceField(choices=["csv"], default="csv")


class TagSerializer(serializers.ModelSerializer):
    position_count = serializers.IntegerField(read_only=True)
    name = CheckedCharField(min_length=1, max_length=50, validators=[no_control_characters])

    class Meta:
        model = Tag
        fields = ["id", "name", "color", "description", "position_count"]
        read_only_fields = ["id", "position_count"]


class TotalsSerializer(serializers.Serializer):
    market_value = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    exposure = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    delta_adjusted_exposure = serializers.DecimalField(
        max_digits=24,
        decimal_places=2,
        allow_null=True,
        help_text="Sum of position dollar deltas; null while a member has no Greeks or price.",
    )
    greeks = serializers.DictField(allow_null=True)


def totals(positions: list[Position], greeks: dict[int, dict] | None = None) -> dict:
    """Sums of stored valuations and position Greeks; null where a member lacks them."""

    def total(field: str) -> Decimal | None:
        values = [getattr(p, field) for p in positions if getattr(p, field) is not None]
        return sum(values, Decimal("0")) if values else None

    rows = [(greeks or {}).get(p.id) for p in positions]
    complete = bool(rows) and all(r is not None and r.get("dollar_delta") is not None for r in rows)
    summed = (
        {
            name: sum(r[name] for r in rows if r is not None)
            for name in ("delta", "gamma", "theta", "vega", "rho", "dollar_delta")
        }
        if complete
        else None
    )
    return {
        "market_value": total("market_value"),
        "exposure": total("exposure"),
        "delta_adjusted_exposure": Decimal(f"{summed['dollar_delta']:.2f}") if summed else None,
        "greeks": summed,
    }


class StrategySerializer(serializers.ModelSerializer):
    positions = serializers.SerializerMethodField()
    totals = serializers.SerializerMethodField()

    class Meta:
        model = Strategy
        fields = ["id", "portfolio", "name", "kind", "is_detected", "positions", "totals"]

    def get_positions(self, strategy: Strategy) -> list[int]:
        return [p.id for p in strategy.positions.all()]

    def get_totals(self, strategy: Strategy) -> dict:
        return TotalsSerializer(
            totals(list(strategy.positions.all()), self.context.get("greeks"))
        ).data


class StrategyCreateSerializer(serializers.Serializer):
    portfolio = serializers.PrimaryKeyRelatedField(queryset=Portfolio.objects.none())
    name = CheckedCharField(min_length=1, max_length=120, validators=[no_control_characters])
    kind = serializers.ChoiceField(choices=[Strategy.Kind.PAIRS, Strategy.Kind.CUSTOM])
    position_ids = serializers.ListField(child=id_field(), min_length=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            portfolio = cast(serializers.PrimaryKeyRelatedField, self.fields["portfolio"])
            # django-stubs types Manager as a descriptor, which mypy applies to this assignment.
            portfolio.queryset = Portfolio.objects.filter(owner=request.user)  # type: ignore[arg-type]


class StrategyUpdateSerializer(serializers.Serializer):
    name = CheckedCharField(
        min_length=1, max_length=120, required=False, validators=[no_control_characters]
    )
    position_ids = serializers.ListField(child=id_field(), min_length=1, required=False)


class GroupQuery(QuerySerializer):
    portfolio = serializers.IntegerField(required=False)
    by = serializers.ChoiceField(choices=["type", "underlying", "tag", "strategy", "sector"])


class GroupSerializer(serializers.Serializer):
    key = serializers.CharField()
    positions = PositionSerializer(many=True)
    totals = TotalsSerializer()
