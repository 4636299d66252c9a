"""OpenAPI additions, so the schema says what the API does (shared/API.md "Conventions"):

- every operation lists each error status with the envelope, as shared components;
- the limits the API enforces on common parameters: ids (1..MAX_ID), pages and page sizes
  (1..500), `as_of` years (the market calendar's), no NUL in query strings (400);
- the text rule of sigmasight.validators as a `pattern` (AutoSchema).

Per-view facts (path enums, a view's own query parameters) live on the views, in
`extend_schema`; what is common to every operation is stated here once.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular import openapi
from rest_framework import serializers

from sigmasight.api.fields import MAX_ID
from sigmasight.validators import NoControlCharacters

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
}

# Status -> (component name, description, headers). Each is the error envelope.
ERRORS: dict[str, tuple[str, str, dict]] = {
    "400": (
        "ValidationError",
        "`validation_error`: `fields` maps each offending query parameter or body field to its "
        "messages (a NUL character in any query parameter is refused here).",
        {},
    ),
    "401": ("NotAuthenticated", "Credentials missing, expired or not valid.", {}),
    "403": ("PermissionDenied", "Authenticated but not allowed (e.g. staff only).", {}),
    "404": (
        "NotFound",
        "No such object, or another user's (never revealed to exist).",
        {},
    ),
    "405": ("MethodNotAllowed", "The method is not allowed on this path.", {}),
    "413": ("PayloadTooLarge", "`payload_too_large`: the body is over the size limit.", {}),
    "415": ("UnsupportedMediaType", "The body's content type is not accepted.", {}),
    "422": (
        "InsufficientHistory",
        "`insufficient_history`: the data the result needs is not there (`fields` says what "
        "is missing).",
        {},
    ),
    "429": ("Throttled", "Too many requests.", {"Retry-After": {**RETRY_AFTER, "required": True}}),
    "503": (
        "ServiceUnavailable",
        "A service the request depends on (database, market data) is unavailable.",
        {"Retry-After": RETRY_AFTER},
    ),
}

ID_PARAMETERS = {
    "id",
    "portfolio_id",
    "position_id",
    "trade_id",
    "portfolio",
    "session",
    "strategy",
}
# as_of is a trading date of the market calendar (marketdata.calendar FIRST_YEAR-LAST_YEAR);
# a calendar date's shape (month and day ranges) is checked by the format.
AS_OF_PATTERN = r"^(199[0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2}$"
# NulQueryMiddleware refuses NUL in any query parameter.
NO_NUL_PATTERN = r"^[^\x00]*$"


def _limit_parameter(parameter: dict) -> None:
    schema = parameter.get("schema", {})
    name, where = parameter["name"], parameter["in"]
    if name in ID_PARAMETERS and schema.get("type") in {"integer", "number"}:
        schema.pop("format", None)
        schema.update(type="integer", minimum=1, maximum=MAX_ID)
    elif where == "query" and name == "page":
        schema.update(minimum=1)
    elif where == "query" and name == "page_size":
        schema.update(minimum=1, maximum=settings.SIGMASIGHT_MAX_PAGE_SIZE)
    elif name == "as_of" and schema.get("format") == "date":
        schema["pattern"] = AS_OF_PATTERN
    elif where == "query":
        text = schema.get("items", {}) if schema.get("type") == "array" else schema
        if text.get("type") == "string" and not {"enum", "format", "pattern"} & text.keys():
            text["pattern"] = NO_NUL_PATTERN


_META = {"description", "default", "readOnly", "writeOnly", "title", "example"}
# The longest text a JSON number turns into ("-1.2345678901234567e-308").
_NUMBER_TEXT = 24


def _reads_numbers_as_text(prop: dict) -> bool:
    """DRF's CharField takes a JSON number in a body and keeps its text (position quantities
    and prices are documented to arrive either way): say so where any number's text is a
    valid value of the field (free text, no format, enum or pattern but the text rule)."""
    return (
        prop.get("type") == "string"
        and not prop.get("nullable")
        and not {"format", "enum"} & prop.keys()
        and prop.get("pattern", CONTROL_FREE[False]) in {*CONTROL_FREE.values(), NO_NUL_PATTERN}
        and prop.get("maxLength", _NUMBER_TEXT) >= _NUMBER_TEXT
    )


def add_error_responses(result: dict, generator, request, public) -> dict:
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    responses = components.setdefault("responses", {})
    for name, description, headers in ERRORS.values():
        responses[name] = {
            "description": description,
            "content": {"application/json": {"schema": ref}},
            **({"headers": headers} if headers else {}),
        }
    for name, component in components["schemas"].items():
        properties = component.get("properties", {})
        as_of = properties.get("as_of", {})
        if as_of.get("format") == "date":
            as_of["pattern"] = AS_OF_PATTERN
        if name.endswith("Request"):
            for key, prop in properties.items():
                if _reads_numbers_as_text(prop):
                    meta = {k: prop.pop(k) for k in _META & prop.keys()}
                    properties[key] = {"anyOf": [prop, {"type": "number"}], **meta}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                _limit_parameter(parameter)
            answers = operation.setdefault("responses", {})
            for status, (name, _, _) in ERRORS.items():
                answers.setdefault(status, {"$ref": f"#/components/responses/{name}"})
            answers.setdefault(
                "default",
                {"description": "Error envelope", "content": {"application/json": {"schema": ref}}},
            )
    return result


# What sigmasight.validators.NoControlCharacters accepts, as an ECMA pattern for clients.
CONTROL_FREE = {
    False: r"^[^\u0000-\u001f\u007f-\u009f]*$",
    True: r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$",
}


def _decimal_pattern(whole: int, places: int | None) -> str:
    """A decimal string DRF's DecimalField reads: at least one digit (drf-spectacular's own
    pattern also matches "-" and ".")."""
    if not places:
        return rf"^-?\d{{1,{max(whole, 1)}}}$"
    fraction = rf"\.\d{{1,{places}}}"
    integer = (
        rf"\d{{1,{whole}}}(?:\.\d{{0,{places}}})?" if whole else r"0(?:\.\d{0," + f"{places}}})?"
    )
    return rf"^-?(?:{integer}|{fraction})$"


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, stating what it leaves out: the text rule of sigmasight.validators
    as a `pattern`, and that a list or dict field refusing to be empty needs an item."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, serializers.DecimalField)
            and schema.get("format") == "decimal"
            and field.max_whole_digits is not None
            and not field.localize
        ):
            schema["pattern"] = _decimal_pattern(field.max_whole_digits, field.decimal_places)
        if not getattr(field, "allow_empty", True):
            if isinstance(field, (serializers.ListSerializer, serializers.ListField)):
                schema.setdefault("minItems", 1)
            elif isinstance(field, serializers.DictField):
                schema.setdefault("minProperties", 1)
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        for validator in field.validators:
            if isinstance(validator, NoControlCharacters) and schema.get("type") == "string":
                schema.setdefault("pattern", CONTROL_FREE[validator.multiline])
            # Every DRF CharField refuses NUL (a password, a symbol...): say so where nothing
            # stricter already does.
            if (
                isinstance(validator, ProhibitNullCharactersValidator)
                and schema.get("type") == "string"
                and not {"format", "enum"} & schema.keys()
            ):
                schema.setdefault("pattern", NO_NUL_PATTERN)
