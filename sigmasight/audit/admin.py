from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from sigmasight.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: events are written by `audit_record` alone and never changed or deleted here."""

    list_display = (
        "created_at",
        "action",
        "actor_email",
        "object_type",
        "object_id",
        "object_repr",
        "portfolio_id",
        "ip",
        "request_id",
    )
    list_filter = ("action", ("actor", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_email", "object_repr", "=object_id", "=request_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
