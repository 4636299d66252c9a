"""Error reporting to Sentry, started by the settings when `SENTRY_DSN` is set.

Only then is sentry_sdk imported: without a DSN nothing is patched or started. The settings are
loaded by every process (gunicorn workers, Celery workers and beat, commands), so each reports
its own errors: unhandled exceptions in Django views and Celery tasks, and every ERROR log record
(the API's exception handler answers 500 in the envelope and logs the exception, so the error of
an API view arrives that way). No personal data: no user ids, addresses, cookies or request
bodies (positions and trades are the client's), and sentry_sdk's scrubber blanks secret-named
fields such as `password`, `token` and `authorization`.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


def sentry_init(*, dsn: str, environment: str, release: str | None) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.utils import BadDsn

    try:
        sentry_sdk.init(
            dsn=dsn,
            environment=environment,
            release=release,
            send_default_pii=False,
            max_request_body_size="never",
            integrations=[DjangoIntegration(), CeleryIntegration()],
        )
    except BadDsn as exc:
        raise ImproperlyConfigured(f"SENTRY_DSN is not a Sentry DSN ({exc}).") from exc
