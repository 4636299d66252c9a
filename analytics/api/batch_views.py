"""Operations (API.md): staff trigger batch runs and read job runs."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.batch import TRIGGERS, trigger_queue
from analytics.models import BatchJob
from analytics.services import session_for
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import NotFoundError


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
        fields = ["id", "name", "run_date", "status", "started_at", "finished_at", "duration_s",
                  "counts", "error", "failed_portfolios", "warnings", "triggered_by", "owner",
                  "heartbeat_at"]  # fmt: skip


class TriggerView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=TriggerBody,
        responses={202: JobIdSerializer},
        tags=["operations"],
        parameters=[OpenApiParameter("trigger", str, OpenApiParameter.PATH, enum=list(TRIGGERS))],
    )
    def post(self, request: Request, trigger: str) -> Response:
        if trigger not in TRIGGERS:
            raise NotFoundError(f"No batch '{trigger}'; use one of {', '.join(TRIGGERS)}.")
        body = TriggerBody(data=request.data)
        body.is_valid(raise_exception=True)
        run_date = session_for(body.validated_data.get("date"))
        job = trigger_queue(
            trigger=trigger,
            run_date=run_date,
            portfolio_ids=body.validated_data.get("portfolios"),
            user=request.user,
        )
        audit_record(
            "batch.trigger", request=request, obj=job, trigger=trigger, run_date=run_date,
            portfolios=body.validated_data.get("portfolios"),
        )  # fmt: skip
        return Response({"job_id": job.pk}, status=status.HTTP_202_ACCEPTED)


class BatchJobViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.IsAdminUser]
    queryset = BatchJob.objects.order_by("-id")
    serializer_class = BatchJobSerializer
    filterset_fields = ["name", "status", "run_date"]
    ordering_fields = ["id", "run_date", "started_at"]
