"""Password rules beyond Django's: a password is what the user typed, all of it."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class NoSurroundingWhitespaceValidator:
    """Refuse a password that is only whitespace or starts or ends with it: twelve spaces are
    long enough for the length rule, and a trailing space from a copy-paste would silently be
    part of the password (our serializers never trim passwords)."""

    def validate(self, password: str, user: object = None) -> None:
        if not password.strip():
            raise ValidationError(
                "The password cannot be only whitespace.", code="password_whitespace_only"
            )
        if password != password.strip():
            raise ValidationError(
                "The password cannot start or end with whitespace.", code="password_whitespace"
            )

    def get_help_text(self) -> str:
        return "Your password cannot be only whitespace or start or end with it."
