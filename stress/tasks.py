from __future__ import annotations

from celery import shared_task
from django.conf import settings

from marketdata.calendar import session_for
from stress.services import correlation_store, factor_model


@shared_task(name="stress.refresh_correlation", soft_time_limit=300, time_limit=360)
def refresh_correlation() -> dict[str, object]:
    """Weekly: the stress factors' EWMA correlation for the last session."""
    as_of = session_for(None)
    row = correlation_store(as_of, factor_model(as_of), settings.SIGMASIGHT_FACTOR_WINDOW)
    return {"as_of": as_of.isoformat(), "factors": len(row.factors)}
