"""The stress admin: the scenario library and users' own scenarios, the results and correlations
the stress job writes (read-only), and staff edits that the next library load keeps."""

from __future__ import annotations

import json
from datetime import date

import pytest

from portfolios.tests.factories import PortfolioFactory
from sigmasight.accounts.tests.factories import UserFactory
from stress.library import load_library
from stress.models import FactorCorrelation, StressScenario, StressTestResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    # `migrate` may already have loaded the library; each test starts from a fresh load of it.
    StressScenario.objects.all().delete()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    load_library()
    return client


def test_admin_stress_pages_load(staff, user):
    """Each page loads and shows what it is about: the library and a user's own scenario, the
    searches and filters of the list, the formats of import and export, and the rows the stress
    job wrote (a result for the user's book, a correlation matrix)."""
    library = list(StressScenario.objects.order_by("category", "name", "id"))
    mine = StressScenario.objects.create(
        owner=user, name="My Oil Shock", category="commodity", shocks={"Oil": -0.3}
    )
    down = StressScenario.objects.get(name="Market Down 10%")
    result = StressTestResult.objects.create(
        portfolio=PortfolioFactory(owner=user, name="Core"),
        scenario=down,
        date=date(2026, 11, 20),
        direct_pnl=-1000.0,
        correlated_pnl=-1200.0,
        total_pnl=-1200.0,
        pnl_pct=-0.012,
    )
    correlation = FactorCorrelation.objects.create(
        date=date(2026, 11, 20),
        lookback=252,
        lam=0.94,
        factors=["Market", "Oil"],
        matrix=[[1.0, 0.3], [0.3, 1.0]],
        covariance=[[1e-4, 3e-5], [3e-5, 4e-4]],
    )

    def names(page) -> list[str]:
        return [scenario.name for scenario in page.context["cl"].result_list]

    formats = ['<option value="0">csv</option>', '<option value="1">xlsx</option>']
    shown = {
        "/admin/stress/stressscenario/": [
            "28 stress scenarios",
            ">Market Down 10%</a>",
            ">My Oil Shock</a>",
            user.email,
            "column-edited",
        ],
        "/admin/stress/stressscenario/?q=crisis": [">2008 Financial Crisis</a>"],
        "/admin/stress/stressscenario/?owner__isempty=1": ["27 stress scenarios"],
        "/admin/stress/stressscenario/import/": [*formats, 'name="import_file"'],
        "/admin/stress/stressscenario/export/": ["<title>Export |", *formats],
        "/admin/stress/stresstestresult/": ["Market Down 10%", "Core", "-1200.0", "column-pnl_pct"],
        "/admin/stress/stresstestresult/export/": ["<title>Export |", *formats],
        "/admin/stress/factorcorrelation/": [
            "0.94",
            "column-factor_count",
            '<td class="field-factor_count">2</td>',
        ],
    }
    pages = {}
    for url in shown:
        pages[url] = page = staff.get(url)
        assert page.status_code == 200, url
        for text in shown[url]:
            assert text in page.content.decode(), (url, text)
    assert staff.get("/admin/stress/stresstestresult/add/").status_code == 403
    assert staff.get("/admin/stress/factorcorrelation/add/").status_code == 403

    everything = pages["/admin/stress/stressscenario/"].context["cl"].result_list
    assert len(library) == 27 and set(everything) == {*library, mine}
    found = names(pages["/admin/stress/stressscenario/?q=crisis"])
    assert {"2008 Financial Crisis", "Liquidity Crisis"} <= set(found)
    assert "Market Down 10%" not in found
    assert names(pages["/admin/stress/stressscenario/?owner__isempty=1"]) == [
        s.name for s in library
    ]
    assert list(pages["/admin/stress/stresstestresult/"].context["cl"].result_list) == [result]
    assert list(pages["/admin/stress/factorcorrelation/"].context["cl"].result_list) == [
        correlation
    ]


def _change_form(scenario: StressScenario, **changes: object) -> dict:
    form = {
        "name": scenario.name,
        "category": scenario.category,
        "description": scenario.description,
        "shocks": json.dumps(scenario.shocks),
        "owner": "",
        "is_active": "on",
        "is_historical": "on" if scenario.is_historical else "",
        "_save": "Save",
    }
    return {**form, **changes}


def test_admin_saving_a_library_scenario_marks_it_edited(staff):
    scenario = StressScenario.objects.get(name="Oil Crash 65%")
    url = f"/admin/stress/stressscenario/{scenario.pk}/change/"
    response = staff.post(url, _change_form(scenario, shocks='{"USO": -0.6}'))
    assert response.status_code == 302
    scenario.refresh_from_db()
    assert scenario.edited
    assert scenario.shocks == {"Oil": -0.6}
    assert load_library()["skipped_edited"] == 1


def test_admin_change_form_rejects_bad_shocks(staff):
    scenario = StressScenario.objects.get(name="Oil Crash 65%")
    url = f"/admin/stress/stressscenario/{scenario.pk}/change/"
    response = staff.post(url, _change_form(scenario, shocks='{"Oil": -1.65}'))
    assert response.status_code == 200
    assert b"cannot fall more than 100%" in response.content
    scenario.refresh_from_db()
    assert not scenario.edited and scenario.shocks == {"Oil": -0.65}
