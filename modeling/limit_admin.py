"""Staff views of risk limits (add, change, delete, import and export, each recorded in the audit
log) and of their breaches (read only: the limits job opens and resolves them). A limit is
checked here exactly as the API checks it (`modeling.limits.services.limit_problems`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ExportForm
from import_export.results import Result, RowResult

from modeling.limits.services import limit_problems
from modeling.limits.spec import MEASURES, normalized_params
from modeling.models import Breach, Limit
from modeling.resources import SPEC_FIELDS, LimitResource
from portfolios.admin import AllOrNothingImportMixin
from sigmasight.audit.services import audit_record


class LimitForm(forms.ModelForm):
    measure = forms.ChoiceField(choices=[(name, spec.label) for name, spec in MEASURES.items()])

    class Meta:
        model = Limit
        fields = (
            "owner",
            "portfolio",
            "name",
            "measure",
            "params",
            "bound",
            "unit",
            "warning",
            "hard",
            "is_active",
        )
        help_texts = {
            "portfolio": "One of the owner's portfolios; empty: every portfolio of theirs.",
            "params": 'JSON, by measure: var and es {"method", "confidence", "horizon_days"}, '
            'stress_loss {"scenario"}, name_concentration {"name"}, sector_concentration '
            '{"sector"}; {} for the others.',
            "warning": "Optional; in the limit's unit, at or inside the hard level.",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # a ModelForm cleans to its cleaned_data
        owner, portfolio = cleaned.get("owner"), cleaned.get("portfolio")
        data: dict[str, Any] = {name: cleaned.get(name) for name in SPEC_FIELDS}
        data["params"] = data["params"] or {}
        problems = limit_problems(
            data, owner_id=owner.pk if owner is not None else None, portfolio=portfolio
        )
        for name, messages in problems.items():
            if name not in self.errors:  # a field Django refused already says why
                self.add_error(name, messages)
        if not problems and "measure" in cleaned:
            cleaned["params"] = normalized_params(cleaned["measure"], data["params"])
        return cleaned


@admin.register(Limit)
class LimitAdmin(AllOrNothingImportMixin, ImportExportModelAdmin):
    form = LimitForm
    resource_classes = [LimitResource]
    # Always every column, so that an export imports back.
    export_form_class = ExportForm
    list_display = (
        "id",
        "__str__",
        "owner",
        "portfolio",
        "measure",
        "bound",
        "unit",
        "warning",
        "hard",
        "is_active",
        "updated_at",
    )
    list_filter = ("measure", "is_active", "bound", "unit")
    list_select_related = ("owner", "portfolio")
    search_fields = ("name", "measure", "owner__email", "portfolio__name")
    raw_id_fields = ("owner", "portfolio")
    readonly_fields = ("created_at", "updated_at")
    ordering = ("id",)

    def save_model(
        self, request: HttpRequest, obj: Limit, form: forms.ModelForm, change: bool
    ) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                "limit.update" if change else "limit.create",
                request=request,
                obj=obj,
                via="admin",
                fields=sorted(form.changed_data),
            )

    def delete_model(self, request: HttpRequest, obj: Limit) -> None:
        with transaction.atomic():
            audit_record("limit.delete", request=request, obj=obj, via="admin")
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for limit in queryset.order_by("id"):
                audit_record("limit.delete", request=request, obj=limit, via="admin")
            super().delete_queryset(request, queryset)

    def process_result(self, result: Result, request: HttpRequest) -> HttpResponse:
        if not (result.has_errors() or result.has_validation_errors()):  # the confirmed import
            audit_record(
                "limit.import",
                request=request,
                via="admin import",
                created=result.totals[RowResult.IMPORT_TYPE_NEW],
                updated=result.totals[RowResult.IMPORT_TYPE_UPDATE],
                limits=sorted(row.object_id for row in result.rows if row.object_id),
            )
        return super().process_result(result, request)


@admin.register(Breach)
class BreachAdmin(admin.ModelAdmin):
    """What the limits job found, read only: staff read and filter, nobody edits."""

    list_display = (
        "id",
        "limit",
        "portfolio",
        "level",
        "status",
        "value",
        "bound_value",
        "first_seen",
        "last_seen",
        "resolved_on",
        "acknowledged_at",
    )
    list_filter = ("status", "level", "limit__measure", "last_seen")
    list_select_related = ("limit", "portfolio")
    search_fields = ("limit__name", "limit__measure", "portfolio__name", "limit__owner__email")
    date_hierarchy = "last_seen"
    ordering = ("-last_seen", "-id")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
