"""Filters of the modeling lists. Related objects are filtered by plain id on the user's own rows,
not validated as a choice among everyone's: another user's id answers like a missing one."""

from __future__ import annotations

import django_filters

from modeling.models import ExportHistory, ModelingSession
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
