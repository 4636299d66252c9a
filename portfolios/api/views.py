from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from marketdata.models import Security
from portfolios import position_csv, selectors, services
from portfolios.api import serializers as s
from portfolios.filters import PositionFilter, StrategyFilter
from portfolios.models import Portfolio, Position, Strategy, Tag
from sigmasight.api.caching import book_changed, cached_response, query_params
from sigmasight.api.fields import MAX_ID
from sigmasight.api.uploads import limit_uploads
from sigmasight.api.users import request_user
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import ValidationFailed


class PortfolioViewSet(viewsets.ModelViewSet):
    queryset = Portfolio.objects.none()  # for the schema; get_queryset scopes to the user
    serializer_class = s.PortfolioSerializer
    http_method_names = ["get", "post", "patch", "delete"]
    ordering_fields = ["id", "name", "created_at"]
    search_fields = ["name", "description"]
    filterset_fields = ["base_currency"]

    def get_queryset(self):
        return selectors.portfolios_of(request_user(self.request))

    def perform_create(self, serializer: BaseSerializer[Portfolio]) -> None:
        with transaction.atomic():
            serializer.save(owner=self.request.user)
            audit_record("portfolio.create", request=self.request, obj=serializer.instance)

    def perform_update(self, serializer: BaseSerializer[Portfolio]) -> None:
        assert serializer.instance is not None  # an update has its object
        with transaction.atomic():
            before = {k: getattr(serializer.instance, k) for k in serializer.validated_data}
            super().perform_update(serializer)
            audit_record(
                "portfolio.update",
                request=self.request,
                obj=serializer.instance,
                fields=sorted(serializer.validated_data),
                changes={k: [before[k], getattr(serializer.instance, k)] for k in sorted(before)},
            )
        book_changed([serializer.instance.pk])  # the summary shows its cash

    def perform_destroy(self, instance: Portfolio) -> None:
        pk = instance.pk
        with transaction.atomic():
            audit_record(
                "portfolio.delete",
                request=self.request,
                obj=instance,
                positions_deleted=instance.positions.count(),
            )
            super().perform_destroy(instance)
        book_changed([pk])

    @extend_schema(
        request={"multipart/form-data": s.UploadSerializer},
        responses={200: s.UploadResultSerializer},
        description="Import a position CSV. On any bad row: 400 with fields.rows "
        "[{row, column, message}] and nothing written; over 10,000 rows or 5 MB: 413.",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def upload(self, request: Request, pk: str | None = None) -> Response:
        portfolio = self.get_object()
        # Refused while it is read past the limit (never spooled whole, then read whole).
        limit_uploads(request._request, settings.SIGMASIGHT_UPLOAD_MAX_BYTES)
        body = s.UploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        raw = upload.read(upload.size + 1) if upload.size else b""
        result = services.positions_import_csv(
            portfolio=portfolio, raw=raw, mode=body.validated_data["mode"]
        )
        audit_record(
            "positions.upload",
            request=request,
            obj=portfolio,
            file=upload.name,
            mode=body.validated_data["mode"],
            created=result.created,
            updated=result.updated,
            total=result.total,
        )
        return Response(s.UploadResultSerializer(result).data)

    @extend_schema(
        parameters=[s.ExportQuery],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The position CSV.")
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str | None = None) -> HttpResponse:
        portfolio = self.get_object()
        s.ExportQuery(data=request.query_params).is_valid(raise_exception=True)
        out = io.StringIO()
        position_csv.write(services.positions_for_export(portfolio), out)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="portfolio-{portfolio.pk}-positions.csv"'
        )
        return response


class PositionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Position.objects.none()
    serializer_class = s.PositionSerializer
    filterset_class = PositionFilter
    ordering_fields = [
        "id",
        "symbol",
        "quantity",
        "entry_date",
        "expiration",
        "market_value",
        "exposure",
        "unrealized_pnl",
        "daily_pnl",
    ]
    search_fields = ["symbol", "underlying_symbol", "notes"]

    def get_queryset(self):
        return selectors.positions_of(request_user(self.request))

    def _serialize(self, positions: list[Position], *, many: bool = True) -> object:
        # Greeks come from the analytics app through a settings hook: portfolios sits below
        # analytics and never imports it.
        greeks = import_string(settings.SIGMASIGHT_POSITION_GREEKS_PROVIDER)(positions)
        data = s.PositionSerializer(positions, many=True, context={"greeks": greeks}).data
        return data if many else data[0]

    def _cached_portfolio(self) -> int | None:
        """The portfolio a read is filtered to, when it is one of the user's: such reads are
        cached (checked on every request: another user's id is computed, an empty list)."""
        values = self.request.query_params.getlist("portfolio")
        if settings.SIGMASIGHT_API_CACHE_TTL_S <= 0 or len(values) != 1:
            return None
        value = values[0]
        if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID):
            return None
        owned = Portfolio.objects.filter(owner=request_user(self.request), pk=int(value)).exists()
        return int(value) if owned else None

    def _cached(self, view: str, compute: Callable[[], Response]) -> Response:
        portfolio_id = self._cached_portfolio()
        if portfolio_id is None:
            return compute()
        return cached_response(view, portfolio_id, query_params(self.request), compute)

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        def compute() -> Response:
            page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
            assert page is not None  # the API always paginates (DEFAULT_PAGINATION_CLASS)
            return self.get_paginated_response(self._serialize(list(page)))

        return self._cached("positions", compute)

    def retrieve(self, request: Request, *args: object, **kwargs: object) -> Response:
        return Response(self._serialize([self.get_object()], many=False))

    @extend_schema(request=s.PositionCreateSerializer, responses={201: s.PositionSerializer})
    def create(self, request: Request) -> Response:
        body = s.PositionCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        portfolio, tag_ids = data.pop("portfolio"), data.pop("tag_ids", None)
        position = services.position_create(portfolio=portfolio, data=data, tag_ids=tag_ids)
        audit_record("position.create", request=request, obj=position)
        return Response(
            s.PositionSerializer(self.get_queryset().get(pk=position.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=s.PositionUpdateSerializer, responses={200: s.PositionSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        position = self.get_object()
        body = s.PositionUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        unknown = set(request.data) - set(body.fields)
        data = {**body.validated_data, **{k: request.data[k] for k in unknown}}
        services.position_update(position=position, data=data)
        audit_record("position.update", request=request, obj=position, fields=sorted(data))
        return Response(self._serialize([self.get_queryset().get(pk=position.pk)], many=False))

    def perform_destroy(self, instance: Position) -> None:
        with transaction.atomic():  # recorded before the delete, undone with it if it fails
            audit_record("position.delete", request=self.request, obj=instance)
            services.position_delete(position=instance)

    @extend_schema(request=s.PositionTagsSerializer, responses={200: s.PositionSerializer})
    @action(detail=True, methods=["put"], url_path="tags")
    def set_tags(self, request: Request, pk: str | None = None) -> Response:
        position = self.get_object()
        body = s.PositionTagsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.position_set_tags(position=position, tag_ids=body.validated_data["tag_ids"])
        audit_record(
            "position.update",
            request=request,
            obj=position,
            tag_ids=body.validated_data["tag_ids"],
        )
        return Response(self._serialize([self.get_queryset().get(pk=position.pk)], many=False))

    @extend_schema(parameters=[s.GroupQuery], responses={200: s.GroupSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def grouped(self, request: Request) -> Response:
        query = s.GroupQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self._cached("positions-grouped", lambda: self._grouped(query.validated_data["by"]))

    def _grouped(self, by: str) -> Response:
        positions = list(
            self.filter_queryset(self.get_queryset()).prefetch_related(
                Prefetch("strategies", queryset=Strategy.objects.order_by("id"))
            )
        )
        groups = _group(positions, by)
        greeks = import_string(settings.SIGMASIGHT_POSITION_GREEKS_PROVIDER)(positions)
        body = [
            {"key": key, "positions": members, "totals": s.totals(members, greeks)}
            for key, members in sorted(groups.items())
        ]
        return Response(s.GroupSerializer(body, many=True, context={"greeks": greeks}).data)


def _group(positions: list[Position], by: str) -> dict[str, list[Position]]:
    groups: dict[str, list[Position]] = defaultdict(list)
    if by == "sector":
        underlyings = {p.underlying_symbol for p in positions}
        sectors = dict(
            Security.objects.filter(symbol__in=underlyings).values_list("symbol", "sector")
        )
    for p in positions:
        if by == "type":
            keys = [p.position_type]
        elif by == "underlying":
            keys = [p.underlying_symbol]
        elif by == "tag":
            keys = [t.name for t in p.tags.all()] or ["untagged"]
        elif by == "strategy":
            keys = [st.name for st in p.strategies.all()] or ["none"]
        else:
            keys = [sectors.get(p.underlying_symbol) or "Unclassified"]
        for key in keys:
            groups[key].append(p)
    return groups


class TagViewSet(viewsets.ModelViewSet):
    queryset = Tag.objects.none()
    serializer_class = s.TagSerializer
    http_method_names = ["get", "post", "patch", "delete"]
    ordering_fields = ["id", "name", "created_at"]
    search_fields = ["name", "description"]

    def get_queryset(self):
        return selectors.tags_of(request_user(self.request))

    def create(self, request: Request) -> Response:
        body = s.TagSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tag = services.tag_create(owner=request.user, **body.validated_data)
        audit_record("tag.create", request=request, obj=tag)
        return Response(
            s.TagSerializer(self.get_queryset().get(pk=tag.pk)).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        tag = self.get_object()
        body = s.TagSerializer(tag, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        services.tag_update(tag=tag, data=body.validated_data)
        audit_record("tag.update", request=request, obj=tag, fields=sorted(body.validated_data))
        return Response(s.TagSerializer(self.get_queryset().get(pk=tag.pk)).data)

    def perform_destroy(self, instance: Tag) -> None:
        with transaction.atomic():
            audit_record("tag.delete", request=self.request, obj=instance)
            instance.delete()
            services.owner_changed(instance.owner_id)


class StrategyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Detected strategies (recomputed when the book changes) and user-defined ones."""

    queryset = Strategy.objects.none()
    serializer_class = s.StrategySerializer
    filterset_class = StrategyFilter
    http_method_names = ["get", "post", "patch", "delete"]
    ordering_fields = ["id", "name", "kind"]

    def get_queryset(self):
        return selectors.strategies_of(request_user(self.request))

    @extend_schema(request=s.StrategyCreateSerializer, responses={201: s.StrategySerializer})
    def create(self, request: Request) -> Response:
        body = s.StrategyCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            strategy = services.strategy_create(**body.validated_data)
            audit_record(
                "strategy.create",
                request=request,
                obj=strategy,
                kind=strategy.kind,
                position_ids=sorted(set(body.validated_data["position_ids"])),
            )
        return Response(
            s.StrategySerializer(self.get_queryset().get(pk=strategy.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=s.StrategyUpdateSerializer, responses={200: s.StrategySerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        strategy = self.get_object()
        body = s.StrategyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            services.strategy_update(strategy=strategy, **body.validated_data)
            audit_record(
                "strategy.update",
                request=request,
                obj=strategy,
                fields=sorted(body.validated_data),
            )
        return Response(s.StrategySerializer(self.get_queryset().get(pk=strategy.pk)).data)

    def perform_destroy(self, instance: Strategy) -> None:
        if instance.is_detected:
            raise ValidationFailed(
                "Detected strategies follow the book; delete or change positions instead.",
                code="strategy_detected",
            )
        with transaction.atomic():
            audit_record("strategy.delete", request=self.request, obj=instance)
            instance.delete()
        book_changed([instance.portfolio_id])
