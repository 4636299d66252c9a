from __future__ import annotations

import json
import math
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from tablib import Dataset

from analytics.models import FactorDefinition
from sigmasight.accounts.tests.factories import UserFactory
from sigmasight.exceptions import ValidationFailed
from stress.library import DEFAULT_PATH, load_library, validate_shocks
from stress.models import StressScenario
from stress.resources import StressScenarioResource

pytestmark = pytest.mark.django_db

REQUIRED = [
    "Market Up 10%",
    "Market Down 10%",
    "Market Crash 35%",
    "Market Rally 25%",
    "Rates Up 25bp",
    "Rates Down 25bp",
    "Rates Up 100bp",
    "Rates Down 100bp",
    "Rate Spike 300bp",
    "Oil Up 5%",
    "Oil Down 5%",
    "Oil Crash 65%",
    "Gold Rally 20%",
    "Europe (DAX) Up 10%",
    "Europe (DAX) Down 10%",
    "Emerging Markets Crash 25%",
    "China Slowdown 15%",
    "Value Rotation 20%",
    "Growth Rally 15%",
    "Small Cap Outperformance 10%",
    "Quality Flight 12%",
    "VIX Spike 150%",
    "Credit Spread Widening 600bp",
    "Liquidity Crisis",
    "2008 Financial Crisis",
    "COVID-19 Crash",
    "Dot-com Bust",
]


@pytest.fixture(autouse=True)
def _empty_library(db) -> None:
    # `migrate` may already have loaded the library; each test starts from none.
    StressScenario.objects.all().delete()


def _document() -> dict:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def _load(*args: str) -> str:
    out = StringIO()
    call_command("load_stress_scenarios", *args, stdout=out)
    return out.getvalue()


def _problems(shocks: object) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        validate_shocks(shocks)
    return caught.value.fields["shocks"]


def test_library_file_holds_every_planned_scenario_and_each_validates():
    document = _document()
    assert document["version"] == 1
    names = [scenario["name"] for scenario in document["scenarios"]]
    assert sorted(names) == sorted(REQUIRED)
    categories = set(StressScenario.Category.values)
    for scenario in document["scenarios"]:
        assert scenario["category"] in categories, scenario["name"]
        assert scenario["description"], scenario["name"]
        assert validate_shocks(scenario["shocks"]) == scenario["shocks"], scenario["name"]
        assert scenario["is_historical"] == (scenario["category"] == "historical")


def test_library_file_numbers_follow_the_plan():
    shocks = {s["name"]: s["shocks"] for s in _document()["scenarios"]}
    assert shocks["Market Crash 35%"] == {"Market": -0.35}
    assert shocks["Rates Up 25bp"] == {"Rates": 0.0025}
    assert shocks["Rate Spike 300bp"] == {"Rates": 0.03}
    assert shocks["Value Rotation 20%"] == {"Value": 0.20, "Growth": -0.10}
    assert shocks["VIX Spike 150%"] == {"Volatility": 1.5}
    assert shocks["Credit Spread Widening 600bp"] == {"Credit": -0.24}  # 4-year duration x 6%
    for replay in ["2008 Financial Crisis", "COVID-19 Crash"]:
        assert {"Market", "Credit", "Volatility", "Rates"} <= set(shocks[replay])
    assert {"Oil", "Travel", "Technology"} <= set(shocks["COVID-19 Crash"])
    assert {"Growth", "Technology", "Value"} <= set(shocks["Dot-com Bust"])
    assert {"Market", "Credit", "Volatility"} <= set(shocks["Liquidity Crisis"])


def test_load_library_creates_shared_scenarios_and_is_idempotent():
    first = load_library()
    assert first == {"created": 27, "updated": 0, "skipped_edited": 0, "unchanged": 0}
    library = StressScenario.objects.filter(owner__isnull=True)
    assert library.count() == 27
    assert not library.filter(edited=True).exists()
    crisis = library.get(name="2008 Financial Crisis")
    assert crisis.is_historical and crisis.is_active and crisis.category == "historical"

    out = _load()
    assert "created 0, updated 0, skipped (edited) 0, unchanged 27" in out
    assert StressScenario.objects.count() == 27


def test_load_library_restores_a_changed_scenario_that_staff_did_not_edit():
    load_library()
    StressScenario.objects.filter(name="Oil Up 5%").update(shocks={"Oil": 0.07})
    assert load_library()["updated"] == 1
    assert StressScenario.objects.get(name="Oil Up 5%").shocks == {"Oil": 0.05}


def test_load_command_skips_an_edited_scenario_unless_forced():
    load_library()
    StressScenario.objects.filter(name="Market Down 10%").update(
        shocks={"Market": -0.12}, edited=True
    )
    assert "skipped (edited) 1, unchanged 26" in _load()
    assert StressScenario.objects.get(name="Market Down 10%").shocks == {"Market": -0.12}

    assert "updated 1, skipped (edited) 0, unchanged 26" in _load("--force")
    restored = StressScenario.objects.get(name="Market Down 10%")
    assert restored.shocks == {"Market": -0.10}
    assert not restored.edited


def test_load_command_dry_run_writes_nothing():
    out = _load("--dry-run")
    assert "nothing written" in out and "created 27" in out
    assert not StressScenario.objects.exists()


def test_load_library_leaves_user_scenarios_of_the_same_name_alone():
    user = UserFactory()
    mine = StressScenario.objects.create(
        owner=user, name="Market Crash 35%", category="market", shocks={"Market": -0.5}
    )
    assert load_library()["created"] == 27
    mine.refresh_from_db()
    assert mine.shocks == {"Market": -0.5}
    assert StressScenario.objects.filter(name="Market Crash 35%").count() == 2


def test_load_command_rejects_a_bad_file_as_a_whole(tmp_path: Path):
    document = _document()
    document["scenarios"][0]["shocks"] = {"Nope": 0.1}
    document["scenarios"][1]["category"] = "weather"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError, match="2 problem"):
        call_command("load_stress_scenarios", "--file", str(bad), stdout=StringIO(), stderr=err)
    assert "Unknown factor 'Nope'" in err.getvalue()
    assert "category 'weather'" in err.getvalue()
    assert not StressScenario.objects.exists()


def test_load_library_refuses_an_unknown_version(tmp_path: Path):
    other = tmp_path / "v2.json"
    other.write_text(json.dumps({"version": 2, "scenarios": []}), encoding="utf-8")
    with pytest.raises(ValidationFailed, match="Unsupported library version 2"):
        load_library(path=other)


def test_validate_shocks_resolves_proxy_symbols_and_case():
    assert validate_shocks({"SPY": -0.1, "us10y": 0.01, "emerging markets": -0.2, "HYG": 0}) == {
        "Market": -0.1,
        "Rates": 0.01,
        "Emerging Markets": -0.2,
        "Credit": 0.0,
    }


def test_validate_shocks_rejects_an_unknown_factor():
    [message] = _problems({"Market": -0.1, "Bitcoin": 0.5})
    assert message.startswith("Unknown factor 'Bitcoin'")
    assert "Market" in message


def test_validate_shocks_rejects_an_inactive_factor():
    FactorDefinition.objects.filter(name="Oil").update(is_active=False)
    [message] = _problems({"USO": 0.1})
    assert message.startswith("Unknown factor 'USO'")


def test_validate_shocks_rejects_a_price_fall_past_100_percent():
    [message] = _problems({"Market": -1.5})
    assert "Market" in message and "cannot fall more than 100%" in message
    assert validate_shocks({"Market": -1.0}) == {"Market": -1.0}


def test_validate_shocks_rejects_a_rates_move_past_ten_points():
    [message] = _problems({"Rates": 2.0})
    assert "Rates" in message and "yield change" in message and "0.1" in message


def test_validate_shocks_rejects_nan_and_non_numbers():
    assert "finite number" in _problems({"Market": math.nan})[0]
    assert "finite number" in _problems(json.loads('{"Gold": Infinity}'))[0]
    assert "not a number" in _problems({"Oil": "-0.1"})[0]
    assert "not a number" in _problems({"Oil": True})[0]


def test_validate_shocks_rejects_an_empty_map_and_a_non_map():
    assert _problems({}) == ["Give at least one factor shock."]
    assert "map" in _problems([["Market", -0.1]])[0]


def test_validate_shocks_lists_every_problem_at_once():
    problems = _problems({"Nope": 1, "Market": -2, "SPY": 0.1, "Rates": -0.5})
    assert len(problems) == 4
    assert any("shocked twice" in p for p in problems)


def _rows(*rows: tuple) -> Dataset:
    header = ["name", "category", "description", "shocks", "is_active", "is_historical"]
    return Dataset(*rows, headers=header)


def test_scenario_import_validates_shocks_and_keeps_to_the_library(db):
    load_library()
    user = UserFactory()
    StressScenario.objects.create(
        owner=user, name="Gold Rally 20%", category="commodity", shocks={"Gold": 0.5}
    )
    resource = StressScenarioResource()

    bad = resource.import_data(
        _rows(("Gold Rally 20%", "commodity", "", '{"Gold": -3}', "1", "0")), dry_run=True
    )
    assert bad.has_validation_errors()
    [row] = bad.invalid_rows
    assert "cannot fall more than 100%" in str(row.field_specific_errors["shocks"])

    good = resource.import_data(
        _rows(
            ("Gold Rally 20%", "commodity", "Gold doubles.", '{"GLD": 1.0}', "1", "0"),
            ("Tariff Shock", "international", "", '{"China": -0.2, "SPY": -0.05}', "1", "0"),
        ),
        dry_run=False,
    )
    assert not good.has_errors() and not good.has_validation_errors()
    gold = StressScenario.objects.get(owner__isnull=True, name="Gold Rally 20%")
    assert gold.shocks == {"Gold": 1.0} and gold.edited
    assert StressScenario.objects.get(owner=user).shocks == {"Gold": 0.5}
    tariff = StressScenario.objects.get(name="Tariff Shock")
    assert tariff.owner is None and tariff.shocks == {"China": -0.2, "Market": -0.05}


def test_scenario_export_covers_the_library_only(db):
    load_library()
    StressScenario.objects.create(
        owner=UserFactory(), name="Mine", category="market", shocks={"Market": -0.5}
    )
    dataset = StressScenarioResource().export()
    assert dataset.headers == [
        "name",
        "category",
        "description",
        "shocks",
        "is_active",
        "is_historical",
    ]
    assert len(dataset) == 27
    row = dict(
        zip(dataset.headers, dataset[dataset["name"].index("Value Rotation 20%")], strict=True)
    )
    assert json.loads(row["shocks"]) == {"Value": 0.2, "Growth": -0.1}
