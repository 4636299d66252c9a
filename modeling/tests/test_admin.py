"""The modeling admin: sessions, their trades, snapshots, exports and reports are listed for
staff with what identifies them (every user's), a session's page shows its trades, and a
non-staff user is sent to log in."""

from __future__ import annotations

import pytest

from modeling.models import ModelingSession
from modeling.reports.services import report_queue
from modeling.services import trades_export
from modeling.tests.helpers import SESSIONS, add, open_session
from sigmasight.tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def worked(portfolio, user) -> ModelingSession:
    client = client_for(user)
    session_id = open_session(client, portfolio)
    add(client, session_id, symbol="JPM", quantity="10")
    assert client.post(f"{SESSIONS}{session_id}/save/").status_code in (200, 201)
    session = ModelingSession.objects.get(pk=session_id)
    trades_export(user=user, session=session, format="csv")
    report_queue(owner=user, portfolio=portfolio, kind="risk_summary", fmt="csv")
    return session


def test_modeling_changelists_show_what_each_row_is(worked, admin_client, portfolio):
    shown = {
        "modelingsession": ["what if", portfolio.name, "1 modeling session"],
        "proformatrade": ["JPM", "1 pro forma trade"],
        "modelingsessionsnapshot": [portfolio.name, "1 modeling session snapshot"],
        "exporthistory": ["csv", "1 export history"],
        "report": ["risk_summary", "1 report"],
    }
    for model, texts in shown.items():
        response = admin_client.get(f"/admin/modeling/{model}/")
        assert response.status_code == 200, model
        html = response.content.decode()
        for text in texts:
            assert text.lower() in html.lower(), (model, text)
    response = admin_client.get(f"/admin/modeling/modelingsession/{worked.pk}/change/")
    assert response.status_code == 200 and b"JPM" in response.content


def test_modeling_admin_refuses_a_non_staff_user(worked, client, user):
    client.force_login(user)
    for model in ("modelingsession", "proformatrade", "exporthistory", "report"):
        response = client.get(f"/admin/modeling/{model}/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"], model
