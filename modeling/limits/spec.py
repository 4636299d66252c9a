"""What a limit may say, and how a value compares with it: the measures, their units and
parameters (API.md, "Limits and alerts"), the validation the API, the admin and the importer
share (`limit_errors`), and the level a value is at (`level_of`).

Values are the measures as the rest of the API shows them: exposures signed (short exposure
is negative: bound it with `min` or `abs_max`), Greeks summed over the book (delta in share
equivalents, dollar delta in money), VaR, ES and a stress loss positive for a loss, drawdown
positive (the fall from the book's highest equity), concentration a decimal share of gross
(0.25 = 25%), days to liquidate the book's slowest position. In `share_of_equity` a money
measure is divided by the book's equity (a decimal) before it is compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

MONEY_UNITS = ("money", "share_of_equity")
METHODS = ("historical", "parametric", "monte_carlo")
CONFIDENCES = (0.95, 0.99)  # what the market_risk job stores
MAX_HORIZON_DAYS = 252


@dataclass(frozen=True)
class MeasureSpec:
    units: tuple[str, ...]
    params: tuple[str, ...] = ()  # the keys `params` may hold
    label: str = ""


MEASURES: dict[str, MeasureSpec] = {
    "gross_exposure": MeasureSpec(MONEY_UNITS, label="Gross exposure"),
    "net_exposure": MeasureSpec(MONEY_UNITS, label="Net exposure"),
    "long_exposure": MeasureSpec(MONEY_UNITS, label="Long exposure"),
    "short_exposure": MeasureSpec(MONEY_UNITS, label="Short exposure"),
    "beta": MeasureSpec(("number",), label="Portfolio beta"),
    "delta": MeasureSpec(("number",), label="Delta (share equivalents)"),
    "dollar_delta": MeasureSpec(MONEY_UNITS, label="Dollar delta"),
    "gamma": MeasureSpec(("number",), label="Gamma"),
    "vega": MeasureSpec(("number",), label="Vega"),
    "var": MeasureSpec(MONEY_UNITS, ("method", "confidence", "horizon_days"), "Value at risk"),
    "es": MeasureSpec(MONEY_UNITS, ("method", "confidence", "horizon_days"), "Expected shortfall"),
    "stress_loss": MeasureSpec(MONEY_UNITS, ("scenario",), "Stress loss"),
    "name_concentration": MeasureSpec(("number",), ("name",), "Single-name share of gross"),
    "sector_concentration": MeasureSpec(("number",), ("sector",), "Sector share of gross"),
    "days_to_liquidate": MeasureSpec(("days",), label="Days to liquidate"),
    "drawdown": MeasureSpec(MONEY_UNITS, label="Drawdown"),
}
BOUNDS = ("max", "min", "abs_max")
LEVELS = ("warning", "hard")


def normalized_params(measure: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` with the measure's defaults filled in (VaR and ES: historical, 95%, one day)."""
    if measure in ("var", "es"):
        return {"method": "historical", "confidence": 0.95, "horizon_days": 1, **params}
    return dict(params)


def _param_errors(measure: str, params: Any, scenarios: set[str] | None) -> list[str]:
    if not isinstance(params, dict):
        return ["Must be an object."]
    spec = MEASURES[measure]
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        allowed = ", ".join(spec.params) or "none"
        return [f"Unknown for {measure}: {', '.join(unknown)} (allowed: {allowed})."]
    errors = []
    if measure in ("var", "es"):
        method = params.get("method", "historical")
        if method not in METHODS:
            errors.append(f"method must be one of {', '.join(METHODS)}.")
        confidence = params.get("confidence", 0.95)
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            errors.append("confidence must be a number.")
        elif not any(math.isclose(confidence, c, abs_tol=1e-9) for c in CONFIDENCES):
            errors.append(
                "confidence must be one the batch computes: "
                + ", ".join(f"{c:g}" for c in CONFIDENCES)
                + "."
            )
        horizon = params.get("horizon_days", 1)
        if isinstance(horizon, bool) or not isinstance(horizon, int):
            errors.append("horizon_days must be a whole number of days.")
        elif not 1 <= horizon <= MAX_HORIZON_DAYS:
            errors.append(f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}.")
    if measure == "stress_loss":
        scenario = params.get("scenario")
        if not isinstance(scenario, str) or not scenario.strip():
            errors.append("scenario: the name of a stress scenario is required.")
        elif scenarios is not None and scenario not in scenarios:
            errors.append(f"Unknown stress scenario: {scenario[:100]!r}.")
    for key in ("name", "sector"):
        if key in params and (not isinstance(params[key], str) or not params[key].strip()):
            errors.append(f"{key} must be a non-empty text (or left out: the largest).")
    return errors


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def limit_errors(
    data: dict[str, Any], *, scenarios: set[str] | None = None
) -> dict[str, list[str]]:
    """Field errors of a whole limit (`measure`, `params`, `bound`, `unit`, `warning`, `hard`);
    {} when valid. `scenarios`: the stress scenario names a limit may name (None: unchecked)."""
    errors: dict[str, list[str]] = {}
    measure = data.get("measure")
    if measure not in MEASURES:
        errors["measure"] = [f"Unknown measure. Use one of {', '.join(MEASURES)}."]
        return errors
    spec = MEASURES[measure]
    params = data.get("params") or {}
    found = _param_errors(measure, params, scenarios)
    if found:
        errors["params"] = found
    if data.get("bound") not in BOUNDS:
        errors["bound"] = [f"Use one of {', '.join(BOUNDS)}."]
    if data.get("unit") not in spec.units:
        errors["unit"] = [f"{measure} is measured in {' or '.join(spec.units)}."]
    hard = _number(data.get("hard"))
    if hard is None:
        errors["hard"] = ["A finite number is required."]
    warning = data.get("warning")
    if warning is not None and _number(warning) is None:
        errors["warning"] = ["A finite number, or null."]
    if "hard" in errors or "warning" in errors or "bound" in errors:
        return errors
    assert hard is not None
    bound = data["bound"]
    if bound == "abs_max" and hard < 0:
        errors["hard"] = ["An absolute maximum cannot be negative."]
    if warning is not None:
        w = float(warning)
        if bound == "min" and w < hard:
            errors["warning"] = ["For a minimum, the warning level must be at or above hard."]
        if bound != "min" and w > hard:
            errors["warning"] = ["The warning level must be at or below hard."]
        if bound == "abs_max" and w < 0:
            errors["warning"] = ["An absolute maximum cannot be negative."]
    return errors


class Level(NamedTuple):
    level: str | None  # "hard", "warning" or None (within)
    bound_value: float | None  # the level crossed


def level_of(bound: str, warning: float | None, hard: float, value: float) -> Level:
    """Where `value` (in the limit's unit) is: beyond hard, beyond warning, or within. A value
    exactly at a level is within it (the limit is the largest allowed)."""
    compared = abs(value) if bound == "abs_max" else value

    def beyond(level: float) -> bool:
        return compared < level if bound == "min" else compared > level

    if beyond(hard):
        return Level("hard", hard)
    if warning is not None and beyond(warning):
        return Level("warning", warning)
    return Level(None, None)


def severity(level: str | None) -> int:
    return 0 if level is None else LEVELS.index(level) + 1
