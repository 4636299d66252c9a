from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from sigmasight.api import views as api_views
from sigmasight.api.health import HealthView
from sigmasight.api.schema_view import SchemaView
from sigmasight.metrics.views import metrics_view

api_v1: list[URLPattern | URLResolver] = [
    path("auth/", include("sigmasight.accounts.api.urls")),
    path("auth/", include("portfolios.api.account_urls")),
    path("market-data/", include("marketdata.api.urls")),
    path("", include("portfolios.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("stress.api.urls")),
    path("modeling/", include("modeling.api.urls")),
    path("admin/demo/", include("modeling.api.demo_urls")),
    path("export/", include("modeling.api.export_urls")),
    path("reports/", include("modeling.api.report_urls")),
    path("", include("modeling.api.limit_urls")),
    path("health/", HealthView.as_view(), name="health"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Prometheus scrapes: a bearer token or an allow-listed address, else 404 (metrics/views.py).
    path("metrics", metrics_view, name="metrics"),
    # Anything else under /api/ is a 404 in the envelope, even with DEBUG on.
    re_path(r"^api/", api_views.not_found),
    # The workbench: server-rendered pages for managers (modeling/web).
    path("", include("modeling.web.urls")),
]

handler400 = "sigmasight.api.views.bad_request"
handler403 = "sigmasight.api.views.permission_denied"
handler404 = "sigmasight.api.views.not_found"
handler500 = "sigmasight.api.views.server_error"
