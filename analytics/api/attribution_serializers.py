"""The P&L attribution endpoint's query and answer (GET /risk/attribution/)."""

from __future__ import annotations

from rest_framework import serializers

from analytics.attribution import BY, DEFAULT_SESSIONS
from sigmasight.api.fields import id_field
from sigmasight.api.query import DateRangeQuery


class AttributionQuery(DateRangeQuery):
    start = serializers.DateField(
        required=False,
        help_text=f"first session (inclusive); default: {DEFAULT_SESSIONS} sessions before end "
        "(rows are kept for the snapshots' retention, about a year)",
    )
    end = serializers.DateField(
        required=False, help_text="last session (inclusive); default: the latest stored session"
    )
    portfolio = id_field(required=False, help_text="default: your first portfolio")
    by = serializers.ChoiceField(
        choices=list(BY),
        default="factor",
        help_text="how each day's P&L is split: factor (each factor, then `specific`), position "
        "(symbol; `symbol #id` when several lots share it), underlying, or greek (the options' "
        "delta, gamma, vega, theta, rho and residual; `other` is the stocks' P&L and that of "
        "options without an explain)",
    )


def _pnl(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(help_text=help_text)


class PnlAttributionDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="the NYSE session")
    basis = serializers.ChoiceField(
        choices=["stored", "pro_forma"],
        help_text="stored: the batch's, from the previous session's stored exposures and "
        "Greeks; pro_forma: the rebuilt history, today's holdings and exposures over past closes",
    )
    total_pnl = _pnl("the day's P&L in the book's currency (close-to-close, with dividends)")
    factor_pnl = _pnl("sum over factors of the previous session's dollar exposure x the move")
    specific_pnl = _pnl("total_pnl - factor_pnl")
    parts = serializers.DictField(
        child=serializers.FloatField(),
        help_text="P&L per key of `by`; the parts sum to total_pnl (`other`: what the keys "
        "leave; `specific` in the factor view)",
    )


class PnlAttributionSerializer(serializers.Serializer):
    portfolio = serializers.IntegerField(help_text="the portfolio's id")
    by = serializers.CharField(help_text="the split asked for")
    start = serializers.DateField(
        allow_null=True,
        help_text=f"first day (inclusive); default {DEFAULT_SESSIONS} sessions before end; "
        "null when nothing is stored",
    )
    end = serializers.DateField(
        allow_null=True,
        help_text="last day (inclusive); default the latest stored day; null when nothing is stored",
    )
    series = PnlAttributionDaySerializer(
        many=True, help_text="one entry per stored day, oldest first"
    )
    totals = serializers.DictField(
        child=serializers.FloatField(), help_text="each part summed over the days"
    )
    total_pnl = _pnl("the days' P&L summed")
    factor_pnl = _pnl("the days' factor P&L summed")
    specific_pnl = _pnl("the days' specific P&L summed")
