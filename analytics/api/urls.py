from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from analytics.api import attribution_views as av
from analytics.api import batch_views as bv
from analytics.api import contribution_views as cv
from analytics.api import liquidity_views as lv
from analytics.api import risk_views as rv
from analytics.api import snapshot_views as snap
from analytics.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "portfolio/", views.DefaultPortfolioSummaryView.as_view(), name="default-portfolio-summary"
    ),
    path(
        "portfolios/<int:pk>/summary/",
        views.PortfolioSummaryView.as_view(),
        name="portfolio-summary",
    ),
    path("risk/greeks/", views.RiskGreeksView.as_view(), name="risk-greeks"),
    path(
        "risk/greeks/calculate/", views.GreeksCalculateView.as_view(), name="risk-greeks-calculate"
    ),
    path("risk/factors/", rv.RiskFactorsView.as_view(), name="risk-factors"),
    path("risk/attribution/", av.RiskAttributionView.as_view(), name="risk-attribution"),
    path("risk/liquidity/", lv.LiquidityView.as_view(), name="risk-liquidity"),
    path("risk/contributions/", cv.RiskContributionsView.as_view(), name="risk-contributions"),
    path("risk/concentration/", lv.ConcentrationView.as_view(), name="risk-concentration"),
    path("risk/metrics/", rv.RiskMetricsView.as_view(), name="risk-metrics"),
    path("risk/scenarios/market/", rv.MarketScenariosView.as_view(), name="scenarios-market"),
    path("risk/scenarios/rates/", rv.RateScenariosView.as_view(), name="scenarios-rates"),
    path(
        "risk/scenarios/calculate/", rv.ScenarioCalculateView.as_view(), name="scenarios-calculate"
    ),
    path("risk/scenarios/accuracy/", rv.ScenarioAccuracyView.as_view(), name="scenarios-accuracy"),
    path("factors/definitions/", rv.FactorDefinitionsView.as_view(), name="factor-definitions"),
    path("factors/exposures/", rv.FactorExposuresView.as_view(), name="factor-exposures"),
    path("factors/correlation/", rv.FactorCorrelationView.as_view(), name="factor-correlation"),
    path(
        "factors/diagnostics/<int:position_id>/",
        rv.FactorDiagnosticsView.as_view(),
        name="factor-diagnostics",
    ),
    path("admin/batch/<str:trigger>/", bv.TriggerView.as_view(), name="batch-trigger"),
    path(
        "portfolios/<int:pk>/exposures/", snap.ExposuresView.as_view(), name="portfolio-exposures"
    ),
    path(
        "portfolios/<int:pk>/performance/",
        snap.PerformanceView.as_view(),
        name="portfolio-performance",
    ),
]

jobs = SimpleRouter()
jobs.register("admin/batch/jobs", bv.BatchJobViewSet, basename="batch-job")
urlpatterns = [*jobs.urls, *urlpatterns]
