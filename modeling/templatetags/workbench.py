"""How the pages write numbers: money with thousands separators and losses marked by a minus
sign (and a colour, never the colour alone), shares as percentages, Greeks and betas as numbers.

`{% val value "money" "equity" %}` writes `<span class="num neg" data-field="equity"
data-value="-1234.5">[U+2212]1,234.50</span>`: the API's own value rides along in `data-value`, which
the page-versus-API tests read back.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

MINUS = "\u2212"
# A limit's unit (API: money, share_of_equity, number, days) as a kind of number.
KINDS = {"share_of_equity": "pct", "number": "num", "days": "num"}
DASH = "\u2014"


def _number(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _text(number: Decimal, kind: str) -> str:
    kind = KINDS.get(kind, kind)
    if kind == "money":
        text = f"{abs(number):,.2f}"
    elif kind == "pct":
        text = f"{abs(number) * 100:,.2f}%"
    elif kind == "int":
        text = f"{abs(number):,.0f}"
    elif kind == "qty":
        text = f"{abs(number):,f}".rstrip("0").rstrip(".")
    else:  # a Greek, a beta, a ratio
        text = f"{abs(number):,.4f}"
    return (MINUS if number < 0 else "") + text


@register.simple_tag
def val(value: Any, kind: str = "num", field: str = "") -> str:
    number = _number(value)
    if number is None:
        return format_html('<span class="num" data-field="{}" data-value="">{}</span>', field, DASH)
    css = "num neg" if number < 0 else "num"
    return format_html(
        '<span class="{}" data-field="{}" data-value="{}">{}</span>',
        css,
        field,
        str(value),
        _text(number, kind),
    )


@register.filter
def get(mapping: Any, key: str) -> Any:
    """`{{ row|get:"1" }}`: a mapping's value by a key templates cannot spell."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter
def bar(value: Any, scale: Any) -> str:
    """The width of a bar, in percent of the largest magnitude `scale` (0 to 100)."""
    number, top = _number(value), _number(scale)
    if number is None or not top:
        return "0"
    return f"{min(abs(number) / abs(top) * 100, Decimal(100)):.1f}"
