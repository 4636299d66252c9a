from __future__ import annotations

import django_filters
from django.db.models import Count, Q, QuerySet

from portfolios.models import Position, Strategy
from sigmasight.api.fields import MAX_ID


class PositionFilter(django_filters.FilterSet):
    portfolio = django_filters.NumberFilter(
        field_name="portfolio_id", min_value=1, max_value=MAX_ID
    )
    symbol = django_filters.CharFilter(field_name="symbol", lookup_expr="iexact")
    underlying = django_filters.CharFilter(field_name="underlying_symbol", lookup_expr="iexact")
    position_type = django_filters.MultipleChoiceFilter(choices=Position.PositionType.choices)
    expiring_before = django_filters.DateFilter(field_name="expiration", lookup_expr="lt")
    tag = django_filters.BaseInFilter(
        method="filter_tags", help_text="tag ids or names; repeat or comma-separate"
    )
    strategy = django_filters.NumberFilter(
        method="filter_strategy",
        min_value=1,
        max_value=MAX_ID,
        help_text="a strategy's id: its positions",
    )
    tag_mode = django_filters.ChoiceFilter(
        choices=[("any", "any"), ("all", "all")],
        method="filter_noop",
        help_text="with several tags: any (default) or all",
    )

    class Meta:
        model = Position
        fields = [
            "portfolio",
            "symbol",
            "underlying",
            "position_type",
            "expiring_before",
            "tag",
            "tag_mode",
            "strategy",
        ]

    def filter_strategy(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        # A subquery: a position in the strategy once, whatever else it joins.
        return queryset.filter(
            pk__in=Position.strategies.through.objects.filter(strategy_id=value).values(
                "position_id"
            )
        )

    def filter_noop(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset

    def filter_tags(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # Every `tag` parameter counts (repeated or comma-separated), not only the last one.
        tags = [
            v.strip()
            for raw in self.request.query_params.getlist("tag")
            for v in raw.split(",")
            if v.strip()
        ]
        if not tags:
            return queryset
        match = Q()
        for tag in tags:
            # isdigit() alone accepts "³" and other Unicode digits int() refuses.
            is_id = tag.isascii() and tag.isdigit()
            match |= Q(tags__id=int(tag)) if is_id else Q(tags__name__iexact=tag)
        if self.form.cleaned_data.get("tag_mode") == "all":
            wanted = len(set(tags))
            ids = (
                Position.objects.filter(pk__in=queryset.values("pk"))
                .filter(match)
                .values("pk")
                .annotate(hits=Count("tags", distinct=True))
                .filter(hits=wanted)
                .values("pk")
            )
            return queryset.filter(pk__in=ids)
        return queryset.filter(pk__in=Position.objects.filter(match).values("pk"))


class StrategyFilter(django_filters.FilterSet):
    # A plain id on the user's own strategies, not a choice among every portfolio: another
    # user's portfolio must answer like a missing one (an empty page), never reveal it exists.
    portfolio = django_filters.NumberFilter(
        field_name="portfolio_id", min_value=1, max_value=MAX_ID
    )

    class Meta:
        model = Strategy
        fields = ["portfolio", "kind", "is_detected"]
