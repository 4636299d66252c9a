"""django-import-export resources: columns only; prices go through the validating service."""

from __future__ import annotations

from import_export import fields
from import_export.widgets import ForeignKeyWidget

from marketdata.models import CorporateAction, DailyPrice, DividendYield, Security
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


class DividendYieldResource(SafeModelResource):
    """Dividend yields by symbol and date (continuous, annual, decimal: 0.031 is 3.1%). An
    imported row is checked by the model (0 <= yield < 1, one per symbol and date, a known
    symbol); a row without a source is a csv one. `manage.py import_dividend_yields` validates
    a whole file the same way before writing any of it."""

    symbol = fields.Field(
        attribute="security", column_name="symbol", widget=ForeignKeyWidget(Security, "symbol")
    )

    class Meta:
        model = DividendYield
        import_id_fields = ("symbol", "date")
        fields = ("symbol", "date", "dividend_yield", "source")
        export_order = fields
        use_transactions = True
        skip_unchanged = True
        clean_model_instances = True

    def before_import_row(self, row: dict, **kwargs: object) -> None:
        super().before_import_row(row, **kwargs)
        if not row.get("source"):
            row["source"] = "csv"


class CorporateActionResource(SafeModelResource):
    """Splits and cash dividends by symbol, kind and ex-date (the admin's import and export).
    A row is checked by the model's constraints (a split's ratio, a dividend's amount, a pay date
    not before the ex-date); a row without a source is an admin one. `manage.py
    import_corporate_actions` validates a whole file before writing any of it."""

    symbol = fields.Field(
        attribute="security", column_name="symbol", widget=ForeignKeyWidget(Security, "symbol")
    )

    class Meta:
        model = CorporateAction
        import_id_fields = ("symbol", "kind", "ex_date")
        fields = (
            "symbol",
            "kind",
            "ex_date",
            "pay_date",
            "split_to",
            "split_from",
            "cash_amount",
            "source",
        )
        export_order = fields
        use_transactions = True
        skip_unchanged = True
        clean_model_instances = True

    def before_import_row(self, row: dict, **kwargs: object) -> None:
        super().before_import_row(row, **kwargs)
        if not row.get("source"):
            row["source"] = "admin"
