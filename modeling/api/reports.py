"""Reports (API.md "What-if modeling, export, reports"): queue, poll, download."""

from __future__ import annotations

import posixpath

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from modeling.api import serializers as s
from modeling.models import Report
from modeling.reports.renderers import CONTENT_TYPES
from modeling.reports.services import report_queue
from sigmasight.api.fields import id_field
from sigmasight.api.query import QuerySerializer
from sigmasight.api.users import request_user
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import NotFoundError


def _own(request: Request, pk: int) -> Report:
    """The user's report; another user's is a 404 like a missing one."""
    return get_object_or_404(Report.objects.filter(owner=request_user(request)), pk=pk)


class ReportGenerateView(APIView):
    @extend_schema(
        request=s.ReportGenerateSerializer,
        responses={202: s.ReportQueuedSerializer},
        tags=["reports"],
        description="Queue a report of one of your portfolios; poll `status/`, then fetch "
        "`download/`. Built from the latest session with stored results.",
    )
    def post(self, request: Request) -> Response:
        body = s.ReportGenerateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        report = report_queue(
            owner=request.user,
            portfolio=body.validated_data["portfolio"],
            kind=body.validated_data["kind"],
            fmt=body.validated_data["format"],
        )
        return Response(
            {"id": report.pk, "status": report.status},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": reverse("report-status", kwargs={"pk": report.pk})},
        )


class ReportListQuery(QuerySerializer):
    portfolio = id_field(required=False, help_text="only this portfolio's reports")


@extend_schema(parameters=[ReportListQuery], tags=["reports"])
class ReportListView(generics.ListAPIView):
    """Your reports, newest first (paginated); `?portfolio=` keeps one portfolio's."""

    serializer_class = s.ReportSerializer
    queryset = Report.objects.none()  # the schema's model; get_queryset scopes to the user

    def get_queryset(self):
        query = ReportListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        reports = Report.objects.filter(owner=request_user(self.request)).order_by("-id")
        if "portfolio" in query.validated_data:
            reports = reports.filter(portfolio_id=query.validated_data["portfolio"])
        return reports

    def filter_queryset(self, queryset):
        return queryset  # the query serializer above is the whole filter


class ReportStatusView(APIView):
    @extend_schema(responses={200: s.ReportSerializer}, tags=["reports"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ReportSerializer(_own(request, pk)).data)


class ReportDownloadView(APIView):
    @extend_schema(
        responses={
            (200, content_type.split(";")[0]): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, in the report's format."
            )
            for content_type in CONTENT_TYPES.values()
        },
        tags=["reports"],
        description="The report's file, once it is done; 404 before (and when it failed).",
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        report = _own(request, pk)
        if report.status == Report.Status.FAILED:
            raise NotFoundError(f"The report failed: {report.error}", code="report_failed")
        if report.status != Report.Status.DONE or not report.file:
            raise NotFoundError(
                f"The report is not ready yet (it is {report.status}).", code="report_not_ready"
            )
        try:
            handle = report.file.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError("The report's file is no longer stored.") from exc
        audit_record("report.download", request=request, obj=report, format=report.format)
        assert report.file.name is not None  # opened above
        return FileResponse(
            handle,
            as_attachment=True,
            filename=posixpath.basename(report.file.name),
            content_type=CONTENT_TYPES[report.format],
        )
