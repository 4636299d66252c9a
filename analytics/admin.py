from __future__ import annotations

import numpy as np
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.resources import modelresource_factory

from analytics.batch import trigger_queue
from analytics.contribution_models import COLUMNS
from analytics.jobs import JOBS, TRIGGERS
from analytics.models import (
    BatchJob,
    BatchJobChunk,
    FactorDefinition,
    MarketRiskScenario,
    PortfolioAttribution,
    PortfolioFactorExposure,
    PortfolioRiskContribution,
    PositionAttribution,
    PositionContributionSet,
    PositionFactorExposure,
    PositionGreeks,
    PositionInterestRateBeta,
    RiskMetricSnapshot,
)
from analytics.resources import FactorDefinitionResource
from analytics.tasks import run_job
from portfolios.models import Position
from sigmasight.api.caching import AdminInvalidatesCache
from sigmasight.audit.services import audit_record
from sigmasight.outbox.services import outbox_send
from sigmasight.resources import SafeModelResource


@admin.register(FactorDefinition)
class FactorDefinitionAdmin(AdminInvalidatesCache, ImportExportModelAdmin):
    resource_classes = [FactorDefinitionResource]
    list_display = ("name", "etf_proxy", "factor_type", "display_order", "is_active")
    list_filter = ("factor_type", "is_active")
    list_editable = ("display_order", "is_active")
    search_fields = ("name", "etf_proxy")
    ordering = ("display_order", "id")


class ComputedAdmin(ExportMixin, admin.ModelAdmin):
    """Results written by the batch: staff read and export them; jobs write them."""

    date_hierarchy = "date"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_resource_classes(self, request: HttpRequest) -> list:
        # Without a resources.py class the library builds a plain one: build it on ours, so
        # these downloads follow the export rule too.
        return self.resource_classes or [
            modelresource_factory(self.model, resource_class=SafeModelResource)
        ]


@admin.register(PositionGreeks)
class PositionGreeksAdmin(ComputedAdmin):
    list_display = (
        "position",
        "date",
        "delta",
        "gamma",
        "theta",
        "vega",
        "volatility",
        "volatility_source",
    )
    list_filter = ("volatility_source",)
    list_select_related = ("position",)
    search_fields = ("position__symbol",)


@admin.register(PositionFactorExposure)
class PositionFactorExposureAdmin(ComputedAdmin):
    list_display = ("position", "factor", "date", "beta", "dollar_exposure", "r_squared", "capped")
    list_filter = ("factor", "capped")
    list_select_related = ("position", "factor")


@admin.register(PortfolioFactorExposure)
class PortfolioFactorExposureAdmin(ComputedAdmin):
    list_display = ("portfolio", "factor", "date", "beta", "dollar_exposure", "normalized_by")
    list_filter = ("factor",)
    list_select_related = ("portfolio", "factor")


@admin.register(PositionInterestRateBeta)
class PositionInterestRateBetaAdmin(ComputedAdmin):
    list_display = ("position", "date", "ir_beta", "r_squared", "observations")
    list_select_related = ("position",)


@admin.register(MarketRiskScenario)
class MarketRiskScenarioAdmin(ComputedAdmin):
    list_display = (
        "portfolio",
        "date",
        "kind",
        "move",
        "predicted_pnl",
        "delta_only_pnl",
        "predicted_return",
    )
    list_filter = ("kind",)
    list_select_related = ("portfolio",)


@admin.register(RiskMetricSnapshot)
class RiskMetricSnapshotAdmin(ComputedAdmin):
    list_display = (
        "portfolio",
        "date",
        "confidence",
        "var_historical",
        "var_parametric",
        "var_monte_carlo",
        "volatility",
    )
    list_select_related = ("portfolio",)


@admin.register(PortfolioAttribution)
class PortfolioAttributionAdmin(ComputedAdmin):
    list_display = ("portfolio", "date", "total_pnl", "factor_pnl", "specific_pnl", "basis")
    list_filter = ("basis",)
    list_select_related = ("portfolio",)


@admin.register(PositionAttribution)
class PositionAttributionAdmin(ComputedAdmin):
    list_display = (
        "position",
        "date",
        "total_pnl",
        "factor_pnl",
        "specific_pnl",
        "delta_pnl",
        "residual_pnl",
    )
    list_select_related = ("position",)
    search_fields = ("position__symbol",)


@admin.register(PortfolioRiskContribution)
class PortfolioRiskContributionAdmin(ComputedAdmin):
    list_display = (
        "portfolio",
        "date",
        "confidence",
        "horizon_days",
        "historical_var",
        "parametric_var",
        "monte_carlo_var",
        "historical_es",
    )
    list_filter = ("confidence",)
    list_select_related = ("portfolio",)


@admin.register(PositionContributionSet)
class PositionContributionSetAdmin(ComputedAdmin):
    """A book's position components on one session (vectors): the changelist names the largest
    contributor to the historical VaR, the page lists every position's components."""

    list_display = ("portfolio", "date", "confidence", "horizon_days", "held", "largest")
    list_filter = ("confidence",)
    list_select_related = ("portfolio",)
    search_fields = ("portfolio__name",)
    fields = ("portfolio", "date", "confidence", "horizon_days", "components")
    readonly_fields = fields

    def has_export_permission(self, request: HttpRequest) -> bool:
        return False  # packed vectors: the page's table or the API's by=position read them

    @admin.display(description="Positions")
    def held(self, obj: PositionContributionSet) -> int:
        return len(obj.ids())

    @admin.display(description="Largest historical VaR")
    def largest(self, obj: PositionContributionSet) -> str:
        values = obj.column("historical_var")
        if values is None or not len(values) or np.isnan(values).all():
            return "-"
        i = int(np.nanargmax(values))
        pk = obj.ids()[i]
        symbol = Position.objects.filter(pk=pk).values_list("symbol", flat=True).first()
        return f"{symbol or f'#{pk} (deleted)'} {values[i]:,.2f}"

    @admin.display(description="Components by position")
    def components(self, obj: PositionContributionSet) -> str:
        symbols = dict(obj.portfolio.positions.values_list("id", "symbol"))
        heads = ("Position", "Exposure", *(c.replace("_", " ").capitalize() for c in COLUMNS))
        cell = "<td>{}</td>"
        rows = format_html_join(
            "",
            "<tr>" + cell * len(heads) + "</tr>",
            (
                (
                    symbols.get(row.position_id, f"#{row.position_id} (deleted)"),
                    *(f"{v:,.2f}" if v is not None else "-" for v in row[1:]),
                )
                for row in obj.rows()
            ),
        )
        head = format_html_join("", "<th>{}</th>", ((h,) for h in heads))
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows)


class BatchJobChunkInline(admin.TabularInline):
    """A job's finished chunks from their records: which worker computed each, how long it took,
    its retries and failed portfolios (carried: finished by the killed run this one resumed)."""

    model = BatchJobChunk
    extra = 0
    can_delete = False
    ordering = ("first_portfolio_id",)
    fields = readonly_fields = (
        "first_portfolio_id",
        "portfolios",
        "worker",
        "seconds",
        "retries",
        "failed",
        "carried",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="portfolios")
    def portfolios(self, chunk: BatchJobChunk) -> int:
        return len(chunk.portfolio_ids)

    @admin.display(description="worker")
    def worker(self, chunk: BatchJobChunk) -> str:
        return chunk.result.get("worker") or "in process (the job's owner)"

    @admin.display(description="seconds")
    def seconds(self, chunk: BatchJobChunk) -> float | str:
        return chunk.result.get("seconds", "-")  # not timed: recorded before chunks were

    @admin.display(description="retries")
    def retries(self, chunk: BatchJobChunk) -> int:
        return int(chunk.result.get("retries", 0))

    @admin.display(description="failed portfolios")
    def failed(self, chunk: BatchJobChunk) -> int:
        return len(chunk.result.get("failed", {}))


@admin.register(BatchJob)
class BatchJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "run_date",
        "status",
        "started_at",
        "heartbeat_at",
        "duration_s",
        "triggered_by",
        "owner",
    )
    list_filter = ("name", "status")
    date_hierarchy = "run_date"
    ordering = ("-id",)
    actions = ["rerun"]
    readonly_fields = [f.name for f in BatchJob._meta.fields]
    inlines = [BatchJobChunkInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Re-run the selected jobs for their session")
    def rerun(self, request: HttpRequest, queryset) -> None:
        """A job is queued again as itself (its chunks on the workers); a trigger as a new
        trigger of the same kind. A job still queued or running is refused by its claim."""
        queued = 0
        for job in queryset:
            trigger = job.name.removeprefix("trigger:")
            try:
                if job.name in JOBS:
                    day = job.run_date.isoformat()
                    outbox_send(run_job.s(job.name, day, None, request.user.pk))
                elif trigger in TRIGGERS:
                    trigger_queue(
                        trigger=trigger,
                        run_date=job.run_date,
                        portfolio_ids=None,
                        user=request.user,
                    )
                else:
                    continue
            except Exception as exc:  # noqa: BLE001 - shown to the admin user
                self.message_user(request, f"{job}: {exc}", level="error")
                continue
            audit_record("batch.rerun", request=request, obj=job, job=job.name)
            queued += 1
        self.message_user(request, f"Queued {queued} job(s).")
