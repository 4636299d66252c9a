from __future__ import annotations

from rest_framework import serializers

from sigmasight.api.fields import id_field
from sigmasight.api.query import QuerySerializer
from sigmasight.exceptions import ValidationFailed
from stress.library import validate_shocks
from stress.models import StressScenario


class ScenarioSerializer(serializers.ModelSerializer):
    shocks = serializers.DictField(child=serializers.FloatField(), allow_empty=False)
    is_library = serializers.SerializerMethodField()

    class Meta:
        model = StressScenario
        fields = [
            "id",
            "name",
            "category",
            "description",
            "shocks",
            "is_active",
            "is_historical",
            "is_library",
        ]
        read_only_fields = ["id", "is_library"]

    def get_is_library(self, scenario: StressScenario) -> bool:
        return scenario.owner_id is None

    def validate_shocks(self, value: dict) -> dict:
        try:
            return validate_shocks(value)
        except ValidationFailed as exc:
            raise serializers.ValidationError(exc.fields.get("shocks", [exc.message])) from exc

    def validate_name(self, value: str) -> str:
        owner = self.context["request"].user
        clash = StressScenario.objects.filter(owner=owner, name=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(f"You already have a scenario named '{value}'.")
        return value


class StressTestBody(serializers.Serializer):
    scenario_ids = serializers.ListField(child=id_field(), required=False, allow_empty=False)
    as_of = serializers.DateField(required=False)


class HistoricalQuery(QuerySerializer):
    portfolio = id_field(required=False, help_text="also replay the crisis on this portfolio")
