from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """`?page=&page_size=` with the page size capped at 500 (shared/API.md)."""

    page_size_query_param = "page_size"
    max_page_size = settings.SIGMASIGHT_MAX_PAGE_SIZE
