"""django-import-export resources: columns only; prices go through the validating service."""

from __future__ import annotations

from import_export import fields
from import_export.widgets import ForeignKeyWidget

from marketdata.models import DailyPrice, Security
from sigmasight.resources import SafeModelResource


class SecurityResource(SafeModelResource):
    class Meta:
        model = Security
        import_id_fields = ("symbol",)
        fields = (
            "symbol",
            "name",
            "asset_type",
            "sector",
            "industry",
            "exchange",
            "currency",
            "is_active",
            "underlying",
            "expiration",
            "strike",
            "option_type",
            "multiplier",
        )
        use_transactions = True
        skip_unchanged = True


class DailyPriceResource(SafeModelResource):
    """Export only: price imports go through `import_prices` / the CSV service, which validates
    sessions, positivity and duplicates for the whole file before writing anything."""

    symbol = fields.Field(
        attribute="security", column_name="symbol", widget=ForeignKeyWidget(Security, "symbol")
    )

    class Meta:
        model = DailyPrice
        fields = (
            "symbol",
            "date",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "adjusted_close",
            "source",
        )
        export_order = fields
