"""The workbench's pages: `/` and below, beside the API (modeling/web)."""

from __future__ import annotations

from django.urls import path

from modeling.web import auth, book, desk, overview, risk, whatif

app_name = "web"

BOOK = "portfolios/<int:portfolio_id>/"

urlpatterns = [
    path("", auth.home, name="home"),
    path("signin/", auth.signin, name="signin"),
    path("signout/", auth.signout, name="signout"),
    path("switch/", overview.switch, name="switch"),
    path(BOOK, overview.overview, name="overview"),
    path(f"{BOOK}positions/", book.positions, name="positions"),
    path(f"{BOOK}positions/upload/", book.upload, name="upload"),
    path(f"{BOOK}positions/export/", book.export, name="export"),
    path(f"{BOOK}risk/", risk.risk, name="risk"),
    path(f"{BOOK}stress/", risk.stress, name="stress"),
    path(f"{BOOK}stress/custom/", risk.stress_custom, name="stress_custom"),
    path(f"{BOOK}whatif/", whatif.whatif, name="whatif"),
    path(f"{BOOK}whatif/open/", whatif.session_open, name="whatif_open"),
    path(f"{BOOK}whatif/<int:session_id>/", whatif.whatif, name="whatif_session"),
    path(f"{BOOK}whatif/<int:session_id>/trades/", whatif.trade_add, name="trade_add"),
    path(
        f"{BOOK}whatif/<int:session_id>/trades/<int:trade_id>/remove/",
        whatif.trade_remove,
        name="trade_remove",
    ),
    path(f"{BOOK}whatif/<int:session_id>/hedge/", whatif.suggestion_apply, name="hedge_apply"),
    path(f"{BOOK}whatif/<int:session_id>/export/", whatif.trades_export, name="trades_export"),
    path(f"{BOOK}reports/", desk.reports, name="reports"),
    path(f"{BOOK}reports/generate/", desk.report_generate, name="report_generate"),
    path("reports/<int:report_id>/download/", desk.report_download, name="report_download"),
    path("alerts/", desk.alerts, name="alerts"),
    path("alerts/breaches/<int:breach_id>/acknowledge/", desk.acknowledge, name="acknowledge"),
    path("operations/", desk.operations, name="operations"),
    path("operations/rerun/", desk.rerun, name="rerun"),
]
