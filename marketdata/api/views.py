from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata import selectors
from marketdata.api import serializers as s
from marketdata.models import Security
from marketdata.providers.base import RATE_10Y, RATE_SHORT
from marketdata.services import current_prices
from marketdata.symbols import SymbolError, normalize_ticker
from marketdata.tasks import refresh_prices
from sigmasight.api.pagination import StandardPagination
from sigmasight.api.query import DateRangeQuery
from sigmasight.exceptions import NotFoundError
from sigmasight.outbox.services import outbox_send


class LongSeriesPagination(StandardPagination):
    """Price series and chains are read whole by charts: pages of 500 unless asked smaller."""

    page_size = 500


def _security_or_404(symbol: str) -> Security:
    try:
        symbol = normalize_ticker(symbol)
    except SymbolError as exc:
        raise NotFoundError(f"No prices for '{symbol}'.") from exc
    return get_object_or_404(Security, symbol=symbol)


class PriceHistoryView(generics.ListAPIView):
    serializer_class = s.PriceBarSerializer
    pagination_class = LongSeriesPagination
    filter_backends: list = []

    @extend_schema(parameters=[DateRangeQuery], tags=["market-data"])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = DateRangeQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        security = _security_or_404(self.kwargs["symbol"])
        return selectors.price_history(
            security, query.validated_data.get("start"), query.validated_data.get("end")
        )


CURRENT_PRICE_SCHEMA = {
    "type": "object",
    "properties": {
        "price": {"type": "string", "format": "decimal"},
        "date": {"type": "string", "format": "date"},
        "source": {"type": "string"},
        "stale": {"type": "boolean"},
    },
    "required": ["price", "date", "source", "stale"],
}
SECTOR_SCHEMA = {
    "type": "object",
    "properties": {"sector": {"type": "string"}, "industry": {"type": "string"}},
    "required": ["sector", "industry"],
}


def _by_symbol(value: dict) -> dict:
    """An object keyed by the asked symbols (not a list); a symbol not known maps to null."""
    return {"type": "object", "additionalProperties": {**value, "nullable": True}}


class CurrentPricesView(APIView):
    @extend_schema(
        parameters=[s.SymbolsQuery],
        responses={200: _by_symbol(CURRENT_PRICE_SCHEMA)},
        description="`{symbol: {price, date, source, stale}}`; symbols never cached map to null.",
        tags=["market-data"],
    )
    def get(self, request: Request) -> Response:
        query = s.SymbolsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        symbols = query.validated_data["symbols"]
        prices = current_prices(symbols, as_of=query.validated_data.get("as_of"))
        body = {
            symbol: s.CurrentPriceSerializer(prices[symbol]).data if symbol in prices else None
            for symbol in symbols
        }
        return Response(body)


class SectorsView(APIView):
    @extend_schema(
        parameters=[s.SymbolsQuery],
        responses={200: _by_symbol(SECTOR_SCHEMA)},
        description="`{symbol: {sector, industry}}`; unknown symbols map to null.",
        tags=["market-data"],
    )
    def get(self, request: Request) -> Response:
        query = s.SymbolsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        symbols = query.validated_data["symbols"]
        known = {
            symbol: {"sector": sector, "industry": industry}
            for symbol, sector, industry in Security.objects.filter(symbol__in=symbols)
            .order_by("symbol")
            .values_list("symbol", "sector", "industry")
        }
        return Response({symbol: known.get(symbol) for symbol in symbols})


class OptionChainView(generics.ListAPIView):
    serializer_class = s.ChainRowSerializer
    pagination_class = LongSeriesPagination
    filter_backends: list = []

    @extend_schema(parameters=[s.ChainQuery], tags=["market-data"])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = s.ChainQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        try:
            underlying = normalize_ticker(self.kwargs["underlying"])
        except SymbolError as exc:
            raise NotFoundError(str(exc)) from exc
        return selectors.option_chain(
            underlying, query.validated_data.get("expiration"), query.validated_data.get("as_of")
        )


class RefreshView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=s.PriceRefreshSerializer, responses={202: s.JobSerializer}, tags=["market-data"]
    )
    def post(self, request: Request) -> Response:
        body = s.PriceRefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        symbols = body.validated_data.get("symbols") or [
            *Security.objects.filter(is_active=True)
            .exclude(asset_type=Security.AssetType.OPTION)
            .order_by("symbol")
            .values_list("symbol", flat=True),
        ]
        symbols += [
            r
            for r in (RATE_10Y, RATE_SHORT)
            if r not in symbols and "symbols" not in body.validated_data
        ]
        args = (
            symbols,
            body.validated_data["start"].isoformat(),
            body.validated_data["end"].isoformat(),
        )
        # The id the task will run under, even if the broker is down now and it is sent later.
        job_id = outbox_send(refresh_prices.signature(args))
        return Response({"job_id": job_id}, status=status.HTTP_202_ACCEPTED)
