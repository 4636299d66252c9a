from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export.admin import ExportMixin, ImportExportModelAdmin

from marketdata.models import (
    BackfillProgress,
    CorporateAction,
    DailyPrice,
    DividendYield,
    Security,
)
from marketdata.resources import (
    CorporateActionResource,
    DailyPriceResource,
    DividendYieldResource,
    SecurityResource,
)
from marketdata.services import PriceImport, prices_import_csv
from sigmasight.api.caching import AdminInvalidatesCache
from sigmasight.audit.services import audit_record
from sigmasight.exceptions import ValidationFailed

GAP_MESSAGES = 10  # symbols whose missing sessions an upload lists, one message each


class PriceUploadForm(forms.Form):
    file = forms.FileField(help_text="symbol,date,open,high,low,close,volume[,adjusted_close]")
    dry_run = forms.BooleanField(required=False, label="Validate only, write nothing")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Provider-owned rows: staff look and export; providers and the import service write."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Security)
class SecurityAdmin(AdminInvalidatesCache, ImportExportModelAdmin):
    resource_classes = [SecurityResource]
    list_display = (
        "symbol",
        "name",
        "asset_type",
        "sector",
        "industry",
        "underlying",
        "expiration",
        "is_active",
    )
    list_filter = ("asset_type", "sector", "is_active")
    search_fields = ("symbol", "name", "underlying")
    ordering = ("symbol",)


@admin.register(DailyPrice)
class DailyPriceAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [DailyPriceResource]
    list_display = (
        "security",
        "date",
        "close",
        "volume",
        "implied_volatility",
        "source",
        "fetched_at",
    )
    list_filter = ("source", "security__asset_type")
    list_select_related = ("security",)
    search_fields = ("security__symbol",)
    date_hierarchy = "date"
    ordering = ("-date", "security__symbol")
    show_full_result_count = False
    # Outermost layer of the change list: upload and export stay visible on a read-only admin.
    import_export_change_list_template = "admin/marketdata/dailyprice/change_list.html"

    def get_urls(self) -> list:
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name="marketdata_dailyprice_upload",
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Price files go through the same validating service as `manage.py import_prices`."""
        if not request.user.has_perm("marketdata.add_dailyprice"):
            raise PermissionDenied
        form = PriceUploadForm(request.POST or None, request.FILES or None)
        problems: list[dict] = []
        if request.method == "POST" and form.is_valid():
            try:
                result = prices_import_csv(
                    stream=form.cleaned_data["file"], dry_run=form.cleaned_data["dry_run"]
                )
            except ValidationFailed as exc:
                problems = exc.fields["rows"]
                self.message_user(request, exc.message, messages.ERROR)
            else:
                if not form.cleaned_data["dry_run"]:
                    file = form.cleaned_data["file"].name
                    audit_record("prices.import", request=request, rows=result.rows, file=file)
                verb = "would import" if form.cleaned_data["dry_run"] else "imported"
                self.message_user(request, f"{verb} {result.rows} price rows", messages.SUCCESS)
                self._warn_gaps(request, result)
                return HttpResponseRedirect(reverse("admin:marketdata_dailyprice_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload daily prices",
            "form": form,
            "problems": problems,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/marketdata/dailyprice/upload.html", context)

    def _warn_gaps(self, request: HttpRequest, result: PriceImport) -> None:
        """The sessions the file lacks stay missing (unless cached): say so, briefly."""
        shown = list(result.gaps.items())[:GAP_MESSAGES]
        for symbol, gaps in shown:
            self.message_user(request, gaps.describe(symbol), messages.WARNING)
        if len(result.gaps) > len(shown):
            more = len(result.gaps) - len(shown)
            self.message_user(
                request, f"and {more} more symbol(s) with missing sessions", messages.WARNING
            )


@admin.register(BackfillProgress)
class BackfillProgressAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "start", "end", "status", "source", "updated_at")
    list_filter = ("status",)
    search_fields = ("symbol",)


@admin.register(DividendYield)
class DividendYieldAdmin(ImportExportModelAdmin):
    """Dividend yields (continuous, annual, decimal) by underlying and date: providers and
    `import_dividend_yields` write them; staff look, correct, import and export."""

    resource_classes = [DividendYieldResource]
    list_display = ("security", "date", "dividend_yield", "source", "fetched_at")
    list_filter = ("source",)
    list_select_related = ("security",)
    search_fields = ("security__symbol",)
    date_hierarchy = "date"
    ordering = ("-date", "security__symbol")
    raw_id_fields = ("security",)


@admin.register(CorporateAction)
class CorporateActionAdmin(ImportExportModelAdmin):
    """Splits and cash dividends: providers, `import_corporate_actions` and staff write them;
    the daily batch applies each to the books once, on its ex-date."""

    resource_classes = [CorporateActionResource]
    list_display = (
        "security",
        "kind",
        "ex_date",
        "split_to",
        "split_from",
        "cash_amount",
        "pay_date",
        "source",
    )
    list_filter = ("kind", "source")
    list_select_related = ("security",)
    search_fields = ("security__symbol",)
    date_hierarchy = "ex_date"
    ordering = ("-ex_date", "security__symbol")
    raw_id_fields = ("security",)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {**super().get_changeform_initial_data(request), "source": "admin"}
