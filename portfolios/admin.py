from __future__ import annotations

from django.contrib import admin

from portfolios.models import Portfolio


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "base_currency", "cash", "created_at")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__email")
    list_filter = ("base_currency",)
    autocomplete_fields = ("owner",)
    ordering = ("id",)
