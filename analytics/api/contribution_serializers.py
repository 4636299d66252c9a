"""The query and the body of GET /risk/contributions/ (analytics.contributions)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics import contributions
from sigmasight.api.query import PortfolioQuery

GROUPS = {
    "position": "each position (key: its symbol, `symbol #id` when several lots share it)",
    "underlying": "the positions' underlying symbol (a stock and its options together)",
    "tag": "each tag; a position in several tags counts in each (the groups may then add up "
    f"to more than the total), one without a tag in `{contributions.UNTAGGED}`",
    "strategy": "each strategy; a position in several counts in each, one in none in "
    f"`{contributions.NO_STRATEGY}`",
    "sector": "the underlying's stored sector (`Unclassified` when none)",
    "industry": "the underlying's stored industry (`Unclassified` when none)",
    "factor": "each factor of the model plus `specific` (method=parametric only)",
}


class ContributionsQuery(PortfolioQuery):
    measure = serializers.ChoiceField(
        choices=list(contributions.MEASURES),
        default="var",
        help_text="volatility (one-day standard deviation of the book's P&L), var or es "
        "(expected shortfall), at the stored horizon",
    )
    method = serializers.ChoiceField(
        choices=list(contributions.METHODS),
        default="historical",
        help_text="parametric (delta-normal factor model: options by their delta), historical "
        "(the positions' own closes over the factor window) or monte_carlo (the stored VaR's "
        "seeded draws, options fully revalued)",
    )
    by = serializers.ChoiceField(
        choices=list(contributions.BY),
        default="position",
        help_text="how the components are grouped: "
        + "; ".join(f"`{key}`: {what}" for key, what in GROUPS.items()),
    )
    confidence = serializers.FloatField(
        default=0.95,
        min_value=0.5,
        max_value=0.999,
        help_text="one of the stored confidences (the batch stores 0.95 and 0.99)",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("by") == "factor" and attrs.get("method") != "parametric":
            raise serializers.ValidationError(
                {"by": ["by=factor needs method=parametric: only the factor model has factors."]}
            )
        return attrs


def _money(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class ContributionSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="the position's label or the group's name (see `by`)")
    position = serializers.IntegerField(
        allow_null=True, help_text="the position's id (by=position), else null"
    )
    positions = serializers.IntegerField(
        help_text="positions in the group (0 for a factor or `specific`)"
    )
    exposure = _money(
        "signed exposure the marginal is per, currency: the members' exposures summed (an option "
        "at its premium); by=factor the book's dollar exposure to the factor (null: specific)"
    )
    component = _money(
        "Euler component c = e x d(total)/de, currency: positive adds to the loss, a hedge is "
        "negative; null when the method is unavailable for the book"
    )
    marginal = serializers.FloatField(
        allow_null=True,
        help_text="component / exposure: the change of the total per unit of exposure added "
        "(scaling the members); null where the exposure is 0 or unknown",
    )
    percent = serializers.FloatField(
        allow_null=True,
        help_text="component / total as a decimal fraction (0.25 = 25%); null when the total is "
        "0 or unavailable",
    )


class ContributionsSerializer(serializers.Serializer):
    portfolio = serializers.IntegerField(help_text="the portfolio's id")
    as_of = serializers.DateField(
        help_text="the session the contributions are for: the latest stored on or before the "
        "asked one"
    )
    measure = serializers.CharField(help_text="the measure allocated (the query's)")
    method = serializers.CharField(help_text="the method (the query's)")
    by = serializers.CharField(help_text="the grouping (the query's)")
    confidence = serializers.FloatField(help_text="the confidence level, a decimal")
    horizon_days = serializers.IntegerField(
        help_text="VaR and ES horizon in sessions (historical: one day x its square root)"
    )
    total = _money(
        "the book's measure, currency, a loss positive; the VaRs and the historical ES are the "
        "stored risk metrics' own; null when the method is unavailable (see `unavailable`)"
    )
    systematic = _money(
        "parametric: the factors' part of the total (scaled to the measure), null otherwise"
    )
    specific = _money(
        "parametric: the specific (idiosyncratic) part, total - systematic; null otherwise"
    )
    observations = serializers.IntegerField(
        allow_null=True,
        help_text="scenarios the method used: historical sessions or Monte Carlo draws (null: "
        "parametric, or unavailable)",
    )
    unavailable = serializers.CharField(
        allow_null=True, help_text="why the method could not measure the book; null when it could"
    )
    contributions = ContributionSerializer(
        many=True,
        help_text="largest component first (then by key); except for tag and strategy groups the "
        "components sum to `total`",
    )
