"""Risk limits, their breaches and the alert settings (API.md "Limits and alerts").

A user's limits and breaches are theirs alone: another user's id is a 404 like a missing one,
and a limit may only name one of the user's own portfolios (else 400 on `portfolio`). A limit is
validated whole by `modeling.limits.spec` (measure, unit, params, levels) and the stress scenario
it names must be an active one; nothing is written when it is refused.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from modeling.api import limit_serializers as s
from modeling.filters import BreachFilter, LimitFilter
from modeling.limits.services import alert_settings_save, breach_acknowledge
from modeling.limits.webhooks import webhook_url_errors
from modeling.models import AlertSettings, Breach, Limit
from modeling.selectors import breaches_of, limits_of
from sigmasight.api.users import request_user
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import ValidationFailed

TRACKED = ("name", "portfolio_id", "measure", "params", "bound", "unit", "warning", "hard")
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


@extend_schema(tags=["limits"])
class LimitViewSet(viewsets.ModelViewSet):
    """The user's limits, on one portfolio or (portfolio null) on every portfolio of theirs."""

    queryset = Limit.objects.none()  # for the schema; get_queryset scopes to the user
    serializer_class = s.LimitSerializer
    filterset_class = LimitFilter
    http_method_names = ["get", "post", "patch", "delete"]
    ordering_fields = ["id", "name", "measure", "created_at", "updated_at"]
    search_fields = ["name", "measure"]

    def get_queryset(self):
        return limits_of(request_user(self.request))

    def perform_create(self, serializer: BaseSerializer[Limit]) -> None:
        with transaction.atomic():
            limit = serializer.save(owner=self.request.user)
            audit_record(
                "limit.create",
                request=self.request,
                obj=limit,
                measure=limit.measure,
                bound=limit.bound,
                unit=limit.unit,
                warning=limit.warning,
                hard=limit.hard,
            )

    def perform_update(self, serializer: BaseSerializer[Limit]) -> None:
        assert serializer.instance is not None  # an update has its object
        with transaction.atomic():
            before = {k: getattr(serializer.instance, k) for k in TRACKED}
            limit = serializer.save()
            changes = {
                k: [before[k], getattr(limit, k)] for k in TRACKED if before[k] != getattr(limit, k)
            }
            audit_record(
                "limit.update",
                request=self.request,
                obj=limit,
                fields=sorted(serializer.validated_data),
                changes=changes,
            )

    def perform_destroy(self, instance: Limit) -> None:
        with transaction.atomic():  # recorded before the delete, undone with it if it fails
            audit_record(
                "limit.delete",
                request=self.request,
                obj=instance,
                measure=instance.measure,
                breaches_deleted=instance.breaches.count(),
            )
            instance.delete()


@extend_schema(tags=["limits"])
class BreachViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Breaches of the user's limits, newest first; the limits job opens, updates and resolves
    them, the user acknowledges them."""

    queryset = Breach.objects.none()
    serializer_class = s.BreachSerializer
    filterset_class = BreachFilter
    ordering_fields = ["id", "first_seen", "last_seen", "value", "level", "status"]
    search_fields = ["limit__name", "limit__measure"]

    def get_queryset(self):
        return breaches_of(request_user(self.request))

    @extend_schema(
        request=None,
        responses={
            200: s.BreachSerializer,
            409: OpenApiResponse(ENVELOPE, description="`breach_resolved`: nothing to acknowledge"),
        },
        description="Acknowledge an open breach (acknowledging it again changes nothing). It "
        "stays listed until the limits job finds the measure back within its limit.",
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        breach = breach_acknowledge(
            breach=self.get_object(), user=request_user(request), request=request
        )
        return Response(s.BreachSerializer(self.get_queryset().get(pk=breach.pk)).data)


class AlertSettingsView(APIView):
    """How the user is told of breaches: an email digest, and a signed webhook."""

    @extend_schema(
        responses={200: s.AlertSettingsSerializer},
        tags=["limits"],
        description="The user's alert settings (defaults when never saved). The webhook "
        "secret is never shown here: only `webhook_secret_set`.",
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        alerts = AlertSettings.objects.filter(user=user).first() or AlertSettings(user=user)
        return Response(s.AlertSettingsSerializer(alerts).data)

    @extend_schema(
        request=s.AlertSettingsUpdateSerializer,
        responses={200: s.AlertSettingsSavedSerializer},
        tags=["limits"],
        description="Change the alert settings (fields left out keep their value). A webhook "
        "URL must be public https (private, loopback and link-local hosts are refused). The "
        "signing secret is made here when a URL is first set or on `rotate_secret`, and shown "
        "in this response only; a secret sent by the client is refused.",
    )
    def put(self, request: Request) -> Response:
        body = s.AlertSettingsUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "webhook_secret" in request.data:
            raise ValidationFailed(
                "The webhook secret is made by the server.",
                fields={"webhook_secret": ["Send rotate_secret: true for a new one."]},
            )
        url = body.validated_data.get("webhook_url")
        if url:
            errors = webhook_url_errors(url)
            if errors:
                raise ValidationFailed(
                    "The webhook URL may not be used.", fields={"webhook_url": errors}
                )
        alerts, secret = alert_settings_save(
            user=request_user(request), data=body.validated_data, request=request
        )
        return Response({**s.AlertSettingsSerializer(alerts).data, "webhook_secret": secret})
