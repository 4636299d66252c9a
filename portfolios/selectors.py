"""Reads of the book, always scoped to the requesting user and ordered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from portfolios.models import Portfolio, Position, Strategy, Tag
from sigmasight.accounts.models import User
from sigmasight.api.users import request_user
from sigmasight.exceptions import NotFoundError

if TYPE_CHECKING:
    from rest_framework.request import Request


def portfolios_of(user: User) -> QuerySet[Portfolio]:
    return Portfolio.objects.filter(owner=user).order_by("id")


def positions_of(user: User) -> QuerySet[Position]:
    return (
        Position.objects.filter(portfolio__owner=user, closed_at__isnull=True)
        .select_related("security")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .order_by("id")
    )


def tags_of(user: User) -> QuerySet[Tag]:
    return Tag.objects.filter(owner=user).annotate(position_count=Count("positions")).order_by("id")


def strategies_of(user: User) -> QuerySet[Strategy]:
    return (
        Strategy.objects.filter(portfolio__owner=user)
        .prefetch_related(
            Prefetch(
                "positions", queryset=Position.objects.filter(closed_at__isnull=True).order_by("id")
            )
        )
        .order_by("id")
    )


def portfolio_for(request: Request, portfolio_id: int | None) -> Portfolio:
    """The user's portfolio by id, or their first one; another user's is a 404."""
    portfolios = Portfolio.objects.filter(owner=request_user(request)).order_by("id")
    if portfolio_id is None:
        portfolio = portfolios.first()
        if portfolio is None:
            raise NotFoundError("You have no portfolio yet.")
        return portfolio
    return get_object_or_404(portfolios, pk=portfolio_id)
