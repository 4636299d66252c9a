"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

from rest_framework import serializers

# Primary keys are BigAutoFields: a larger id can name no row, and SQLite cannot even bind it
# (OverflowError in an `id IN (...)` lookup), so it is refused as invalid input.
MAX_ID = 2**63 - 1


def id_field(**kwargs: object) -> serializers.IntegerField:
    """An integer that can be a primary key (a list of ids: `ListField(child=id_field())`)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)
