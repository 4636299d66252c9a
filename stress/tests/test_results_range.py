"""stress/results/ reads `?start=&end=` with the API's one date-range query: an inverted range is
a 400 naming `start`, in the error envelope, as on every other range endpoint."""

from __future__ import annotations

import pytest

from portfolios.models import Portfolio

pytestmark = pytest.mark.django_db

API = "/api/v1"
INVERTED = {"start": "2026-11-20", "end": "2026-11-19"}


@pytest.mark.parametrize(
    "path",
    [
        "/stress/results/{p}/",
        "/portfolios/{p}/exposures/",
        "/portfolios/{p}/performance/",
        "/market-data/prices/AAPL/",
    ],
)
def test_date_range_start_after_end_is_400_with_fields(path: str, auth_client, user) -> None:
    portfolio = Portfolio.objects.create(owner=user, name="Book")
    response = auth_client.get(API + path.format(p=portfolio.pk), INVERTED)
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": response.json()["error"]["message"],
            "fields": {"start": ["start must be on or before end."]},
        }
    }


def test_stress_results_range_on_the_same_day_is_200(auth_client, user) -> None:
    portfolio = Portfolio.objects.create(owner=user, name="Book")
    same = {"start": "2026-11-20", "end": "2026-11-20"}
    response = auth_client.get(f"{API}/stress/results/{portfolio.pk}/", same)
    assert response.status_code == 200 and response.json() == []


def test_stress_results_of_another_user_are_404(other_client, user) -> None:
    portfolio = Portfolio.objects.create(owner=user, name="Book")
    response = other_client.get(f"{API}/stress/results/{portfolio.pk}/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
