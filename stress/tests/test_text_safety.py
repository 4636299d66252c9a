"""Scenario names and descriptions: control characters refused over the API (400 naming the
field; another user's scenario is a 404), and the admin's download of the library neutralises
formula-like names and survives control characters stored before the rule."""

from __future__ import annotations

import io

import openpyxl
import pytest

from sigmasight.accounts.tests.factories import UserFactory
from sigmasight.tests.helpers import assert_envelope
from stress.models import StressScenario

pytestmark = pytest.mark.django_db

SCENARIOS = "/api/v1/stress/scenarios/"
CONTROL = "bad\x1a\x06name"


@pytest.fixture
def mine(user) -> StressScenario:
    return StressScenario.objects.create(
        owner=user, name="Mine", category="market", description="ok", shocks={"Market": -0.1}
    )


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        ("post", {"name": CONTROL, "category": "market", "shocks": {"Market": -0.1}}, "name"),
        (
            "post",
            {
                "name": "New",
                "category": "market",
                "description": "x\x07",
                "shocks": {"Market": -0.1},
            },
            "description",
        ),
        ("patch", {"name": "tab\there"}, "name"),
        ("patch", {"description": "x\x9b"}, "description"),
    ],
)
def test_scenario_api_refuses_control_characters(auth_client, mine, method, body, field):
    url = SCENARIOS if method == "post" else f"{SCENARIOS}{mine.pk}/"
    error = assert_envelope(getattr(auth_client, method)(url, body, format="json"), 400)
    assert "Control characters are not allowed" in " ".join(error["fields"][field])
    assert list(mine.owner.stress_scenarios.values_list("name", "description")) == [("Mine", "ok")]


def test_scenario_api_accepts_line_breaks_in_descriptions(auth_client, mine):
    response = auth_client.patch(
        f"{SCENARIOS}{mine.pk}/", {"description": "one\n\ttwo"}, format="json"
    )
    assert response.status_code == 200, response.content
    mine.refresh_from_db()
    assert mine.description == "one\n\ttwo"


def test_scenario_of_another_user_is_404_whatever_the_text(other_client, mine):
    for body in ({"name": CONTROL}, {"name": "fine"}):
        response = other_client.patch(f"{SCENARIOS}{mine.pk}/", body, format="json")
        assert_envelope(response, 404, "not_found")
    mine.refresh_from_db()
    assert mine.name == "Mine"


def test_admin_scenario_xlsx_download_neutralises_names_and_survives_controls(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for name in ("+cmd|' /C calc'!A0", "=1+1", "@SUM(1+1)"):
        StressScenario.objects.create(name=name, category="market", shocks={"Market": -0.25})
    old = StressScenario.objects.create(name="old", category="market", shocks={"Market": -0.5})
    StressScenario.objects.filter(pk=old.pk).update(name="old\x1a", description="-x\x0b")
    page = client.get("/admin/stress/stressscenario/export/").content.decode()
    assert '<option value="1">xlsx</option>' in page
    columns = ["name", "category", "description", "shocks", "is_active", "is_historical"]
    form = {"format": "1", "resource": "0"}
    form |= {f"stressscenarioresource_{c}": "on" for c in columns}
    response = client.post("/admin/stress/stressscenario/export/", form)
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"] == []
    rows = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert {"'+cmd|' /C calc'!A0", "'=1+1", "'@SUM(1+1)", "old\ufffd"} <= set(rows)
    assert not {"+cmd|' /C calc'!A0", "=1+1", "@SUM(1+1)"} & set(rows)
    assert rows["old\ufffd"][2] == "'-x\ufffd"
    assert rows["old\ufffd"][4] is True  # booleans stay booleans
