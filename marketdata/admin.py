from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from import_export.admin import ExportMixin, ImportExportModelAdmin

from marketdata.models import BackfillProgress, DailyPrice, Security
from marketdata.resources import DailyPriceResource, SecurityResource


class ReadOnlyAdmin(admin.ModelAdmin):
    """Provider-owned rows: staff look and export; providers and the import service write."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Security)
class SecurityAdmin(ImportExportModelAdmin):
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


@admin.register(BackfillProgress)
class BackfillProgressAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "start", "end", "status", "source", "updated_at")
    list_filter = ("status",)
    search_fields = ("symbol",)
