"""Uploads refused while they are read, never held whole (Django's handlers would spool a
200 MB body to a temporary file and the view would then read it all).

`LimitedUploadHandler` goes first in FILE_UPLOAD_HANDLERS: a multipart body whose declared length
is past the request's limit is refused before a byte is read, and a file part past it is refused
at the chunk that crosses it. The limit is SIGMASIGHT_FILE_UPLOAD_MAX_BYTES, or a view's own
(`limit_uploads(request, n)` before the body is touched: the position CSV's 5 MB)."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from sigmasight.exceptions import PayloadTooLarge

# Room for the multipart boundaries, part headers and the small form fields beside the file.
ENVELOPE_BYTES = 64 * 1024


def limit_uploads(request: HttpRequest, limit: int) -> None:
    """Cap the files of this request at `limit` bytes (call before reading the body)."""
    request.upload_limit = limit  # type: ignore[attr-defined]


def _limit(request: HttpRequest | None) -> int:
    default = settings.SIGMASIGHT_FILE_UPLOAD_MAX_BYTES
    return int(getattr(request, "upload_limit", default)) if request is not None else default


def _too_large(limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what}; the limit is {limit:,} bytes.")


class LimitedUploadHandler(FileUploadHandler):
    """Counts the bytes of every file part and stops the upload past the limit; passes the data
    on to the next handler (memory, then a temporary file) unchanged."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None) -> None:
        limit = _limit(self.request)
        if content_length and content_length > limit + ENVELOPE_BYTES:
            raise _too_large(limit, f"The request body is {content_length:,} bytes")
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        limit = _limit(self.request)
        if self.received > limit:
            raise _too_large(limit, f"The file is more than {limit:,} bytes")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
