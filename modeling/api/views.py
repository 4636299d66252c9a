"""What-if sessions and trade export (API.md "What-if modeling, export, reports")."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from modeling import selectors, services
from modeling.api import serializers as s
from modeling.filters import ExportHistoryFilter, SessionFilter
from modeling.models import ExportHistory, ModelingSession
from sigmasight.api.users import request_user
from sigmasight.audit.services import audit_record

FILE_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="The exported file.")
# A CSV blotter is text/csv, FIX messages application/octet-stream (CONTENT_TYPES).
FILE_RESPONSES = {
    (200, "text/csv"): FILE_RESPONSE,
    (200, "application/octet-stream"): FILE_RESPONSE,
}
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "fix": "application/octet-stream"}


@extend_schema(tags=["modeling"])
class SessionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = ModelingSession.objects.none()  # for the schema; get_queryset scopes to the user
    serializer_class = s.SessionSerializer
    ordering_fields = ["id", "name", "created_at", "updated_at"]
    search_fields = ["name"]
    filterset_class = SessionFilter

    def get_queryset(self):
        if self.action == "list":
            return selectors.session_list_of(request_user(self.request))
        return selectors.session_detail_of(request_user(self.request))

    def get_serializer_class(self):
        return s.SessionListSerializer if self.action == "list" else s.SessionSerializer

    def _detail(self, session: ModelingSession, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=session.pk)
        return Response(s.SessionSerializer(fresh).data, status=code)

    @extend_schema(request=s.SessionCreateSerializer, responses={201: s.SessionSerializer})
    def create(self, request: Request) -> Response:
        body = s.SessionCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        session = services.session_create(owner=request.user, **body.validated_data)
        return self._detail(session, status.HTTP_201_CREATED)

    @extend_schema(request=s.SessionUpdateSerializer, responses={200: s.SessionSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        body = s.SessionUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "name" in body.validated_data:  # a PATCH changes what it names, nothing else
            session.name = body.validated_data["name"]
            session.save(update_fields=["name", "updated_at"])
        return self._detail(session)

    @extend_schema(
        request=s.TradeCreateSerializer,
        responses={201: s.TradeSerializer},
        description="Add a pro-forma trade. Bad symbols, quantities or option fields: 400, "
        "nothing changed. The session's last impacts are cleared.",
    )
    @action(detail=True, methods=["post"])
    def trades(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        body = s.TradeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        trade = services.trade_add(session=session, data=body.validated_data)
        sides = services.trade_sides(session, list(session.trades.order_by("id")))
        return Response(
            s.TradeSerializer(trade, context={"sides": sides}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=[OpenApiParameter("trade_id", int, OpenApiParameter.PATH)],
        request=None,
        responses={204: None},
    )
    @action(detail=True, methods=["delete"], url_path=r"trades/(?P<trade_id>[0-9]+)")
    def remove_trade(self, request: Request, pk: str | None = None, trade_id: str = "") -> Response:
        session = self.get_object()
        trade = get_object_or_404(session.trades.all(), pk=int(trade_id))
        services.trade_remove(trade=trade)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: s.ImpactsSerializer})
    @action(detail=True, methods=["post"])
    def calculate(self, request: Request, pk: str | None = None) -> Response:
        return Response(services.session_calculate(session=self.get_object()))

    @extend_schema(
        responses={200: s.ImpactsSerializer},
        description="The last impacts; calculated now if the trades changed since.",
    )
    @action(detail=True, methods=["get"])
    def impacts(self, request: Request, pk: str | None = None) -> Response:
        return Response(services.session_impacts(session=self.get_object()))

    @extend_schema(parameters=[s.SuggestionQuery], responses={200: s.SuggestionSerializer})
    @action(detail=True, methods=["get"])
    def suggestions(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        query = s.SuggestionQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(services.session_suggest(session=session, **query.validated_data))

    @extend_schema(request=None, responses={201: s.SnapshotSerializer})
    @action(detail=True, methods=["post"])
    def save(self, request: Request, pk: str | None = None) -> Response:
        snapshot = services.session_save(session=self.get_object())
        return Response(s.SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.SnapshotSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        rows = selectors.snapshots_of(request_user(request), session)
        return Response(s.SnapshotSerializer(rows, many=True).data)


def _file_response(export: ExportHistory) -> HttpResponse:
    with export.file.open("rb") as handle:
        content = handle.read()
    response = HttpResponse(content, content_type=CONTENT_TYPES[export.format])
    assert export.file.name is not None  # an export is created with its file
    name = export.file.name.rsplit("/", 1)[-1]
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Export-Id"] = str(export.pk)
    return response


class TradeExportView(APIView):
    @extend_schema(
        request=s.ExportRequestSerializer,
        responses=FILE_RESPONSES,
        tags=["export"],
        description="The session's trades as a CSV blotter or FIX 4.4 NewOrderSingle messages "
        "(SOH-delimited, one per line); recorded in the export history (X-Export-Id).",
    )
    def post(self, request: Request) -> HttpResponse:
        body = s.ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = get_object_or_404(
            selectors.sessions_of(request_user(request)), pk=body.validated_data["session"]
        )
        export = services.trades_export(
            user=request.user, session=session, format=body.validated_data["format"]
        )
        response = _file_response(export)
        audit_record(
            "export.create",
            request=request,
            obj=export,
            portfolio_id=session.portfolio_id,
            session=session.pk,
            format=export.format,
            trades=export.trade_count,
        )
        return response


@extend_schema(tags=["export"])
class ExportHistoryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = ExportHistory.objects.none()
    serializer_class = s.ExportHistorySerializer
    ordering_fields = ["id", "created_at"]
    filterset_class = ExportHistoryFilter

    def get_queryset(self):
        return selectors.exports_of(request_user(self.request))

    @extend_schema(responses=FILE_RESPONSES)
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        export = self.get_object()
        response = _file_response(export)
        audit_record("export.download", request=request, obj=export, format=export.format)
        return response
