"""django-import-export resources: columns only; shocks go through `library.validate_shocks`.

Scenario import and export cover the shared library only (owner null): a row is matched by name
among library scenarios, so a user's scenario of the same name is never touched, and what staff
import counts as edited (the loader then leaves it alone unless forced)."""

from __future__ import annotations

import json

from django.db.models import QuerySet
from import_export import fields, widgets

from sigmasight.exceptions import ValidationFailed
from sigmasight.resources import SafeModelResource
from stress.library import validate_shocks
from stress.models import StressScenario, StressTestResult


class ShocksWidget(widgets.Widget):
    """Shocks as JSON text, `{"Market": -0.1}`; keys resolved to factor names on import."""

    def clean(self, value: object, row: dict | None = None, **kwargs: object) -> dict[str, float]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f'Shocks must be JSON such as {{"Market": -0.1}}: {exc}') from exc
        try:
            return validate_shocks(value)
        except ValidationFailed as exc:
            raise ValueError(" ".join(exc.fields["shocks"])) from exc

    def render(self, value: object, obj: object = None, **kwargs: object) -> str:
        return json.dumps(value) if value else ""


class StressScenarioResource(SafeModelResource):
    shocks = fields.Field(attribute="shocks", column_name="shocks", widget=ShocksWidget())

    class Meta:
        model = StressScenario
        import_id_fields = ("name",)
        fields = ("name", "category", "description", "shocks", "is_active", "is_historical")
        export_order = fields
        use_transactions = True
        clean_model_instances = True
        skip_unchanged = True

    def get_queryset(self) -> QuerySet[StressScenario]:
        return StressScenario.objects.filter(owner__isnull=True)

    def filter_export(self, queryset: QuerySet, **kwargs: object) -> QuerySet:
        return queryset.filter(owner__isnull=True)

    def before_save_instance(self, instance: StressScenario, row: object, **kwargs: object) -> None:
        instance.owner = None
        instance.edited = True


class StressTestResultResource(SafeModelResource):
    """Export only: results are written by the stress job."""

    scenario_name = fields.Field(
        attribute="scenario__name", column_name="scenario_name", readonly=True
    )
    breakdown = fields.Field(
        attribute="breakdown", column_name="breakdown", widget=widgets.JSONWidget(), readonly=True
    )

    class Meta:
        model = StressTestResult
        fields = (
            "portfolio",
            "scenario",
            "scenario_name",
            "date",
            "direct_pnl",
            "correlated_pnl",
            "total_pnl",
            "pnl_pct",
            "breakdown",
        )
        export_order = fields

    def filter_export(self, queryset: QuerySet, **kwargs: object) -> QuerySet:
        return queryset.select_related("scenario")
