"""The demo, seeded once per module, for the workbench's page tests."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import pytest
from django.core.management import call_command

from modeling import demo
from portfolios.models import Portfolio
from sigmasight.accounts.models import User


@pytest.fixture(scope="module")
def demo_books(module_database) -> dict[str, tuple[User, Portfolio]]:
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    books = {}
    for book in demo.BOOKS:
        user = User.objects.get(email=book.email)
        books[book.key] = (user, Portfolio.objects.get(owner=user))
    return books


@pytest.fixture
def page_client(client):
    """A browser-like client (CSRF checks on): sign in with `page_client.force_login(user)`."""
    client.handler.enforce_csrf_checks = True
    return client


VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class Values(HTMLParser):
    """The numbers a page shows with the API value they rest on: (data-field, data-value), in
    document order, within the element whose id is `within` (the whole page when None)."""

    def __init__(self, within: str | None = None) -> None:
        super().__init__()
        self.within = within
        self.depth = 0 if within else 1
        self.values: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in VOID:
            pass
        elif self.depth:
            self.depth += 1
        elif self.within and found.get("id") == self.within:
            self.depth = 1
        if self.depth and "data-field" in found and found["data-field"]:
            self.values.append((str(found["data-field"]), str(found.get("data-value") or "")))

    def handle_endtag(self, tag: str) -> None:
        if self.depth and self.within and tag not in VOID:
            self.depth -= 1


def page_values(html: str, within: str | None = None) -> list[tuple[str, str]]:
    parser = Values(within)
    parser.feed(html)
    return parser.values


def at(body, path: str):
    value = body
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def shown(value) -> str:
    """How a page's data-value writes an API value (the template's str(); JSON's null: "")."""
    return "" if value is None else str(value)
