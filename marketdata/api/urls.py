from __future__ import annotations

from django.urls import path

from marketdata.api import views

app_name = "market-data"

urlpatterns = [
    path("prices/current/", views.CurrentPricesView.as_view(), name="current-prices"),
    path("prices/<str:symbol>/", views.PriceHistoryView.as_view(), name="price-history"),
    path("sectors/", views.SectorsView.as_view(), name="sectors"),
    path("options/<str:underlying>/", views.OptionChainView.as_view(), name="option-chain"),
    path("refresh/", views.RefreshView.as_view(), name="refresh"),
]
