from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination

from sigmasight.api.query import QuerySerializer


class PageQuery(QuerySerializer):
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=settings.SIGMASIGHT_MAX_PAGE_SIZE
    )


class StandardPagination(PageNumberPagination):
    """`?page=&page_size=` with the page size capped at 500 (shared/API.md). Both are strict:
    an empty, non-numeric or out-of-range value is a 400 naming it (DRF would fall back to the
    default size or clamp it); a page past the last one is a 404."""

    page_size_query_param = "page_size"
    max_page_size = settings.SIGMASIGHT_MAX_PAGE_SIZE

    def _query(self, request) -> dict:
        query = PageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def get_page_size(self, request) -> int | None:
        return self._query(request).get("page_size", self.page_size)

    def get_page_number(self, request, paginator) -> int:
        return self._query(request).get("page", 1)
