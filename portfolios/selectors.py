"""Reads of the book, always scoped to the requesting user and ordered."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from portfolios.models import Portfolio, Position, Strategy, Tag


def portfolios_of(user) -> QuerySet[Portfolio]:
    return Portfolio.objects.filter(owner=user).order_by("id")


def positions_of(user) -> QuerySet[Position]:
    return (
        Position.objects.filter(portfolio__owner=user, closed_at__isnull=True)
        .select_related("security")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .order_by("id")
    )


def tags_of(user) -> QuerySet[Tag]:
    return Tag.objects.filter(owner=user).annotate(position_count=Count("positions")).order_by("id")


def strategies_of(user) -> QuerySet[Strategy]:
    return (
        Strategy.objects.filter(portfolio__owner=user)
        .prefetch_related(
            Prefetch(
                "positions", queryset=Position.objects.filter(closed_at__isnull=True).order_by("id")
            )
        )
        .order_by("id")
    )
