"""Operations (API.md): staff trigger batch runs and read job runs."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api import serializers as s
from analytics.batch import trigger_queue
from analytics.jobs import TRIGGERS
from analytics.models import BatchJob
from marketdata.calendar import session_for
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import NotFoundError


class TriggerView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=s.TriggerBody,
        responses={202: s.JobIdSerializer},
        tags=["operations"],
        parameters=[OpenApiParameter("trigger", str, OpenApiParameter.PATH, enum=list(TRIGGERS))],
    )
    def post(self, request: Request, trigger: str) -> Response:
        if trigger not in TRIGGERS:
            raise NotFoundError(f"No batch '{trigger}'; use one of {', '.join(TRIGGERS)}.")
        body = s.TriggerBody(data=request.data)
        body.is_valid(raise_exception=True)
        run_date = session_for(body.validated_data.get("date"))
        job = trigger_queue(
            trigger=trigger,
            run_date=run_date,
            portfolio_ids=body.validated_data.get("portfolios"),
            user=request.user,
        )
        audit_record(
            "batch.trigger",
            request=request,
            obj=job,
            trigger=trigger,
            run_date=run_date,
            portfolios=body.validated_data.get("portfolios"),
        )
        return Response({"job_id": job.pk}, status=status.HTTP_202_ACCEPTED)


class BatchJobViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.IsAdminUser]
    queryset = BatchJob.objects.order_by("-id")
    serializer_class = s.BatchJobSerializer
    filterset_fields = ["name", "status", "run_date"]
    ordering_fields = ["id", "run_date", "started_at"]
