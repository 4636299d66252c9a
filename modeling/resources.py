"""django-import-export resources of the modeling app: risk limits (columns only).

A limit row: `id` (blank: a new limit), `owner_email` (the user, by login email), `portfolio` (an
id of one of the owner's portfolios; blank: all of them), `name`, `measure`, `params` (JSON such
as {"scenario": "2008 Financial Crisis"}), `bound`, `unit`, `warning`, `hard`, `is_active`. Every
row is checked as the API checks a limit (`modeling.limits.services.limit_problems`); one bad
row refuses the whole file.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from import_export import fields, widgets

from modeling.limits.services import limit_problems
from modeling.limits.spec import normalized_params
from modeling.models import Limit
from portfolios.models import Portfolio
from portfolios.resources import OwnerEmailWidget
from sigmasight.api.fields import MAX_ID
from sigmasight.resources import SafeModelResource

SPEC_FIELDS = ("measure", "params", "bound", "unit", "warning", "hard")


class PortfolioIdWidget(widgets.ForeignKeyWidget):
    """A portfolio by id; blank: none (all of the owner's). An unknown id is a row error."""

    def __init__(self) -> None:
        super().__init__(Portfolio)

    def clean(self, value: object, row: dict | None = None, **kwargs: object) -> Portfolio | None:
        text = str(value if value is not None else "").strip()
        if not text:
            return None
        if text.endswith(".0"):  # a spreadsheet's number
            text = text[:-2]
        if not (text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID):
            raise ValueError(f"A portfolio id is a positive whole number, not {text[:40]!r}.")
        portfolio = Portfolio.objects.filter(pk=int(text)).first()
        if portfolio is None:
            raise ValueError(f"There is no portfolio with the id {text}.")
        return portfolio


class LimitResource(SafeModelResource):
    owner_email = fields.Field(
        attribute="owner", column_name="owner_email", widget=OwnerEmailWidget()
    )
    portfolio = fields.Field(
        attribute="portfolio", column_name="portfolio", widget=PortfolioIdWidget()
    )
    params = fields.Field(attribute="params", column_name="params", widget=widgets.JSONWidget())

    class Meta:
        model = Limit
        fields = (
            "id",
            "owner_email",
            "portfolio",
            "name",
            "measure",
            "params",
            "bound",
            "unit",
            "warning",
            "hard",
            "is_active",
        )
        export_order = fields
        import_id_fields = ("id",)
        use_transactions = True
        clean_model_instances = True
        skip_unchanged = True

    def validate_instance(
        self,
        instance: Limit,
        import_validation_errors: dict | None = None,
        validate_unique: bool = True,
    ) -> None:
        errors = dict(import_validation_errors or {})
        try:
            instance.full_clean(exclude=list(errors), validate_unique=False)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        data = {name: getattr(instance, name) for name in SPEC_FIELDS}
        problems = limit_problems(
            data,
            owner_id=instance.owner_id,
            portfolio=instance.portfolio if instance.portfolio_id else None,
        )
        for name, messages in problems.items():
            errors.setdefault(name, messages)
        if errors:
            raise ValidationError(errors)

    def before_save_instance(self, instance: Limit, row: object, **kwargs: object) -> None:
        instance.params = normalized_params(instance.measure, instance.params or {})
