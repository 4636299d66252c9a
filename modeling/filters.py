"""Filters of the modeling lists. Related objects are filtered by plain id on the user's own rows,
not validated as a choice among everyone's: another user's id answers like a missing one."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema_field

from modeling.limits.spec import MEASURES
from modeling.models import Breach, ExportHistory, Limit, ModelingSession
from sigmasight.api.fields import MAX_ID


class SessionFilter(django_filters.FilterSet):
    portfolio = django_filters.NumberFilter(
        field_name="portfolio_id", min_value=1, max_value=MAX_ID
    )

    class Meta:
        model = ModelingSession
        fields = ["portfolio", "status"]


class ExportHistoryFilter(django_filters.FilterSet):
    session = django_filters.NumberFilter(field_name="session_id", min_value=1, max_value=MAX_ID)

    class Meta:
        model = ExportHistory
        fields = ["session", "format"]


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An id that is not one of the schema's usual id parameters: a whole number in range."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class LimitFilter(django_filters.FilterSet):
    portfolio = django_filters.NumberFilter(
        field_name="portfolio_id", min_value=1, max_value=MAX_ID
    )
    applies_to = IdFilter(
        method="filter_applies_to",
        help_text="a portfolio id: its own limits and those on all your portfolios",
    )
    measure = django_filters.MultipleChoiceFilter(choices=[(m, m) for m in MEASURES])

    class Meta:
        model = Limit
        fields = ["portfolio", "applies_to", "measure", "is_active"]

    def filter_applies_to(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        return queryset.filter(Q(portfolio_id=value) | Q(portfolio__isnull=True))


class BreachFilter(django_filters.FilterSet):
    portfolio = django_filters.NumberFilter(
        field_name="portfolio_id", min_value=1, max_value=MAX_ID
    )
    limit = IdFilter(field_name="limit_id")
    status = django_filters.MultipleChoiceFilter(choices=Breach.Status.choices)
    level = django_filters.MultipleChoiceFilter(choices=Breach.Level.choices)

    class Meta:
        model = Breach
        fields = ["portfolio", "limit", "status", "level"]
