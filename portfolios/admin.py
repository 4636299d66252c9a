"""Admin of the book. Staff look at everything; writes that derive values go through services.

Positions are read-only here: they are created and updated by the import (the API upload's
validator and service, see `portfolios.resources`) and deleted through `position_delete`, so
detected strategies always follow the book. Detected strategies are read-only too (the next
refresh would recompute them); user-defined ones (pairs, custom) are edited here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ExportForm
from import_export.results import Result, RowResult

from portfolios import services
from portfolios.models import AppliedCorporateAction, Portfolio, Position, Strategy, Tag
from portfolios.resources import (
    PortfolioResource,
    PositionResource,
    StrategyResource,
    TagResource,
)
from sigmasight.api.caching import AdminInvalidatesCache
from sigmasight.audit.services import audit_record

FORMATS = [CSV, XLSX]


if TYPE_CHECKING:  # a mixin of ImportMixin admins (no stubs: Any, so its attributes are known)
    from import_export.admin import ImportMixin as _ImportAdmin
else:
    _ImportAdmin = object


class AllOrNothingImportMixin(_ImportAdmin):
    """An import writes every row or none, and says so when the confirmed pass is refused.

    The preview already refused bad files; the confirmed pass can still meet a problem when the
    data changed in between (a portfolio deleted, a tag created). The library would then report
    "Import finished"; here the problems are shown again and nothing is kept.
    """

    formats = FORMATS

    def get_import_data_kwargs(self, **kwargs: object) -> dict:
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def process_result(self, result: Result, request: HttpRequest) -> HttpResponse:
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        messages.error(request, "Nothing was imported: the file has problems.")
        form = self.get_import_form_class(request)(
            self.get_import_formats(), self.get_import_resource_classes(request)
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import",
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "result": result,
            "import_error_display": self.import_error_display,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)


@admin.display(description="owner", ordering="owner__email")
def owner_email(obj: Portfolio | Tag) -> str:
    return obj.owner.email


class _Counted(Protocol):
    position_count: int  # annotated by the admin querysets below


@admin.display(description="positions", ordering="position_count")
def position_count(obj: _Counted) -> int:
    return obj.position_count


class OpenPositionInline(admin.TabularInline):
    model = Position
    verbose_name_plural = "open positions"
    fields = ("symbol", "position_type", "quantity", "entry_price", "entry_date", "market_value")
    readonly_fields = fields
    show_change_link = True
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(closed_at__isnull=True)

    def has_add_permission(self, request: HttpRequest, obj: Portfolio | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Portfolio | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Portfolio | None = None) -> bool:
        return False


@admin.register(Portfolio)
class PortfolioAdmin(AdminInvalidatesCache, AllOrNothingImportMixin, ImportExportModelAdmin):
    resource_classes = [PortfolioResource]
    list_display = ("name", owner_email, "base_currency", "cash", position_count, "created_at")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__email")
    list_filter = ("base_currency",)
    autocomplete_fields = ("owner",)
    ordering = ("id",)
    inlines = [OpenPositionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        open_lots = Count("positions", filter=Q(positions__closed_at__isnull=True))
        return super().get_queryset(request).annotate(position_count=open_lots)


@admin.register(Tag)
class TagAdmin(AdminInvalidatesCache, AllOrNothingImportMixin, ImportExportModelAdmin):
    resource_classes = [TagResource]
    list_display = ("name", owner_email, "color", position_count)
    list_select_related = ("owner",)
    search_fields = ("name", "owner__email")
    autocomplete_fields = ("owner",)
    ordering = ("id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(position_count=Count("positions"))


@admin.register(Position)
class PositionAdmin(AdminInvalidatesCache, AllOrNothingImportMixin, ImportExportModelAdmin):
    resource_classes = [PositionResource]
    import_template_name = "admin/portfolios/position/import.html"
    # Always the whole upload layout, so an export can be imported again.
    export_form_class = ExportForm
    list_display = (
        "symbol",
        "portfolio",
        "owner_email",
        "position_type",
        "quantity",
        "entry_price",
        "entry_date",
        "expiration",
        "market_value",
        "closed_at",
    )
    list_filter = (
        "position_type",
        ("portfolio__owner", admin.RelatedOnlyFieldListFilter),
        "expiration",
    )
    list_select_related = ("portfolio__owner",)
    search_fields = ("symbol", "underlying_symbol", "portfolio__name")
    ordering = ("id",)

    @admin.display(description="owner", ordering="portfolio__owner__email")
    def owner_email(self, obj: Position) -> str:
        return obj.portfolio.owner.email

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perms(["portfolios.add_position", "portfolios.change_position"])

    def process_result(self, result: Result, request: HttpRequest) -> HttpResponse:
        if not (result.has_errors() or result.has_validation_errors()):  # the confirmed import
            portfolios = {row.instance.portfolio_id for row in result.rows if row.instance}
            audit_record(
                "positions.upload",
                request=request,
                via="admin import",
                portfolios=sorted(portfolios),
                created=result.totals[RowResult.IMPORT_TYPE_NEW],
                updated=result.totals[RowResult.IMPORT_TYPE_UPDATE],
            )
        return super().process_result(result, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Position | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Position) -> None:
        services.position_delete(position=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for position in queryset.select_related("portfolio"):
            services.position_delete(position=position)


class StrategyForm(forms.ModelForm):
    """A user-defined strategy: pairs or custom, over positions of its own portfolio."""

    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in Strategy.USER_KINDS])

    class Meta:
        model = Strategy
        fields = ("portfolio", "name", "kind", "positions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.instance.is_detected = False

    def clean(self) -> dict:
        cleaned = super().clean()
        assert cleaned is not None  # a ModelForm cleans to its cleaned_data
        portfolio = cleaned.get("portfolio") or getattr(self.instance, "portfolio", None)
        positions = cleaned.get("positions")
        if portfolio is None or positions is None:
            return cleaned
        foreign = [p for p in positions if p.portfolio_id != portfolio.pk]
        if foreign:
            self.add_error(
                "positions",
                f"{', '.join(p.symbol for p in foreign)} not in the portfolio {portfolio}.",
            )
        problem = services.strategy_legs_problem(
            cleaned.get("kind"), [p.quantity for p in positions]
        )
        if problem:
            self.add_error("positions", problem)
        return cleaned


@admin.register(Strategy)
class StrategyAdmin(AdminInvalidatesCache, ExportMixin, admin.ModelAdmin):
    resource_classes = [StrategyResource]
    formats = FORMATS
    form = StrategyForm
    # Django shows any value a display callable returns; the stubs allow only str and bool.
    list_display = ("name", "kind", "is_detected", "portfolio", position_count)  # type: ignore[assignment]
    list_filter = ("kind", "is_detected")
    list_select_related = ("portfolio",)
    search_fields = ("name", "portfolio__name")
    autocomplete_fields = ("portfolio", "positions")
    ordering = ("id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(position_count=Count("positions"))

    def get_readonly_fields(self, request: HttpRequest, obj: Strategy | None = None) -> tuple:
        # A strategy's positions belong to its portfolio: it cannot move.
        return ("portfolio",) if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Strategy | None = None) -> bool:
        if obj is not None and obj.is_detected:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Strategy | None = None) -> bool:
        if obj is not None and obj.is_detected:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().delete_queryset(request, queryset.filter(is_detected=False))


@admin.register(AppliedCorporateAction)
class AppliedCorporateActionAdmin(admin.ModelAdmin):
    """What each split or dividend did to each position on its ex-date (the batch's record, read
    only: a re-run finds it and changes nothing; the action itself is edited under market data)."""

    list_display = (
        "ex_date",
        "kind",
        "rule",
        "portfolio",
        "old_symbol",
        "new_symbol",
        "old_quantity",
        "new_quantity",
        "cash",
    )
    list_filter = ("kind", "rule")
    list_select_related = ("portfolio",)
    search_fields = ("old_symbol", "new_symbol", "portfolio__name")
    date_hierarchy = "ex_date"
    ordering = ("-ex_date", "portfolio_id", "position_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
