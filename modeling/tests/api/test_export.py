"""Trade export: CSV blotter and FIX 4.4 NewOrderSingle files, recorded in the history."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from modeling.models import ExportHistory
from modeling.tests.helpers import EXPIRY, add, open_session, parse_fix
from sigmasight.tests.helpers import assert_envelope, client_for

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/export/trades/"
HISTORY = "/api/v1/export/history/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def session_id(portfolio, user) -> int:
    """Trades against the frozen book: long 300 AAPL, short 120 MSFT, long 400 JPM."""
    client = client_for(user)
    session_id = open_session(client, portfolio)
    add(client, session_id, symbol="AAPL", quantity="-100", price="650.25")  # sale
    add(client, session_id, symbol="MSFT", quantity="-30")  # already short: short sale
    add(client, session_id, symbol="AAPL", quantity="-250")  # 200 held: goes short
    add(client, session_id, symbol="JPM", quantity="25")  # buy
    add(
        client,
        session_id,
        symbol="MSFT",
        quantity="-2",
        option_type="C",
        strike="400",
        expiration=EXPIRY.isoformat(),
        price="11.5",
    )
    return session_id


def export(client, session_id: int, fmt: str):
    response = client.post(EXPORT, {"session": session_id, "format": fmt}, format="json")
    assert response.status_code == 200, response.content
    return response


def test_fix_export_is_one_parseable_new_order_single_per_trade(user, session_id, settings):
    client = client_for(user)
    response = export(client, session_id, "fix")
    assert response["Content-Disposition"].endswith('.fix"')
    lines = response.content.split(b"\n")
    assert lines[-1] == b""
    orders = [dict(parse_fix(line)) for line in lines[:-1]]
    assert len(orders) == 5
    assert [o["35"] for o in orders] == ["D"] * 5
    assert [o["34"] for o in orders] == ["1", "2", "3", "4", "5"]
    assert {o["49"] for o in orders} == {settings.SIGMASIGHT_FIX_SENDER_COMP_ID}
    assert {o["56"] for o in orders} == {settings.SIGMASIGHT_FIX_TARGET_COMP_ID}
    assert [o["55"] for o in orders] == ["AAPL", "MSFT", "AAPL", "JPM", "MSFT"]
    assert [o["54"] for o in orders] == ["2", "5", "5", "1", "5"]
    assert [o["38"] for o in orders] == ["100", "30", "250", "25", "2"]
    assert orders[0]["44"] == "650.25" and orders[4]["44"] == "11.5"
    assert [o["167"] for o in orders] == ["CS", "CS", "CS", "CS", "OPT"]
    option = orders[4]
    assert (option["200"], option["541"], option["201"], option["202"]) == (
        f"{EXPIRY:%Y%m}",
        f"{EXPIRY:%Y%m%d}",
        "1",
        "400",
    )
    assert all("200" not in o for o in orders[:4])
    assert len({o["11"] for o in orders}) == 5
    assert all(o["40"] == "2" and len(o["60"]) == 21 for o in orders)
    record = ExportHistory.objects.get(pk=int(response["X-Export-Id"]))
    assert (record.format, record.trade_count, record.session_id) == ("fix", 5, session_id)
    assert record.file.read() == response.content


def test_csv_export_lists_the_trades_as_a_blotter(user, session_id):
    response = export(client_for(user), session_id, "csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["symbol"] for r in rows] == [
        "AAPL",
        "MSFT",
        "AAPL",
        "JPM",
        f"MSFT{EXPIRY:%y%m%d}C00400000",
    ]
    assert [r["side"] for r in rows] == ["sell", "sell_short", "sell_short", "buy", "sell_short"]
    assert rows[0]["quantity"] == "100" and rows[0]["price"] == "650.25"
    assert rows[0]["notional"] == f"{Decimal('100') * Decimal('650.25'):.2f}"
    assert rows[4]["security_type"] == "OPT" and rows[4]["strike"] == "400"
    assert rows[4]["notional"] == "2300.00"  # 2 contracts x 100 x 11.50


def test_history_lists_and_downloads_my_exports_only(user, other_user, session_id):
    client = client_for(user)
    first = export(client, session_id, "csv")
    second = export(client, session_id, "fix")
    body = client.get(HISTORY).json()
    assert [r["id"] for r in body["results"]] == [
        int(second["X-Export-Id"]),
        int(first["X-Export-Id"]),
    ]
    assert body["results"][0]["format"] == "fix" and body["results"][0]["trade_count"] == 5
    download = client.get(body["results"][1]["download"])
    assert download.status_code == 200 and download.content == first.content
    theirs = client_for(other_user)
    assert theirs.get(HISTORY).json()["count"] == 0
    export_id = first["X-Export-Id"]
    assert_envelope(theirs.get(f"{HISTORY}{export_id}/"), 404, "not_found")
    assert_envelope(theirs.get(f"{HISTORY}{export_id}/download/"), 404, "not_found")
    response = theirs.post(EXPORT, {"session": session_id, "format": "csv"}, format="json")
    assert_envelope(response, 404, "not_found")
    assert ExportHistory.objects.count() == 2


def test_bad_exports_are_400(user, portfolio):
    client = client_for(user)
    empty = open_session(client, portfolio)
    response = client.post(EXPORT, {"session": empty, "format": "csv"}, format="json")
    assert_envelope(response, 400, "no_trades")
    response = client.post(EXPORT, {"session": empty, "format": "xml"}, format="json")
    assert "format" in assert_envelope(response, 400, "validation_error")["fields"]
    assert not ExportHistory.objects.exists()
