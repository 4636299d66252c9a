from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from modeling.api import limits

router = SimpleRouter()
router.register("limits", limits.LimitViewSet, basename="limit")
router.register("breaches", limits.BreachViewSet, basename="breach")

urlpatterns = [
    path("alerts/settings/", limits.AlertSettingsView.as_view(), name="alert-settings"),
    *router.urls,
]
