from __future__ import annotations

from django.urls import path

from modeling.api import reports

urlpatterns = [
    path("", reports.ReportListView.as_view(), name="report-list"),
    path("generate/", reports.ReportGenerateView.as_view(), name="report-generate"),
    path("<int:pk>/status/", reports.ReportStatusView.as_view(), name="report-status"),
    path("<int:pk>/download/", reports.ReportDownloadView.as_view(), name="report-download"),
]
