from __future__ import annotations

from django.urls import path

from analytics.api import views

urlpatterns = [
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
]
