"""Domain errors: raised by services and calculations, turned into the API envelope by
`sigmasight.api.errors.exception_handler`. Pure Python so calculations can raise them too."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    default_code = "domain_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}


class ValidationFailed(DomainError):
    default_code = "validation_error"


class NotFoundError(DomainError):
    status_code = 404
    default_code = "not_found"


class ConflictError(DomainError):
    status_code = 409
    default_code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    default_code = "payload_too_large"


class InsufficientHistory(DomainError):
    status_code = 422
    default_code = "insufficient_history"


class DependencyUnavailable(DomainError):
    status_code = 503
    default_code = "service_unavailable"
    retry_after = 5  # seconds, sent as Retry-After
