from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from stress.api import views

router = SimpleRouter()
router.register("stress/scenarios", views.StressScenarioViewSet, basename="stress-scenario")

urlpatterns = [
    path("stress/test/<int:portfolio_id>/", views.StressTestView.as_view(), name="stress-test"),
    path(
        "stress/results/<int:portfolio_id>/",
        views.StressResultsView.as_view(),
        name="stress-results",
    ),
    path(
        "stress/correlations/", views.StressCorrelationsView.as_view(), name="stress-correlations"
    ),
    path(
        "stress/historical/<str:crisis>/", views.HistoricalView.as_view(), name="stress-historical"
    ),
    *router.urls,
]
