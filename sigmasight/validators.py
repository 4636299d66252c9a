"""The one rule for user text we store: no control characters.

Names, descriptions, tags, notes, scenario and session names refuse C0 and C1 control
characters (U+0000-U+001F, U+007F-U+009F); descriptions and notes (`multiline=True`) accept
tab, line feed and carriage return. The validator sits on the model fields, so admin forms,
import-export imports (`clean_model_instances`) and DRF ModelSerializers apply it; explicit
serializer fields and the position CSV (`position_csv.validate_record`) call the same instances.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f]")
_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@deconstructible
class NoControlCharacters:
    code = "control_character"

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: object) -> None:
        if not isinstance(value, str):
            return
        found = (_MULTILINE if self.multiline else _SINGLE_LINE).search(value)
        if found is None:
            return
        allowed = " (tabs and line breaks are)" if self.multiline else ""
        raise ValidationError(
            f"Control characters are not allowed{allowed}: U+{ord(found.group()):04X} "
            f"at position {found.start() + 1}.",
            code=self.code,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoControlCharacters) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash((NoControlCharacters, self.multiline))


no_control_characters = NoControlCharacters()
no_control_characters_multiline = NoControlCharacters(multiline=True)
