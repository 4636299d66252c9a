"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from sigmasight.validators import NoControlCharacters

# Primary keys are BigAutoFields: a larger id can name no row, and SQLite cannot even bind it
# (OverflowError in an `id IN (...)` lookup), so it is refused as invalid input.
MAX_ID = 2**63 - 1


def id_field(**kwargs: Any) -> serializers.IntegerField:
    """An integer that can be a primary key (a list of ids: `ListField(child=id_field())`)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class CheckedCharField(serializers.CharField):
    """A CharField whose control-character validators see the text as sent, before DRF trims
    the surrounding whitespace: Python's whitespace includes U+001C-U+001F and U+0085, which
    trimmed first would pass unseen (and the schema says they are refused)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            for validator in self.validators:
                if isinstance(validator, NoControlCharacters):
                    validator(data)
        return super().to_internal_value(data)


def use_checked_text_fields() -> None:
    """Every ModelSerializer builds its text fields as CheckedCharField (called once, when the
    apps are ready); explicit serializer fields declare it themselves."""
    mapping = serializers.ModelSerializer.serializer_field_mapping
    mapping[models.CharField] = CheckedCharField
    mapping[models.TextField] = CheckedCharField
