"""The read cache (sigmasight/api/caching.py) and JSON compression, against the run's real cache:
Redis on the PostgreSQL leg, local memory on SQLite. The Redis-down test puts the real Redis of
this machine behind a `FaultProxy` on either leg (skipped when there is none)."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from analytics import batch
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import prices_fetch_and_cache
from sigmasight import cachesafe
from sigmasight.api import caching
from sigmasight.outbox.tests.redisproxy import REDIS_HOST, REDIS_PORT, redis_or_skip
from sigmasight.tests.faultproxy import FaultProxy
from sigmasight.tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1"
AS_OF = date(2026, 11, 20)
REDIS_DB = 12  # this module's own Redis database
PREFIX = "caching-test"


def reads(pk: int) -> list[str]:
    """Every cached read of portfolio `pk`, for the batch's session."""
    on = f"as_of={AS_OF}"
    return [
        f"{API}/portfolios/{pk}/summary/?{on}",
        f"{API}/positions/?portfolio={pk}",
        f"{API}/positions/grouped/?portfolio={pk}&by=underlying",
        f"{API}/risk/greeks/?portfolio={pk}&{on}",
        f"{API}/risk/factors/?portfolio={pk}&{on}",
        f"{API}/risk/metrics/?portfolio={pk}&{on}",
        f"{API}/risk/scenarios/market/?portfolio={pk}&{on}",
        f"{API}/risk/scenarios/rates/?portfolio={pk}&{on}",
        f"{API}/risk/scenarios/accuracy/?portfolio={pk}&{on}",
        f"{API}/factors/exposures/?portfolio={pk}&{on}",
        f"{API}/factors/exposures/?portfolio={pk}&{on}&level=position",
        f"{API}/stress/results/{pk}/",
        f"{API}/portfolios/{pk}/exposures/",
        f"{API}/portfolios/{pk}/performance/",
    ]


@pytest.fixture(autouse=True)
def _closed_breaker(settings):
    """No test inherits (or leaves) an open cache breaker or a pending bump. The cache is on in
    both legs (the suite keeps it off without Redis unless asked: sigmasight/settings/test.py)."""
    settings.SIGMASIGHT_API_CACHE_TTL_S = 600
    cachesafe.cache_breaker.reset()
    caching._pending.clear()
    yield
    cachesafe.cache_breaker.reset()
    caching._pending.clear()


@pytest.fixture
def computed(books):
    batch.run_daily_batch(AS_OF)
    return books[0]


def get(client, url: str, outcome: str, **extra):
    response = client.get(url, **extra)
    assert response.status_code == 200, (url, response.content)
    assert response["X-Cache"] == outcome, url
    return response.json()


def buy_msft(client, pk: int):
    created = client.post(
        f"{API}/positions/",
        {
            "portfolio": pk,
            "symbol": "MSFT",
            "quantity": "10",
            "entry_price": "400",
            "entry_date": "2024-03-01",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    return created


def test_a_second_read_is_a_hit_with_the_same_body(auth_client, computed):
    for url in reads(computed.pk):
        first = get(auth_client, url, "miss")
        assert get(auth_client, url, "hit") == first, url


def test_the_default_portfolio_shares_the_summary_entry(auth_client, computed):
    summary = get(auth_client, f"{API}/portfolios/{computed.pk}/summary/?as_of={AS_OF}", "miss")
    assert get(auth_client, f"{API}/portfolio/?as_of={AS_OF}", "hit") == summary


def test_another_user_never_gets_a_cached_portfolio(auth_client, other_client, computed):
    pk = computed.pk
    for url in reads(pk):
        get(auth_client, url, "miss")
    for url in reads(pk):
        response = other_client.get(url)
        if "portfolio=" in url and url.startswith(f"{API}/positions/"):
            # A filter on another user's portfolio answers like one with no positions.
            assert response.status_code == 200 and "X-Cache" not in response
            assert response.json() in (
                {"count": 0, "next": None, "previous": None, "results": []},
                [],
            )
        else:
            assert_envelope(response, 404)


def test_the_batch_invalidates_with_new_numbers(auth_client, books):
    pk = books[0].pk
    results = f"{API}/stress/results/{pk}/"
    greeks = f"{API}/risk/greeks/?portfolio={pk}&as_of={AS_OF}"
    assert get(auth_client, results, "miss") == []
    before = get(auth_client, greeks, "miss")
    assert get(auth_client, results, "hit") == []
    batch.run_daily_batch(AS_OF)
    after = get(auth_client, results, "miss")
    assert after and {row["date"] for row in after} == {AS_OF.isoformat()}
    assert get(auth_client, greeks, "miss") != before
    with override_settings(SIGMASIGHT_API_CACHE_TTL_S=0):
        assert get(auth_client, results, "bypass") == after


def test_book_changes_invalidate(auth_client, computed):
    pk = computed.pk
    positions = f"{API}/positions/?portfolio={pk}"
    summary = f"{API}/portfolios/{pk}/summary/?as_of={AS_OF}"
    count = get(auth_client, positions, "miss")["count"]
    get(auth_client, summary, "miss")

    created = buy_msft(auth_client, pk)
    position = created.json()["id"]
    assert get(auth_client, positions, "miss")["count"] == count + 1
    get(auth_client, summary, "miss")

    assert auth_client.patch(f"{API}/positions/{position}/", {"quantity": "25"}).status_code == 200
    listed = get(auth_client, positions, "miss")["results"]
    assert next(p for p in listed if p["id"] == position)["quantity"] == "25.000000"

    tag = auth_client.post(f"{API}/tags/", {"name": "Core"}).json()["id"]
    assert (
        auth_client.put(f"{API}/positions/{position}/tags/", {"tag_ids": [tag]}).status_code == 200
    )
    listed = get(auth_client, positions, "miss")["results"]
    assert [t["name"] for t in next(p for p in listed if p["id"] == position)["tags"]] == ["Core"]
    assert auth_client.patch(f"{API}/tags/{tag}/", {"name": "Satellite"}).status_code == 200
    listed = get(auth_client, positions, "miss")["results"]
    assert [t["name"] for t in next(p for p in listed if p["id"] == position)["tags"]] == [
        "Satellite"
    ]

    assert auth_client.delete(f"{API}/positions/{position}/").status_code == 204
    assert get(auth_client, positions, "miss")["count"] == count

    upload = SimpleUploadedFile(
        "positions.csv",
        b"symbol,quantity,entry_price,entry_date\nNVDA,5,120,2024-02-01\n",
        "text/csv",
    )
    response = auth_client.post(
        f"{API}/portfolios/{pk}/upload/", {"file": upload, "mode": "append"}, format="multipart"
    )
    assert response.status_code == 200, response.content
    assert get(auth_client, positions, "miss")["count"] == count + 1

    cash = get(auth_client, summary, "miss")["cash"]
    assert auth_client.patch(f"{API}/portfolios/{pk}/", {"cash": "1234.00"}).status_code == 200
    assert get(auth_client, summary, "miss")["cash"] == "1234.00" != cash


def test_new_closes_invalidate_every_portfolio(auth_client, computed):
    summary = f"{API}/portfolios/{computed.pk}/summary/?as_of={AS_OF}"
    get(auth_client, summary, "miss")
    get(auth_client, summary, "hit")
    prices_fetch_and_cache(
        symbols=["MSFT"], start=date(2026, 11, 2), end=AS_OF, providers=[SyntheticProvider()]
    )
    get(auth_client, summary, "miss")


def test_as_of_variants_are_cached_apart(auth_client, computed):
    url = f"{API}/portfolios/{computed.pk}/summary/"
    friday = get(auth_client, url, "miss", data={"as_of": "2026-11-20"})
    thursday = get(auth_client, url, "miss", data={"as_of": "2026-11-19"})
    assert (friday["as_of"], thursday["as_of"]) == ("2026-11-20", "2026-11-19")
    assert get(auth_client, url, "hit", data={"as_of": "2026-11-20"}) == friday
    # A Sunday resolves to Friday's session: the same entry.
    assert get(auth_client, url, "hit", data={"as_of": "2026-11-22"}) == friday


def test_a_lost_generation_counter_never_serves_an_old_entry(auth_client, computed):
    """Evicted (or Redis restarted without its data): the counter starts again at a fresh value,
    so entries cached under the old one are not read."""
    from django.core.cache import cache

    url = f"{API}/portfolios/{computed.pk}/summary/?as_of={AS_OF}"
    get(auth_client, url, "miss")
    get(auth_client, url, "hit")
    cache.delete(caching.generation_key(computed.pk))
    get(auth_client, url, "miss")
    get(auth_client, url, "hit")


def test_errors_are_not_cached(auth_client, computed):
    url = f"{API}/portfolios/{computed.pk}/summary/"
    response = auth_client.get(url, {"as_of": "not-a-date"})
    assert_envelope(response, 400)
    assert "X-Cache" not in response
    get(auth_client, url, "miss", data={"as_of": "2026-11-20"})


def test_a_zero_ttl_turns_the_cache_off(auth_client, computed):
    url = f"{API}/portfolios/{computed.pk}/summary/?as_of={AS_OF}"
    with override_settings(SIGMASIGHT_API_CACHE_TTL_S=0):
        body = get(auth_client, url, "bypass")
        assert get(auth_client, url, "bypass") == body
    positions = f"{API}/positions/?portfolio={computed.pk}"
    with override_settings(SIGMASIGHT_API_CACHE_TTL_S=0):
        assert "X-Cache" not in auth_client.get(positions)


@pytest.fixture
def redis_behind_proxy():
    """The default cache is the real Redis through a FaultProxy (database 12, keys under their
    own prefix, deleted afterwards)."""
    direct = redis_or_skip(REDIS_DB)
    proxy = FaultProxy(REDIS_HOST, REDIS_PORT).start()
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://{proxy.url_netloc()}/{REDIS_DB}",
            "KEY_PREFIX": PREFIX,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    try:
        # override_settings resets django.core.cache's connections on entry and on exit.
        with override_settings(CACHES=caches):
            yield proxy
    finally:
        proxy.cut()
        keys = list(direct.scan_iter(f"{PREFIX}:*"))
        if keys:
            direct.delete(*keys)
        from sigmasight.api.throttling import throttle_cache

        throttle_cache.local.clear()


def test_with_redis_down_reads_are_computed_and_writes_succeed(
    redis_behind_proxy, auth_client, computed
):
    pk = computed.pk
    urls = reads(pk)
    cached = {url: get(auth_client, url, "miss") for url in urls}
    assert get(auth_client, urls[0], "hit") == cached[urls[0]]

    redis_behind_proxy.cut()
    for url in urls:
        assert get(auth_client, url, "bypass") == cached[url], url
    assert not cachesafe.cache_available()
    buy_msft(auth_client, pk)
    positions = f"{API}/positions/?portfolio={pk}"
    assert get(auth_client, positions, "bypass")["count"] == cached[positions]["count"] + 1
    assert caching._pending  # the bump is kept for when Redis returns

    # Back: the pending bump goes first, so the entry cached before the write is never served.
    redis_behind_proxy.restore()
    cachesafe.cache_breaker.reset()
    assert get(auth_client, positions, "miss")["count"] == cached[positions]["count"] + 1
    assert not caching._pending
    assert get(auth_client, positions, "hit")["count"] == cached[positions]["count"] + 1


def test_a_failing_cache_call_falls_back(auth_client, computed, monkeypatch):
    """Not only connection errors: whatever a cache call raises, the view computes."""
    url = f"{API}/portfolios/{computed.pk}/summary/?as_of={AS_OF}"
    body = get(auth_client, url, "miss")

    class Broken:
        def __getattr__(self, name: str):
            def call(*args, **kwargs):
                raise RuntimeError("unpickling failed")

            return call

    monkeypatch.setattr(caching, "cache", Broken())
    assert get(auth_client, url, "bypass") == body


def test_large_json_is_gzipped_and_small_json_is_not(auth_client, computed):
    url = f"{API}/stress/results/{computed.pk}/"
    plain = auth_client.get(url)
    assert len(plain.content) > 1024 and "Content-Encoding" not in plain
    zipped = auth_client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"]
    assert json.loads(gzip.decompress(zipped.content)) == plain.json()

    small = auth_client.get(f"{API}/auth/me/", HTTP_ACCEPT_ENCODING="gzip")
    assert small.status_code == 200 and 200 < len(small.content) < 1024
    assert "Content-Encoding" not in small


def test_an_admin_edit_drops_the_cached_reads(auth_client, client, user, books):
    """The admin writes around the services (here: deleting a tag with the changelist action):
    the next read is computed again and no longer shows it."""
    from portfolios.models import Tag
    from sigmasight.accounts.tests.factories import UserFactory

    pk = books[0].pk
    position = books[0].positions.get(symbol="AAPL")
    tag = Tag.objects.create(owner=user, name="hedge")
    response = auth_client.put(f"{API}/positions/{position.pk}/tags/", {"tag_ids": [tag.pk]})
    assert response.status_code == 200, response.content
    positions = f"{API}/positions/?portfolio={pk}"

    def tags_shown() -> set[str]:
        return {t["name"] for p in get(auth_client, positions, "hit")["results"] for t in p["tags"]}

    get(auth_client, positions, "miss")
    assert tags_shown() == {"hedge"}
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/portfolios/tag/",
        {"action": "delete_selected", "_selected_action": [tag.pk], "post": "yes"},
    )
    assert response.status_code == 302 and not Tag.objects.filter(pk=tag.pk).exists()
    get(auth_client, positions, "miss")
    assert tags_shown() == set()
