"""Writes of risk limits and alerts outside the evening's jobs: the checks a limit must pass
wherever it is written (the API, the admin form, the import) beyond the spec's, acknowledging a
breach, and a user's alert settings. Each runs in one transaction and records its audit event.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.request import Request

from modeling.limits.spec import limit_errors
from modeling.limits.webhooks import secret_generate
from modeling.models import AlertSettings, Breach
from portfolios.models import Portfolio
from sigmasight.accounts.models import User
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import ConflictError, ValidationFailed
from stress.models import StressScenario


def scenario_names(owner_id: int | None) -> set[str]:
    """The stress scenarios a limit of `owner_id` may name: the active library scenarios and the
    owner's own active ones (the limits job reads a user's own scenario of a name first)."""
    owned = Q(owner__isnull=True) | Q(owner_id=owner_id) if owner_id else Q(owner__isnull=True)
    return set(StressScenario.objects.filter(owned, is_active=True).values_list("name", flat=True))


def limit_problems(
    data: dict, *, owner_id: int | None, portfolio: Portfolio | None
) -> dict[str, list[str]]:
    """Field errors of a whole limit ({} when valid): the spec's rules, the stress scenario it
    names, and its portfolio, which must be one of the owner's."""
    scenarios = scenario_names(owner_id) if data.get("measure") == "stress_loss" else None
    errors = limit_errors(data, scenarios=scenarios)
    if portfolio is not None and owner_id is not None and portfolio.owner_id != owner_id:
        errors["portfolio"] = ["The portfolio is not one of the owner's."]
    return errors


def breach_acknowledge(*, breach: Breach, user: User, request: Request | None = None) -> Breach:
    """Mark an open breach acknowledged (by `user`, now). Acknowledging it again changes
    nothing; a resolved breach is a conflict. Claimed with a conditional update, so a breach the
    limits job resolves meanwhile is never marked."""
    with transaction.atomic():
        claimed = Breach.objects.filter(pk=breach.pk, status=Breach.Status.OPEN).update(
            status=Breach.Status.ACKNOWLEDGED,
            acknowledged_at=timezone.now(),
            acknowledged_by=user,
        )
        breach.refresh_from_db()
        if breach.status == Breach.Status.RESOLVED:
            raise ConflictError(
                f"This breach was resolved on {breach.resolved_on}: there is nothing to "
                "acknowledge.",
                code="breach_resolved",
            )
        if claimed:
            audit_record(
                "breach.acknowledge",
                request=request,
                actor=user,
                obj=breach,
                limit=breach.limit_id,
                level=breach.level,
                value=breach.value,
            )
    return breach


def alert_settings_save(
    *, user: User, data: dict[str, Any], request: Request | None = None
) -> tuple[AlertSettings, str | None]:
    """Store the user's alert settings; returns them and the new webhook secret, if one was
    made (when a URL is first set, or on `rotate_secret`; clearing the URL clears it)."""
    with transaction.atomic():
        alerts, _ = AlertSettings.objects.select_for_update().get_or_create(user=user)
        before = {"email": alerts.email, "webhook_url": alerts.webhook_url}
        alerts.email = data.get("email", alerts.email)
        alerts.webhook_url = data.get("webhook_url", alerts.webhook_url)
        secret = None
        if not alerts.webhook_url:
            if data.get("rotate_secret"):
                raise ValidationFailed(
                    "There is no webhook URL to sign for.",
                    fields={"rotate_secret": ["Set a webhook_url first."]},
                )
            alerts.webhook_secret = ""
        elif data.get("rotate_secret") or not alerts.webhook_secret:
            secret = alerts.webhook_secret = secret_generate()
        alerts.save()
        changed = sorted(k for k, v in before.items() if getattr(alerts, k) != v)
        audit_record(
            "alerts.update",
            request=request,
            actor=user,
            obj=alerts,
            fields=changed,
            email=alerts.email,
            # The URL's path can itself be a credential (chat webhooks): only its host is kept.
            webhook_host=urlsplit(alerts.webhook_url).hostname or "",
            signing_key_rotated=secret is not None,
        )
    return alerts, secret
