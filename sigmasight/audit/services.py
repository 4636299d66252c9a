"""Recording audit events.

`audit_record` is called by views, admin actions and commands right after (or, for deletes,
right before and in the same transaction as) the change it records. It writes inside the caller's
transaction, in a savepoint: a change rolled back takes its event with it, and a failed write of
the event rolls back only the savepoint, is logged, and never reaches the caller.

Nothing secret is stored: details are scrubbed of keys that name a password, token, secret,
API key, cookie or authorization header (at any depth), and of any value that looks like a JWT.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from sigmasight.audit.models import AuditEvent

logger = logging.getLogger("sigmasight.audit")

SCRUBBED = "[scrubbed]"
_SECRET_KEY = re.compile(
    r"passw|token|secret|authoriz|api[_-]?key|cookie|credential|signature", re.IGNORECASE
)
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


def scrub(value: object) -> object:
    """`value` (JSON-shaped) with every secret-named key's value and every JWT replaced."""
    if isinstance(value, dict):
        return {
            str(key): SCRUBBED if _SECRET_KEY.search(str(key)) else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return _JWT.sub(SCRUBBED, value)
    return value


def client_ip(request) -> str | None:
    """The address the throttles count by: REMOTE_ADDR, or behind NUM_PROXIES trusted proxies
    the one the outermost proxy appended to X-Forwarded-For. Never a client-written header alone
    (DRF would trust the whole header when NUM_PROXIES is unset)."""
    if api_settings.NUM_PROXIES is None:
        address = request.META.get("REMOTE_ADDR") or ""
    else:
        address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _request_user(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _object_fields(obj: models.Model | None) -> dict:
    if obj is None:
        return {}
    fields = {
        "object_type": obj._meta.label_lower,
        "object_id": "" if obj.pk is None else str(obj.pk)[:64],
        "object_repr": str(obj)[:200],
    }
    if obj._meta.label_lower == "portfolios.portfolio":
        fields["portfolio_id"] = obj.pk
    elif (portfolio_id := getattr(obj, "portfolio_id", None)) is not None:
        fields["portfolio_id"] = portfolio_id
    return fields


def audit_record(
    action: str,
    *,
    request=None,
    actor=None,
    actor_email: str = "",
    obj: models.Model | None = None,
    portfolio_id: int | None = None,
    **details: object,
) -> AuditEvent | None:
    """Record `action` by `actor` (default: the request's authenticated user) on `obj`.

    `actor_email` names the actor when there is no user (a failed login's attempted email);
    `portfolio_id` overrides the one read from `obj`. Returns the event, or None when it could
    not be written (logged; never raised).
    """
    try:
        if action not in AuditEvent.Action.values:
            raise ValueError(f"unknown audit action {action!r}")
        clean = scrub(json.loads(json.dumps(details, cls=DjangoJSONEncoder)))
        # Everything that may query runs in the savepoint, so no failure aborts the caller's
        # transaction (PostgreSQL refuses every statement after an error until a rollback).
        with transaction.atomic():
            if actor is None and request is not None:
                actor = _request_user(request)
            fields = _object_fields(obj)
            if portfolio_id is not None:
                fields["portfolio_id"] = portfolio_id
            return AuditEvent.objects.create(
                action=action,
                actor=actor,
                actor_email=((actor.email if actor is not None else "") or actor_email)[:254],
                ip=client_ip(request) if request is not None else None,
                request_id=str(getattr(request, "request_id", "") or "")[:64],
                details=clean,
                **fields,
            )
    except Exception:
        logger.exception("audit event not recorded", extra={"action": action})
        return None
