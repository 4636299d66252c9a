"""Modeling reads, always scoped to the requesting user and ordered."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from modeling.models import (
    Breach,
    ExportHistory,
    Limit,
    ModelingSession,
    ModelingSessionSnapshot,
    ProFormaTrade,
)
from sigmasight.accounts.models import User

# The frozen book and its state can be megabytes: lists never load them.
HEAVY = ("base_positions", "base_context", "base_arrays", "last_impacts")


def sessions_of(user: User) -> QuerySet[ModelingSession]:
    return ModelingSession.objects.filter(owner=user).order_by("-id")


def session_list_of(user: User) -> QuerySet[ModelingSession]:
    return sessions_of(user).defer(*HEAVY).annotate(trade_count=Count("trades"))


def session_detail_of(user: User) -> QuerySet[ModelingSession]:
    return sessions_of(user).prefetch_related(
        Prefetch("trades", queryset=ProFormaTrade.objects.order_by("id"))
    )


def snapshots_of(user: User, session: ModelingSession) -> QuerySet[ModelingSessionSnapshot]:
    return ModelingSessionSnapshot.objects.filter(owner=user, session=session).order_by("-id")


def exports_of(user: User) -> QuerySet[ExportHistory]:
    return ExportHistory.objects.filter(user=user).order_by("-id")


def limits_of(user: User) -> QuerySet[Limit]:
    return Limit.objects.filter(owner=user).order_by("id")


def breaches_of(user: User) -> QuerySet[Breach]:
    return (
        Breach.objects.filter(limit__owner=user)
        .select_related("limit")
        .order_by("-last_seen", "-id")
    )
