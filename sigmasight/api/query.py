"""Strict query parameters: a parameter that is given must be valid, even when empty.

DRF and django-filter read `?as_of=` or `?portfolio=` as if the parameter were absent (the
default applies, the filter is skipped); the schema says an empty string is no date and no
id, so the API refuses it (400 naming the parameter). Text parameters that may be blank
(`search`, `symbol`) keep accepting it.
"""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers

from sigmasight.api.fields import id_field

BLANK = "This parameter may not be blank."
# What django-filter's BooleanFilter reads; anything else it would silently ignore.
BOOLEANS = {"true", "false", "True", "False", "1", "0"}


def _given_blank(data: object, name: str) -> bool:
    values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]  # type: ignore[attr-defined]
    return any(value == "" for value in values)


class QuerySerializer(serializers.Serializer):
    """Base of every query-parameter serializer: `?name=` with nothing after it is an error."""

    def to_internal_value(self, data):
        blank = {
            name: [BLANK]
            for name, field in self.fields.items()
            if not field.read_only
            and not getattr(field, "allow_blank", False)
            and hasattr(data, "get")
            and _given_blank(data, name)
        }
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


# Filters for which an empty value is a value: free text, and lists of text.
_BLANK_ALLOWED = (django_filters.CharFilter, django_filters.BaseCSVFilter)


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, refusing an empty value for a typed filter (number, date, choice...)
    and a boolean that is neither true nor false."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            errors = {
                name: [BLANK]
                for name, field in filterset.filters.items()
                if not isinstance(field, _BLANK_ALLOWED)
                and _given_blank(request.query_params, name)
            }
            for name, field in filterset.filters.items():
                values = request.query_params.getlist(name)
                if isinstance(field, django_filters.BooleanFilter) and set(values) - BOOLEANS:
                    errors.setdefault(name, ["Must be true or false."])
            if errors:
                raise serializers.ValidationError(errors)
        return filterset


# The query parameters of the endpoints that read stored results, one definition each.


class AsOfQuery(QuerySerializer):
    as_of = serializers.DateField(required=False, help_text="default: the latest session")


class PortfolioQuery(AsOfQuery):
    portfolio = id_field(required=False, help_text="default: your first portfolio")


class DateRangeQuery(QuerySerializer):
    start = serializers.DateField(required=False, help_text="first session (inclusive)")
    end = serializers.DateField(required=False, help_text="last session (inclusive)")

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"start": ["start must be on or before end."]})
        return attrs
