"""Telling users what a session changed about their limits: one digest per user and session
(what opened, worsened or resolved; a breach that only persists says nothing), sent by email and
to a signed webhook (`modeling.limits.webhooks`), each channel an `AlertDelivery` row that a
Celery task (`modeling.deliver_alert`) sends with retries.

`alerts_send` is the `alerts` batch job's chunk: it claims each owner's events of the session
that no digest holds yet with one conditional UPDATE, so two chunks (or workers) sharing an
owner never send two digests and a re-run sends nothing. `delivery_send` is one attempt of one
delivery; it records every attempt (attempts, the receiver's status, the error) for the admin's
delivery log.
"""

from __future__ import annotations

import json
import logging
import math
import re
import smtplib
from collections.abc import Iterable
from datetime import date
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from modeling.limit_models import AlertDelivery, AlertDigest, AlertSettings, BreachEvent, Limit
from modeling.limits import webhooks
from modeling.limits.spec import MEASURES
from portfolios.models import Portfolio
from sigmasight.celery import app
from sigmasight.outbox.services import outbox_send

logger = logging.getLogger("sigmasight.alerts")

TASK = "modeling.deliver_alert"  # named: modeling.tasks imports this module
KINDS = ("opened", "worsened", "resolved")
ERROR_LIMIT = 500  # AlertDelivery.error
TEXT_LIMIT = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class DeliveryRetry(Exception):
    """A transient failure of one attempt (receiver down, 5xx, SMTP unavailable): the task
    tries again later."""


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _item(event: BreachEvent) -> dict[str, Any]:
    breach = event.breach
    limit: Limit = breach.limit
    portfolio = breach.portfolio
    return {
        "breach": breach.pk,
        "limit": {
            "id": limit.pk,
            "name": limit.name,
            "measure": limit.measure,
            "params": limit.params,
            "unit": limit.unit,
            "bound": limit.bound,
            "warning": _finite(limit.warning),
            "hard": _finite(limit.hard),
        },
        "portfolio": {"id": portfolio.pk, "name": portfolio.name},
        "value": _finite(event.value),
        "level": event.level or None,
        "bound_value": _finite(breach.bound_value),
        "status": breach.status,
        "first_seen": breach.first_seen.isoformat(),
        "last_seen": breach.last_seen.isoformat(),
    }


def digest_body(*, digest_id: int, session: date, events: Iterable[BreachEvent]) -> dict[str, Any]:
    """The JSON a webhook receives (and the email is written from): the session, then the
    events by kind, each with its limit, portfolio, value and level."""
    body: dict[str, Any] = {
        "event": webhooks.EVENT,
        "digest": digest_id,
        "session": session.isoformat(),
        **{kind: [] for kind in KINDS},
    }
    for event in events:
        body[event.kind].append(_item(event))
    return body


def _channels(owner_id: int) -> tuple[str, str]:
    """(email address, webhook URL) the owner's digests go to; "" where a channel is off."""
    address = get_user_model().objects.filter(pk=owner_id).values_list("email", flat=True).first()
    chosen = AlertSettings.objects.filter(user_id=owner_id).first()
    email_on = chosen is None or chosen.email  # email is on until the user turns it off
    return (address or "") if email_on else "", chosen.webhook_url if chosen else ""


def _digest_claim(*, owner_id: int, as_of: date) -> list[AlertDelivery] | None:
    """Make the owner's digest of `as_of` from the events no digest holds and queue its
    deliveries (none when both channels are off); None, and no digest, when another chunk (or
    an earlier run) has claimed them all."""
    candidates = list(
        BreachEvent.objects.filter(
            session=as_of, digest__isnull=True, breach__portfolio__owner_id=owner_id
        ).values_list("pk", flat=True)
    )
    if not candidates:
        return None
    with transaction.atomic():
        digest = AlertDigest.objects.create(user_id=owner_id, session=as_of)
        # The condition sits on the updated rows themselves (no join), so on PostgreSQL a
        # concurrent claimer waits for this one and then re-checks `digest IS NULL`.
        claimed = BreachEvent.objects.filter(pk__in=candidates, digest__isnull=True).update(
            digest=digest
        )
        if not claimed:
            digest.delete()
            return None
        events = (
            BreachEvent.objects.filter(digest=digest)
            .select_related("breach__limit", "breach__portfolio")
            .order_by("pk")
        )
        digest.body = digest_body(digest_id=digest.pk, session=as_of, events=events)
        digest.save(update_fields=["body"])
        address, url = _channels(owner_id)
        rows = [
            AlertDelivery(digest=digest, channel=channel, target=target)
            for channel, target in (
                (AlertDelivery.Channel.EMAIL, address),
                (AlertDelivery.Channel.WEBHOOK, url),
            )
            if target
        ]
        deliveries = AlertDelivery.objects.bulk_create(rows)
        for delivery in deliveries:
            outbox_send(app.signature(TASK, args=(delivery.pk,)))
    logger.info(
        "alert digest",
        extra={"user": owner_id, "session": as_of.isoformat(), "events": claimed},
    )
    return deliveries


def alerts_send(*, as_of: date, portfolio_ids: list[int]) -> dict[str, int]:
    """The digests of session `as_of` for the owners of `portfolio_ids` (each holds all of its
    owner's untold events of the session, whichever portfolio they are on), their deliveries
    queued once committed. Counts: digests made, emails and webhooks queued."""
    owners = (
        Portfolio.objects.filter(pk__in=portfolio_ids)
        .order_by("owner_id")
        .values_list("owner_id", flat=True)
        .distinct()
    )
    counts = {"digests": 0, "emails": 0, "webhooks": 0}
    for owner_id in owners:
        deliveries = _digest_claim(owner_id=owner_id, as_of=as_of)
        if deliveries is None:
            continue
        counts["digests"] += 1
        for delivery in deliveries:
            counts[f"{delivery.channel}s"] += 1
    return counts


# --- one attempt of one delivery --------------------------------------------------------------


def _plain(text: str) -> str:
    """User text (a limit's or a portfolio's name) as one line of a plain-text email."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "money":
        return f"{value:,.2f}"
    if unit == "share_of_equity":
        return f"{value:.2%} of equity"
    if unit == "days":
        return f"{value:,.1f} days"
    return f"{value:,.4g}"


def _line(kind: str, item: dict[str, Any]) -> str:
    limit = item["limit"]
    spec = MEASURES.get(limit["measure"])
    label = _plain(limit["name"]) or (spec.label if spec else limit["measure"])
    where = _plain(item["portfolio"]["name"])
    value = _number(item["value"], limit["unit"])
    level = _number(item["bound_value"], limit["unit"])
    if kind == "resolved":
        return (
            f"- {label} on {where}: back within its limit at {value} (since {item['first_seen']})"
        )
    bound = {"min": "below", "max": "above"}.get(limit["bound"], "beyond (absolute)")
    return f"- {label} on {where}: {value}, {bound} the {item['level']} level of {level}"


def email_subject(body: dict[str, Any]) -> str:
    counts = ", ".join(f"{len(body[kind])} {kind}" for kind in KINDS)
    return f"SigmaSight risk limits, session {body['session']}: {counts}"


def email_text(body: dict[str, Any]) -> str:
    """The plain-text email of a digest body."""
    lines = [f"What the session of {body['session']} changed about your risk limits.", ""]
    for kind in KINDS:
        if body[kind]:
            lines.append(f"{kind.capitalize()} ({len(body[kind])}):")
            lines.extend(_line(kind, item) for item in body[kind])
            lines.append("")
    lines.append("You receive this because email alerts are on in your SigmaSight alert settings.")
    return "\n".join(lines) + "\n"


def _send(delivery: AlertDelivery) -> int | None:
    """Send one delivery; the webhook's HTTP status (None for email). Raises
    webhooks.WebhookError (its `transient` says whether to retry) or an SMTP/OS error."""
    body = delivery.digest.body
    if delivery.channel == AlertDelivery.Channel.EMAIL:
        EmailMessage(
            subject=email_subject(body),
            body=email_text(body),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.target],
        ).send()
        return None
    secret = (
        AlertSettings.objects.filter(user_id=delivery.digest.user_id)
        .values_list("webhook_secret", flat=True)
        .first()
    )
    if not secret:
        raise webhooks.WebhookError("The webhook has no secret to sign with.", transient=False)
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    response = webhooks.post(delivery.target, secret, payload.encode(), delivery_id=delivery.pk)
    return response.status_code


def _finish(delivery: AlertDelivery, **fields: Any) -> None:
    AlertDelivery.objects.filter(pk=delivery.pk, status=AlertDelivery.Status.PENDING).update(
        **fields
    )
    for name, value in fields.items():
        setattr(delivery, name, value)


def delivery_send(*, delivery_id: int, final: bool = True) -> AlertDelivery | None:
    """One attempt at a pending delivery: sent, or failed (a refused URL, a 4xx, or a transient
    error on the `final` attempt), or still pending after a transient error, which raises
    DeliveryRetry for the task to retry. None when the delivery is gone, no longer pending (a
    redelivered task) or being attempted by another worker."""
    delivery = AlertDelivery.objects.select_related("digest").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != AlertDelivery.Status.PENDING:
        logger.info("alert delivery skipped", extra={"delivery": delivery_id})
        return None
    claimed = AlertDelivery.objects.filter(
        pk=delivery.pk, status=AlertDelivery.Status.PENDING, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery.attempts += 1
    try:
        status = _send(delivery)
    except webhooks.WebhookError as exc:
        transient, error, status = exc.transient, str(exc), exc.status
    except (smtplib.SMTPException, OSError, SoftTimeLimitExceeded) as exc:
        transient, error, status = True, f"{type(exc).__name__}: {exc}", None
    except Exception as exc:  # a bug must not leave the delivery pending forever
        logger.exception("alert delivery error", extra={"delivery": delivery.pk})
        transient, error, status = False, f"{type(exc).__name__}: {exc}", None
    else:
        _finish(
            delivery,
            status=AlertDelivery.Status.SENT,
            response_status=status,
            error="",
            delivered_at=timezone.now(),
        )
        logger.info(
            "alert delivered", extra={"delivery": delivery.pk, "attempts": delivery.attempts}
        )
        return delivery
    error = error[:ERROR_LIMIT]
    extra = {"delivery": delivery.pk, "attempts": delivery.attempts, "error": error}
    if transient and not final:
        _finish(delivery, response_status=status, error=error)
        logger.warning("alert delivery will be retried", extra=extra)
        raise DeliveryRetry(error)
    _finish(delivery, status=AlertDelivery.Status.FAILED, response_status=status, error=error)
    logger.warning("alert delivery failed", extra=extra)
    return delivery


def deliveries_retry(*, delivery_ids: Iterable[int]) -> int:
    """Queue failed deliveries again (the admin's action); how many were."""
    with transaction.atomic():
        ids = list(
            AlertDelivery.objects.filter(
                pk__in=list(delivery_ids), status=AlertDelivery.Status.FAILED
            ).values_list("pk", flat=True)
        )
        AlertDelivery.objects.filter(pk__in=ids).update(
            status=AlertDelivery.Status.PENDING, error=""
        )
        for delivery_id in ids:
            outbox_send(app.signature(TASK, args=(delivery_id,)))
    return len(ids)
