from __future__ import annotations

from analytics.models import FactorDefinition
from sigmasight.resources import SafeModelResource


class FactorDefinitionResource(SafeModelResource):
    class Meta:
        model = FactorDefinition
        import_id_fields = ("name",)
        fields = ("name", "etf_proxy", "factor_type", "display_order", "is_active", "description")
        use_transactions = True
        skip_unchanged = True
