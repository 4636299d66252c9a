"""Operations: staff rebuild the demo (`POST /api/v1/admin/demo/reset/`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.providers.registry import current_source
from modeling import demo
from modeling.tasks import demo_reset
from sigmasight.audit.services import audit_record
from sigmasight.outbox.services import outbox_send


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
    # A field named like Field.source: DRF's metaclass moves declared fields off the class.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="market data: synthetic, polygon or yfinance"
    )
    admin = serializers.EmailField()
    books = DemoBookSerializer(many=True)
    price_rows = serializers.IntegerField(help_text="price rows written (missing ones only)")
    missing_prices = serializers.ListField(child=serializers.CharField())
    batch = BatchRunSerializer(many=True)
    snapshots = serializers.IntegerField(help_text="historical snapshot rows written")
    seconds = serializers.DictField(child=serializers.FloatField())


class DemoQueuedSerializer(serializers.Serializer):
    job_id = serializers.CharField(help_text="the Celery task id of the reset")
    status = serializers.CharField(help_text="queued")


class DemoResetView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=None,
        responses={200: DemoResetSerializer, 202: DemoQueuedSerializer},
        tags=["operations"],
        description="Staff only: delete the demo users and everything they own, then rebuild "
        "the demo (accounts, books, missing prices, the daily batch for the last session and "
        "90 sessions of snapshots); the password is SIGMASIGHT_DEMO_PASSWORD. With the "
        "synthetic market data (nothing on the network) it runs in the request (200 with the "
        "report); with Polygon or yfinance it is queued for a worker (202), since fetching "
        "prices must never hold a web request.",
    )
    def post(self, request: Request) -> Response:
        if current_source() != "synthetic":
            job_id = outbox_send(demo_reset.signature(()))
            audit_record("demo.reset", request=request, queued=job_id)
            return Response({"job_id": job_id, "status": "queued"}, status=202)
        report = demo.demo_seed(reset=True)
        audit_record("demo.reset", request=request, as_of=report.as_of, books=len(report.books))
        return Response(DemoResetSerializer(report).data)
