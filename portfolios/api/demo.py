"""Operations: staff rebuild the demo (`POST /api/v1/admin/demo/reset/`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolios import demo
from sigmasight.audit.services import audit_record


class DemoBookSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="growth, value or balanced")
    email = serializers.EmailField()
    portfolio_id = serializers.IntegerField()
    portfolio = serializers.CharField()
    positions = serializers.IntegerField()


class BatchRunSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.CharField()
    duration_s = serializers.FloatField()


class DemoResetSerializer(serializers.Serializer):
    as_of = serializers.DateField(help_text="the demo date: the last completed NYSE session")
    source = serializers.CharField(help_text="market data: synthetic, polygon or yfinance")
    admin = serializers.EmailField()
    books = DemoBookSerializer(many=True)
    price_rows = serializers.IntegerField(help_text="price rows written (missing ones only)")
    missing_prices = serializers.ListField(child=serializers.CharField())
    batch = BatchRunSerializer(many=True)
    snapshots = serializers.IntegerField(help_text="historical snapshot rows written")
    seconds = serializers.DictField(child=serializers.FloatField())


class DemoResetView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=None, responses={200: DemoResetSerializer}, tags=["operations"],
        description="Staff only: delete the demo users and everything they own, then rebuild "
        "the demo (accounts, books, missing prices, the daily batch for the last session and "
        "90 sessions of snapshots). Synchronous; the password is SIGMASIGHT_DEMO_PASSWORD.",
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        report = demo.demo_seed(reset=True)
        audit_record("demo.reset", request=request, as_of=report.as_of, books=len(report.books))
        return Response(DemoResetSerializer(report).data)
