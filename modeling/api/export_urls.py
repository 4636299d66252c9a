from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from modeling.api import views

router = SimpleRouter()
router.register("history", views.ExportHistoryViewSet, basename="export-history")

urlpatterns = [
    path("trades/", views.TradeExportView.as_view(), name="export-trades"),
    *router.urls,
]
