"""Serializers of risk limits, breaches and alert settings (API.md "Limits and alerts")."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from modeling.limits.services import limit_problems
from modeling.limits.spec import (
    BOUNDS,
    CONFIDENCES,
    MAX_HORIZON_DAYS,
    MEASURES,
    METHODS,
    normalized_params,
)
from modeling.models import AlertSettings, Breach, Limit
from modeling.resources import SPEC_FIELDS
from portfolios.models import Portfolio

MEASURE_HELP = "; ".join(
    f"{name}: {spec.label} ({'|'.join(spec.units)})" for name, spec in MEASURES.items()
)


class LimitParamsSerializer(serializers.Serializer):
    """What `params` may hold, by measure (documentation: the spec validates the object)."""

    method = serializers.ChoiceField(
        choices=METHODS, required=False, help_text="var, es (default historical)"
    )
    confidence = serializers.ChoiceField(
        choices=CONFIDENCES, required=False, help_text="var, es (default 0.95)"
    )
    horizon_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_HORIZON_DAYS,
        help_text="var, es (default 1)",
    )
    scenario = serializers.CharField(
        required=False, help_text="stress_loss: the name of an active stress scenario"
    )
    name = serializers.CharField(
        required=False, help_text="name_concentration: one underlying (absent: the largest)"
    )
    sector = serializers.CharField(
        required=False, help_text="sector_concentration: one sector (absent: the largest)"
    )


@extend_schema_field(LimitParamsSerializer)
class ParamsField(serializers.DictField):
    """A JSON object, checked whole against the measure by the spec (unknown keys refused)."""


class LimitSerializer(serializers.ModelSerializer):
    portfolio = serializers.PrimaryKeyRelatedField(
        queryset=Portfolio.objects.none(),
        allow_null=True,
        required=False,
        help_text="one of your portfolios; null: every portfolio of yours",
    )
    measure = serializers.ChoiceField(
        choices=list(MEASURES),
        help_text=MEASURE_HELP,
        error_messages={"invalid_choice": f"Unknown measure. Use one of {', '.join(MEASURES)}."},
    )
    measure_label = serializers.SerializerMethodField(help_text="the measure's name")
    params = ParamsField(required=False, help_text="the measure's parameters (see LimitParams)")
    bound = serializers.ChoiceField(
        choices=BOUNDS,
        required=False,
        help_text="max: above a level breaches; min: below; abs_max: |value| above (default max)",
    )
    unit = serializers.ChoiceField(
        choices=Limit.Unit.choices,
        help_text="money, share_of_equity (a decimal: 0.25 = 25% of equity), number or days",
    )
    warning = serializers.FloatField(
        allow_null=True, required=False, help_text="the first level, in `unit` (null: none)"
    )
    hard = serializers.FloatField(help_text="the limit, in `unit`")

    class Meta:
        model = Limit
        fields = [
            "id",
            "name",
            "portfolio",
            "measure",
            "measure_label",
            "params",
            "bound",
            "unit",
            "warning",
            "hard",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "measure_label", "created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:  # the schema's has no user
            # Another user's portfolio is "does not exist", exactly like an unknown id.
            portfolio = cast(serializers.PrimaryKeyRelatedField, self.fields["portfolio"])
            # django-stubs types Manager as a descriptor, which mypy applies to this assignment.
            portfolio.queryset = Portfolio.objects.filter(owner=request.user)  # type: ignore[arg-type]

    def get_measure_label(self, limit: Limit) -> str:
        spec = MEASURES.get(limit.measure)
        return spec.label if spec is not None else limit.measure

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The whole limit as it will be stored (a PATCH over the stored one) obeys the spec;
        `params` is stored with its defaults filled in."""
        defaults: dict[str, Any] = {"params": {}, "bound": "max", "warning": None}
        data: dict[str, Any] = {
            name: attrs[name]
            if name in attrs
            else getattr(self.instance, name)
            if self.instance is not None
            else defaults.get(name)
            for name in SPEC_FIELDS
        }
        owner = self.context["request"].user
        errors = limit_problems(data, owner_id=owner.pk, portfolio=None)
        if errors:
            raise serializers.ValidationError(errors)
        if "measure" in attrs or "params" in attrs:
            attrs["params"] = normalized_params(data["measure"], data["params"])
        return attrs


class BreachSerializer(serializers.ModelSerializer):
    limit_name = serializers.SerializerMethodField(help_text="the limit's name, or what it says")
    measure = serializers.CharField(source="limit.measure", read_only=True)
    unit = serializers.CharField(source="limit.unit", read_only=True)
    bound = serializers.CharField(source="limit.bound", read_only=True)

    class Meta:
        model = Breach
        fields = [
            "id",
            "limit",
            "limit_name",
            "measure",
            "unit",
            "bound",
            "portfolio",
            "session",
            "value",
            "bound_value",
            "level",
            "status",
            "first_seen",
            "last_seen",
            "resolved_on",
            "acknowledged_at",
        ]
        read_only_fields = fields

    def get_limit_name(self, breach: Breach) -> str:
        return str(breach.limit)


class AlertSettingsSerializer(serializers.ModelSerializer):
    webhook_url = serializers.CharField(read_only=True, help_text="blank: no webhook")
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="null: never saved (the defaults)"
    )
    webhook_secret_set = serializers.SerializerMethodField(
        help_text="whether webhook deliveries are signed (the secret itself is never shown again)"
    )

    class Meta:
        model = AlertSettings
        fields = ["email", "webhook_url", "webhook_secret_set", "updated_at"]
        read_only_fields = fields

    def get_webhook_secret_set(self, alerts: AlertSettings) -> bool:
        return bool(alerts.webhook_secret)


class AlertSettingsSavedSerializer(AlertSettingsSerializer):
    webhook_secret = serializers.CharField(
        allow_null=True,
        read_only=True,
        help_text="the new signing secret, shown in this response only (null when unchanged): "
        "HMAC-SHA256 of `{t}.{body}` in the X-SigmaSight-Signature header",
    )

    class Meta(AlertSettingsSerializer.Meta):
        fields = [*AlertSettingsSerializer.Meta.fields, "webhook_secret"]
        read_only_fields = fields


class AlertSettingsUpdateSerializer(serializers.Serializer):
    """Fields left out keep their value. The secret is made by the server: when a webhook URL is
    first set, and on `rotate_secret`; clearing the URL clears it."""

    email = serializers.BooleanField(required=False, help_text="a digest by email")
    webhook_url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="a public https URL the digests are POSTed to, signed; blank: none",
    )
    rotate_secret = serializers.BooleanField(
        required=False, default=False, help_text="make a new signing secret (shown once)"
    )
