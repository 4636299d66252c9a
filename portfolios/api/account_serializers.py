"""Serializers of the account endpoints that show a user's portfolios."""

from __future__ import annotations

from rest_framework import serializers

from portfolios.models import Portfolio
from sigmasight.accounts.models import User


class PortfolioBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Portfolio
        fields = ["id", "name", "description", "base_currency", "cash", "created_at"]


class MeSerializer(serializers.ModelSerializer):
    portfolios = PortfolioBriefSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "portfolios"]
