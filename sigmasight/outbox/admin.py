from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from sigmasight.outbox.models import OutboxTask


class PendingFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("pending", "pending"), ("sent", "sent")]

    def queryset(self, request: HttpRequest, queryset):
        if self.value() in {"pending", "sent"}:
            return queryset.filter(sent_at__isnull=self.value() == "pending")
        return queryset


@admin.register(OutboxTask)
class OutboxTaskAdmin(admin.ModelAdmin):
    """Read-only: rows are written by `outbox_send` and sent by `outbox_flush`."""

    list_display = ("created_at", "task", "task_id", "attempts", "sent_at", "last_error")
    list_filter = (PendingFilter, "task")
    search_fields = ("=task_id", "task")
    ordering = ("-created_at", "-id")
    actions = ["flush"]
    readonly_fields = [field.name for field in OutboxTask._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Send every pending task now")
    def flush(self, request: HttpRequest, queryset) -> None:
        from sigmasight.outbox.services import outbox_flush

        result = outbox_flush()
        self.message_user(request, f"Sent {result.sent}; {result.pending} still pending.")
