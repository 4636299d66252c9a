from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from marketdata import calendar
from marketdata.calendar import last_completed_session
from marketdata.models import DailyPrice
from marketdata.services import normalize_symbols
from sigmasight.api.query import QuerySerializer
from sigmasight.exceptions import ValidationFailed

MAX_QUERY_SYMBOLS = 500
# Tickers as marketdata.symbols reads them (any case), comma-separated.
TICKER = r"\^?[A-Za-z0-9][A-Za-z0-9.\-=]{0,15}"
SYMBOLS_PATTERN = rf"^{TICKER}( *, *{TICKER})*$"


def _symbols(value: str) -> list[str]:
    raw = [s for s in (part.strip() for part in value.split(",")) if s]
    if not raw:
        raise serializers.ValidationError("Give at least one symbol, comma-separated.")
    if len(raw) > MAX_QUERY_SYMBOLS:
        raise serializers.ValidationError(f"At most {MAX_QUERY_SYMBOLS} symbols per request.")
    try:
        return normalize_symbols(raw)
    except ValidationFailed as exc:
        raise serializers.ValidationError(exc.fields["symbols"]) from exc


class SymbolsQuery(QuerySerializer):
    symbols = serializers.CharField(
        help_text="Comma-separated symbols, at most 500.",
        validators=[RegexValidator(SYMBOLS_PATTERN, "Comma-separated tickers, e.g. AAPL,MSFT.")],
    )
    as_of = serializers.DateField(required=False)

    def validate_symbols(self, value: str) -> list[str]:
        return _symbols(value)

    def validate_as_of(self, value: date) -> date:
        if not calendar.FIRST_YEAR <= value.year <= calendar.LAST_YEAR:
            raise serializers.ValidationError(
                f"as_of must be in {calendar.FIRST_YEAR}-{calendar.LAST_YEAR}."
            )
        return value


class ChainQuery(QuerySerializer):
    expiration = serializers.DateField(required=False)
    as_of = serializers.DateField(required=False)


class PriceBarSerializer(serializers.ModelSerializer):
    class Meta:
        model = DailyPrice
        fields = ["date", "open", "high", "low", "close", "volume", "source"]


class CurrentPriceSerializer(serializers.Serializer):
    price = serializers.DecimalField(max_digits=20, decimal_places=6)
    date = serializers.DateField()
    # A field named like Field.source: DRF's metaclass moves declared fields off the class.
    source = serializers.CharField()  # type: ignore[assignment]
    stale = serializers.BooleanField()


class ChainRowSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="security.symbol")
    expiration = serializers.DateField(source="security.expiration")
    strike = serializers.DecimalField(max_digits=14, decimal_places=4, source="security.strike")
    option_type = serializers.CharField(source="security.option_type")
    date = serializers.DateField()
    close = serializers.DecimalField(max_digits=20, decimal_places=6)
    implied_volatility = serializers.FloatField(allow_null=True)
    # A field named like Field.source: DRF's metaclass moves declared fields off the class.
    source = serializers.CharField()  # type: ignore[assignment]


class PriceRefreshSerializer(serializers.Serializer):
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        allow_empty=False,
        max_length=settings.SIGMASIGHT_REFRESH_MAX_SYMBOLS,
    )
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate_symbols(self, value: list[str]) -> list[str]:
        try:
            return normalize_symbols(value)
        except ValidationFailed as exc:
            raise serializers.ValidationError(exc.fields["symbols"]) from exc

    def validate(self, attrs: dict) -> dict:
        end = attrs.get("end") or last_completed_session()
        start = attrs.get("start") or end - timedelta(days=14)
        if start > end:
            raise serializers.ValidationError({"start": ["start must be on or before end."]})
        if end > date.today():
            raise serializers.ValidationError({"end": ["end cannot be in the future."]})
        if (end - start).days > 366 * 5:
            raise serializers.ValidationError({"start": ["At most five years per refresh."]})
        return {**attrs, "start": start, "end": end}


class JobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
