"""Storing corporate actions: from the provider chain (upsert, idempotent) and from a CSV file
(all or nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from marketdata.corporate_actions import corporate_actions_fetch
from marketdata.models import CorporateAction
from marketdata.providers.base import MarketDataProvider, ProviderError
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.tests.helpers import polygon, provider_for
from marketdata.tests.replay import ReplayServer, Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        replay.route("/v3/reference/splits", Reply(body=polygon("splits_AAPL.json")))
        replay.route("/v3/reference/dividends", Reply(body=polygon("dividends_AAPL.json")))
        yield replay


def test_fetch_stores_polygon_actions_once(server: ReplayServer) -> None:
    chain: list[MarketDataProvider] = [provider_for(server, [])]

    first = corporate_actions_fetch(
        symbols=["AAPL"], start=date(2020, 1, 1), end=date(2020, 12, 31), providers=chain
    )
    corporate_actions_fetch(
        symbols=["AAPL"], start=date(2020, 1, 1), end=date(2020, 12, 31), providers=chain
    )

    assert first.rows == 2
    assert first.by_source == {"polygon": 2}
    rows = {a.kind: a for a in CorporateAction.objects.select_related("security")}
    assert len(rows) == 2
    assert rows["split"].security.symbol == "AAPL"
    assert (rows["split"].split_to, rows["split"].split_from) == (Decimal(4), Decimal(1))
    assert rows["cash_dividend"].cash_amount == Decimal("0.205")
    assert rows["cash_dividend"].source == "polygon"


class Failing(SyntheticProvider):
    name = "failing"

    def corporate_actions(self, symbols, start, end):
        raise ProviderError(self.name, "down")


def test_fetch_falls_through_a_failing_provider(server: ReplayServer) -> None:
    report = corporate_actions_fetch(
        symbols=["AAPL"],
        start=date(2020, 1, 1),
        end=date(2020, 12, 31),
        providers=[Failing(), provider_for(server, [])],
    )

    assert report.errors == {"failing": "failing: down"}
    assert report.by_source == {"polygon": 2}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "actions.csv"
    path.write_text(text)
    return path


HEADER = "symbol,kind,ex_date,pay_date,split_to,split_from,cash_amount\n"


def test_import_command_stores_a_valid_file(tmp_path: Path, capsys) -> None:
    path = write(
        tmp_path,
        HEADER + "AAPL,split,2020-08-31,,4,1,\nKO,cash_dividend,2024-03-04,2024-04-01,,,0.485\n",
    )

    call_command("import_corporate_actions", str(path), "--dry-run")
    assert CorporateAction.objects.count() == 0
    call_command("import_corporate_actions", str(path))
    call_command("import_corporate_actions", str(path))

    assert CorporateAction.objects.count() == 2
    assert set(CorporateAction.objects.values_list("source", flat=True)) == {"csv"}
    assert "imported 2 corporate actions" in capsys.readouterr().out


def test_import_command_refuses_bad_rows_and_writes_nothing(tmp_path: Path, capsys) -> None:
    path = write(
        tmp_path,
        HEADER
        + "AAPL,split,2020-08-31,,4,1,\n"  # fine, but the file is refused as a whole
        + "MSFT,split,2020-08-31,,0,1,\n"  # ratio not positive
        + "KO,cash_dividend,2024-03-04,2024-03-01,,,0.5\n"  # paid before the ex-date
        + "KO,dividend,2024-03-04,,,,0.5\n"  # unknown kind
        + "IBM,cash_dividend,2024-03-09,,,,0.5\n"  # a Saturday
        + "AAPL,split,2020-08-31,,4,1,\n",  # the same action twice
    )

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_corporate_actions", str(path))

    assert CorporateAction.objects.count() == 0
    errors = capsys.readouterr().err
    assert "row 3 [split_to]" in errors
    assert "row 4 [pay_date]" in errors
    assert "row 5 [kind]" in errors
    assert "row 6 [ex_date]" in errors
    assert "row 7 [ex_date]" in errors


def test_import_command_refuses_a_missing_column(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "symbol,kind,ex_date\nAAPL,split,2020-08-31\n")

    with pytest.raises(CommandError):
        call_command("import_corporate_actions", str(path))

    assert "[split_to]" in capsys.readouterr().err
    assert CorporateAction.objects.count() == 0


def test_constraints_refuse_a_split_without_ratio() -> None:
    from django.db import IntegrityError

    from marketdata.services import securities_ensure

    with pytest.raises(IntegrityError):
        CorporateAction.objects.create(
            security_id=securities_ensure(["AAPL"])["AAPL"],
            kind="split",
            ex_date=date(2020, 8, 31),
            source="admin",
        )
