from __future__ import annotations

import socket

from celery import shared_task


@shared_task(name="sigmasight.ping", soft_time_limit=10, time_limit=15)
def ping(payload: str = "ping") -> dict[str, str]:
    """Round trip through the broker: proves a worker is consuming and results come back."""
    return {"reply": "pong", "payload": payload, "worker": socket.gethostname()}
