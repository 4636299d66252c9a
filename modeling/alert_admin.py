"""Staff views of the alert digests and their deliveries (the delivery log): read only, since
the `alerts` job makes them and the delivery task records each attempt; failed deliveries can
be queued again. Registered by modeling.admin importing this module."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from modeling.limit_models import AlertDelivery, AlertDigest
from modeling.limits.delivery import deliveries_retry


class _LogAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("channel", "target", "status", "attempts", "response_status", "error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AlertDigest)
class AlertDigestAdmin(_LogAdmin):
    list_display = ("id", "user", "session", "event_count", "created_at")
    list_select_related = ("user",)
    search_fields = ("user__email",)
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AlertDigest]:
        return super().get_queryset(request).annotate(event_count=Count("events"))

    @admin.display(description="events", ordering="event_count")
    def event_count(self, obj: AlertDigest) -> int:
        return obj.event_count  # type: ignore[attr-defined]  # the annotation above


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(_LogAdmin):
    list_display = (
        "id",
        "channel",
        "target",
        "status",
        "attempts",
        "response_status",
        "error",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "channel")
    list_select_related = ("digest",)
    search_fields = ("target", "error", "digest__user__email")
    date_hierarchy = "created_at"
    actions = ["retry"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # A write, unlike the rest of this log: staff who may change deliveries (superusers).
        return request.user.has_perm("modeling.change_alertdelivery")

    @admin.action(description="Retry the selected failed deliveries", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[AlertDelivery]) -> None:
        count = deliveries_retry(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} failed deliveries queued again.", messages.SUCCESS)
