"""Request bodies: JSON objects (shared/API.md); any other JSON value is a 400 in the envelope."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONObjectParser(JSONParser):
    """DRF's JSON parser, refusing a body that is not an object (`[]`, `"x"`, `1`, `null`):
    views read fields by name, and a list would otherwise reach `request.data.get`."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if not isinstance(data, dict):
            raise ParseError("The request body must be a JSON object.")
        return data
