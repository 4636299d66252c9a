"""The shared stress-scenario library: shock validation and the loader of `scenarios/*.json`.

Shocks map a factor to a decimal move (DESIGN.md, "Conventions that numbers depend on"): price
factors move by returns (-0.10 = a 10% fall), the Rates factor by a change in the 10-year yield
(0.01 = +100bp). A shock may name a factor or its proxy symbol, in any case; what is stored is
the factor's name. Library scenarios have no owner; one that staff edited (`edited`) is left
alone by the loader unless it is forced.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from analytics.models import FactorDefinition
from sigmasight.exceptions import ValidationFailed
from stress.models import StressScenario

DEFAULT_PATH = Path(__file__).resolve().parent / "scenarios" / "default.json"
SUPPORTED_VERSIONS = frozenset({1})
# Factors whose move is a change in a yield rather than a price return.
YIELD_FACTORS = frozenset({"Rates"})
MAX_YIELD_MOVE = 0.10
MIN_PRICE_MOVE = -1.0  # a price cannot fall below zero
MAX_PRICE_MOVE = 10.0  # +1000%: past this a "shock" is a typo (VIX futures tripled in 2020)
CONTENT_FIELDS = ("category", "description", "shocks", "is_historical")

FactorLookup = dict[str, str]  # casefolded name or proxy symbol -> factor name


def active_factor_lookup() -> FactorLookup:
    """Every active factor by its casefolded name and proxy symbol; names win over symbols."""
    lookup: FactorLookup = {}
    rows = list(FactorDefinition.objects.filter(is_active=True).values_list("name", "etf_proxy"))
    for name, proxy in rows:
        if proxy:
            lookup.setdefault(proxy.casefold(), name)
    for name, _proxy in rows:
        lookup[name.casefold()] = name
    return lookup


def validate_shocks(shocks: object, *, factors: FactorLookup | None = None) -> dict[str, float]:
    """Return `shocks` keyed by active factor names with float moves, or raise ValidationFailed
    with `fields={"shocks": [...]}` naming every unknown factor and every unusable move."""
    problems = _shock_problems(shocks, factors if factors is not None else active_factor_lookup())
    if isinstance(problems, list):
        raise ValidationFailed("Invalid stress shocks.", fields={"shocks": problems})
    return problems


def _shock_problems(shocks: object, factors: FactorLookup) -> dict[str, float] | list[str]:
    """The resolved shocks, or the list of what is wrong with them."""
    if not isinstance(shocks, Mapping):
        return ['Shocks must be a map of {"factor": decimal move}.']
    if not shocks:
        return ["Give at least one factor shock."]
    problems: list[str] = []
    resolved: dict[str, float] = {}
    given_as: dict[str, str] = {}
    for key, value in shocks.items():
        name = factors.get(key.strip().casefold()) if isinstance(key, str) else None
        if name is None:
            known = ", ".join(sorted(set(factors.values())))
            problems.append(
                f"Unknown factor {key!r}: use an active factor name or its proxy symbol ({known})."
            )
            continue
        if name in given_as:
            problems.append(f"Factor {name} is shocked twice ({given_as[name]!r} and {key!r}).")
            continue
        given_as[name] = key
        move = _move_problem(name, value)
        if isinstance(move, str):
            problems.append(move)
        else:
            resolved[name] = move
    return problems or resolved


def _move_problem(name: str, value: object) -> float | str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return f"{name}: the move {value!r} is not a number."
    try:
        move = float(value)
    except (OverflowError, ValueError):  # a signalling Decimal NaN, an integer past float range
        move = math.nan
    if not math.isfinite(move):
        return f"{name}: the move must be a finite number, not {value!r}."
    if name in YIELD_FACTORS:
        if abs(move) > MAX_YIELD_MOVE:
            return (
                f"{name}: a yield change of {move:+g} is out of bounds; it must be within "
                f"±{MAX_YIELD_MOVE:g} (0.01 = +100bp)."
            )
    elif move < MIN_PRICE_MOVE:
        return (
            f"{name}: a price move of {move:+g} ({move:+.0%}) is impossible; a price cannot fall "
            f"more than 100% ({MIN_PRICE_MOVE:g})."
        )
    elif move > MAX_PRICE_MOVE:
        return (
            f"{name}: a price move of {move:+g} ({move:+.0%}) is out of bounds; the most is "
            f"{MAX_PRICE_MOVE:+g} ({MAX_PRICE_MOVE:+.0%})."
        )
    return move


def _read_library(path: Path, factors: FactorLookup) -> list[dict]:
    """Every scenario of the file, shocks resolved, or ValidationFailed listing every problem."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValidationFailed(f"{path} does not exist.", fields={"file": [str(path)]}) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(
            f"{path} is not readable JSON: {exc}", fields={"file": [str(exc)]}
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("scenarios"), list):
        message = 'The library must be {"version": 1, "scenarios": [...]}.'
        raise ValidationFailed(message, fields={"file": [message]})
    if document.get("version") not in SUPPORTED_VERSIONS:
        message = f"Unsupported library version {document.get('version')!r}; this code reads 1."
        raise ValidationFailed(message, fields={"file": [message]})

    problems: list[str] = []
    scenarios: list[dict] = []
    seen: set[str] = set()
    categories = set(StressScenario.Category.values)
    max_name = StressScenario._meta.get_field("name").max_length
    assert max_name is not None  # a CharField
    for index, entry in enumerate(document["scenarios"], start=1):
        label = f"scenario {index}"
        if not isinstance(entry, dict):
            problems.append(f"{label}: must be an object.")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > max_name:
            problems.append(f"{label}: name must be text of 1 to {max_name} characters.")
            continue
        label = f"{label} ({name})"
        if name in seen:
            problems.append(f"{label}: the name is used twice.")
        seen.add(name)
        if entry.get("category") not in categories:
            problems.append(
                f"{label}: category {entry.get('category')!r} is not one of {sorted(categories)}."
            )
        description = entry.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{label}: description must be text.")
        is_historical = entry.get("is_historical", False)
        if not isinstance(is_historical, bool):
            problems.append(f"{label}: is_historical must be true or false.")
        shocks = _shock_problems(entry.get("shocks"), factors)
        if isinstance(shocks, list):
            problems.extend(f"{label}: {problem}" for problem in shocks)
            continue
        scenarios.append(
            {
                "name": name,
                "category": entry.get("category"),
                "description": description,
                "shocks": shocks,
                "is_historical": is_historical,
            }
        )
    if problems:
        raise ValidationFailed(
            f"{path}: {len(problems)} problem(s); nothing was loaded.",
            fields={"scenarios": problems},
        )
    return scenarios


def load_library(
    *, force: bool = False, path: Path = DEFAULT_PATH, dry_run: bool = False
) -> dict[str, int]:
    """Upsert the file's scenarios into the shared library (owner null) by name, all or nothing.

    A scenario staff edited is skipped unless `force`, which restores the file's version and
    clears `edited`. Library scenarios absent from the file are left as they are. Returns the
    counts `created`, `updated`, `skipped_edited` and `unchanged` (what would happen, if
    `dry_run`)."""
    scenarios = _read_library(path, active_factor_lookup())
    counts = {"created": 0, "updated": 0, "skipped_edited": 0, "unchanged": 0}
    with transaction.atomic():
        existing = {
            scenario.name: scenario
            for scenario in StressScenario.objects.select_for_update().filter(
                owner__isnull=True, name__in=[s["name"] for s in scenarios]
            )
        }
        to_create: list[StressScenario] = []
        to_update: list[StressScenario] = []
        for values in scenarios:
            stored = existing.get(values["name"])
            if stored is None:
                to_create.append(StressScenario(owner=None, **values))
                counts["created"] += 1
            elif stored.edited and not force:
                counts["skipped_edited"] += 1
            elif not stored.edited and all(
                getattr(stored, field) == values[field] for field in CONTENT_FIELDS
            ):
                counts["unchanged"] += 1
            else:
                for field in CONTENT_FIELDS:
                    setattr(stored, field, values[field])
                stored.edited = False
                to_update.append(stored)
                counts["updated"] += 1
        if not dry_run:
            StressScenario.objects.bulk_create(to_create)
            now = timezone.now()
            for stored in to_update:
                stored.updated_at = now  # bulk_update does not apply auto_now
            StressScenario.objects.bulk_update(to_update, [*CONTENT_FIELDS, "edited", "updated_at"])
    return counts
