from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from import_export.admin import ExportMixin, ImportExportModelAdmin

from sigmasight.api.caching import AdminInvalidatesCache
from sigmasight.exceptions import ValidationFailed
from stress.library import validate_shocks
from stress.models import FactorCorrelation, StressScenario, StressTestResult
from stress.resources import StressScenarioResource, StressTestResultResource


class StressScenarioForm(forms.ModelForm):
    class Meta:
        model = StressScenario
        fields = (
            "name",
            "category",
            "description",
            "shocks",
            "owner",
            "is_active",
            "is_historical",
        )
        help_texts = {
            "shocks": (
                'JSON {"factor name or proxy symbol": decimal move}, e.g. {"Market": -0.1, '
                '"Rates": 0.01}: price factors move by returns, Rates by a yield change '
                "(0.01 = +100bp)."
            )
        }

    def clean_shocks(self) -> dict[str, float]:
        try:
            return validate_shocks(self.cleaned_data["shocks"])
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.fields["shocks"]) from exc


@admin.register(StressScenario)
class StressScenarioAdmin(AdminInvalidatesCache, ImportExportModelAdmin):
    """Library scenarios (no owner) and users' own. Import and export cover the library only."""

    form = StressScenarioForm
    resource_classes = [StressScenarioResource]
    list_display = ("name", "category", "owner", "is_active", "is_historical", "edited")
    list_filter = (
        "category",
        "is_active",
        "is_historical",
        "edited",
        ("owner", admin.EmptyFieldListFilter),
    )
    list_select_related = ("owner",)
    search_fields = ("name", "description", "owner__email")
    raw_id_fields = ("owner",)
    readonly_fields = ("edited", "created_at", "updated_at")
    ordering = ("category", "name", "id")

    def save_model(
        self, request: HttpRequest, obj: StressScenario, form: forms.ModelForm, change: bool
    ) -> None:
        # Staff changes to the library survive `load_stress_scenarios` unless it is forced.
        if obj.owner_id is None:
            obj.edited = True
        super().save_model(request, obj, form, change)


class ComputedAdmin(admin.ModelAdmin):
    """Rows the stress job writes: staff read them. Deleting stays allowed so that a scenario
    with results can still be deleted here (the admin checks the cascade's permissions)."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StressTestResult)
class StressTestResultAdmin(ExportMixin, ComputedAdmin):
    resource_classes = [StressTestResultResource]
    list_display = (
        "portfolio",
        "scenario",
        "date",
        "direct_pnl",
        "correlated_pnl",
        "total_pnl",
        "pnl_pct",
    )
    list_filter = ("scenario__category", "scenario__is_historical")
    list_select_related = ("portfolio", "scenario")
    search_fields = ("portfolio__name", "scenario__name")
    date_hierarchy = "date"
    ordering = ("-date", "portfolio_id", "scenario_id")


@admin.register(FactorCorrelation)
class FactorCorrelationAdmin(ComputedAdmin):
    list_display = ("date", "lookback", "lam", "factor_count")
    date_hierarchy = "date"
    ordering = ("-date",)

    @admin.display(description="factors")
    def factor_count(self, obj: FactorCorrelation) -> int:
        return len(obj.factors)
