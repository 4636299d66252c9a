"""Queries and bodies of risk/liquidity/ and risk/concentration/ (analytics.liquidity)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics import liquidity
from analytics.api.serializers import DataQualitySerializer
from sigmasight.api.query import PortfolioQuery

MAX_TOP = 100


@extend_schema_field(
    {"type": "number", "format": "double", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}
)
class ParticipationField(serializers.FloatField):
    """A decimal share of the daily volume: 0 < p <= 1 (the schema states the open bound)."""

    default_error_messages = {
        "participation": "Participation is a decimal share of the daily volume, 0 < p <= 1."
    }

    def to_internal_value(self, data: Any) -> float:
        value: float = super().to_internal_value(data)
        if not 0 < value <= 1:
            self.fail("participation")
        return value


class LiquidityQuery(PortfolioQuery):
    participation = ParticipationField(
        required=False,
        help_text="share of each session's volume the book may trade, a decimal (0 < p <= 1); "
        "default: SIGMASIGHT_LIQUIDITY_PARTICIPATION (0.20)",
    )


class ConcentrationQuery(PortfolioQuery):
    top = serializers.IntegerField(
        default=10,
        min_value=1,
        max_value=MAX_TOP,
        help_text="N of `top_share`: the share of gross in the N largest names",
    )


def _money(help_text: str, **kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=24, decimal_places=2, help_text=help_text, **kwargs)


def _share(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(
        allow_null=True, help_text=f"{help_text}; a decimal (0.25 = 25%), null for no gross"
    )


# Keyed objects whose keys are numbers ("1", "5", "10"): each key a documented field.
LiquidatableSerializer: Any = type(
    "LiquidatableSerializer",
    (serializers.Serializer,),
    {
        str(h): _share(f"share of the book's gross exposure sold within {h} session{'s' * (h > 1)}")
        for h in liquidity.HORIZONS
    },
)
TopSharesSerializer: Any = type(
    "TopSharesSerializer",
    (serializers.Serializer,),
    {
        str(n): _share(f"share of the book's gross in its {n} largest names")
        for n in liquidity.TOP_NAMES
    },
)


class LiquidityPositionSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="the position's id")
    symbol = serializers.CharField(help_text="the position's ticker or OCC option symbol")
    underlying = serializers.CharField(help_text="the name whose volume it trades through")
    is_option = serializers.BooleanField(
        help_text="an option: sold through its underlying's volume at its delta"
    )
    shares = serializers.DecimalField(
        max_digits=24,
        decimal_places=4,
        allow_null=True,
        help_text="delta-equivalent shares to sell, absolute: a stock's quantity, an option's "
        "|position delta| (per-share delta x contracts x multiplier, from the stored Greeks); "
        "null for an option without stored Greeks for the session",
    )
    exposure = _money(
        "signed exposure (qty x price x multiplier); null when unvalued", allow_null=True
    )
    adv = _money(
        "average daily volume of the underlying (shares) over the last `adv_sessions` sessions, "
        "sessions without a stored volume left out; null when fewer than `min_volume_sessions`",
        allow_null=True,
    )
    volume_sessions = serializers.IntegerField(
        help_text="sessions of the window with a stored volume (what the ADV averages)"
    )
    days_to_liquidate = serializers.FloatField(
        allow_null=True,
        help_text="sessions to sell the shares: |shares| / (participation x ADV); null with a "
        "`reason` when unknown",
    )
    flagged = serializers.BooleanField(
        help_text="days_to_liquidate above `flag_days` (true for `beyond_range`, false when the "
        "days are unknown)"
    )
    reason = serializers.ChoiceField(
        choices=list(liquidity.REASONS),
        allow_null=True,
        help_text="why days_to_liquidate is null: "
        + "; ".join(f"`{code}`: {why}" for code, why in liquidity.REASONS.items()),
    )


class LiquiditySerializer(serializers.Serializer):
    portfolio = serializers.IntegerField(help_text="the portfolio's id")
    as_of = serializers.DateField(help_text="the session: closes, volumes and Greeks of that day")
    participation = serializers.FloatField(
        help_text="share of each session's volume traded, decimal (the query's or the default)"
    )
    flag_days = serializers.FloatField(help_text="positions above this many days are flagged")
    adv_sessions = serializers.IntegerField(help_text="NYSE sessions the ADV window spans")
    min_volume_sessions = serializers.IntegerField(
        help_text="stored volumes an ADV needs within the window"
    )
    gross = _money("the book's gross exposure, sum |exposure| of the valued positions")
    liquidatable = LiquidatableSerializer(
        help_text="by horizon in sessions: sum |exposure| x min(1, horizon / days) over gross; "
        "a position of unknown days counts as not sold"
    )
    unknown_share = _share("share of the book's gross whose days to liquidate are unknown")
    flagged = serializers.IntegerField(help_text="positions flagged")
    positions = LiquidityPositionSerializer(many=True, help_text="ordered by position id")
    data_quality = DataQualitySerializer()


class NameShareSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="the underlying symbol")
    gross = _money("sum |exposure| of the name's positions (options at their premium)")
    share = _share("the name's gross over the book's")


class GroupExposureSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="the stored classification, or Unclassified")
    gross = _money("sum |exposure|")
    net = _money("sum of signed exposures")
    long = _money("sum of positive exposures")
    short = _money("sum of negative exposures (negative)")
    share = _share("the group's gross over the book's")


class ConcentrationSerializer(serializers.Serializer):
    portfolio = serializers.IntegerField(help_text="the portfolio's id")
    as_of = serializers.DateField(help_text="the session whose closes value the book")
    gross = _money("the book's gross exposure, sum |exposure| of the valued positions")
    top = serializers.IntegerField(help_text="the N of top_share (the query's `top`)")
    top_share = _share("share of the book's gross in its `top` largest names")
    top_shares = TopSharesSerializer(help_text="the same for the 5 and 10 largest names")
    herfindahl = serializers.FloatField(
        allow_null=True,
        help_text="sum of the names' squared gross weights: 1 for one name, 1/n for n equal "
        "names; null for no gross",
    )
    effective_names = serializers.FloatField(
        allow_null=True, help_text="1 / herfindahl: the number of equal names as concentrated"
    )
    names = NameShareSerializer(many=True, help_text="every name, largest gross first")
    sectors = GroupExposureSerializer(
        many=True, help_text="by the underlying's stored sector, largest gross first"
    )
    industries = GroupExposureSerializer(
        many=True, help_text="by the underlying's stored industry, largest gross first"
    )
    unvalued = serializers.IntegerField(help_text="positions without a price on as_of (in no sum)")
    data_quality = DataQualitySerializer()
