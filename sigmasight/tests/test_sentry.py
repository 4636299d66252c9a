"""Error reporting: with SENTRY_DSN, unhandled errors of views and Celery tasks reach Sentry over
its real HTTP transport (here a loopback server that records the envelopes) without personal
data; without it sentry_sdk is never imported.

Each case runs in a fresh process: the settings start Sentry when they are loaded, once per
process, and its Django integration patches Django for the life of the process.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sigmasight.servers import ROOT

SECRET_BODY = "hunter2-is-my-password"
SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo3fQ.c2lnbmF0dXJl"

# Three failures: an API view (the exception handler answers 500 and logs the error), a plain
# Django view (Django's got_request_exception) and an eager Celery task.
SCRIPT = textwrap.dedent(
    f"""
    import http.client, json, sys, threading, types
    from wsgiref.simple_server import WSGIRequestHandler, make_server
    import django
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def plain(request):
        raise ZeroDivisionError("plain view failed")

    urls = types.ModuleType("sentry_test_urls")
    urls.urlpatterns = [path("plain/", plain), path("", include("sigmasight.tests.urls_errors"))]
    sys.modules["sentry_test_urls"] = urls

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    def call(method, url, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        headers = {{"Authorization": "Bearer {SECRET_TOKEN}",
                    "Content-Type": "application/x-www-form-urlencoded"}}
        conn.request(method, url, body, headers)
        status = conn.getresponse().status
        conn.close()
        return status

    # Django's own WSGI handler over real HTTP, as under gunicorn.
    with override_settings(ROOT_URLCONF="sentry_test_urls"):
        server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        statuses = [call("GET", "/fail/crash/"), call("POST", "/plain/", "password={SECRET_BODY}")]
        server.shutdown()

    from sigmasight.celery import app

    @app.task(name="sentry_test.boom")
    def boom():
        raise LookupError("task failed")

    try:
        boom.apply(throw=True)
    except LookupError:
        pass

    imported = "sentry_sdk" in sys.modules
    integrations = []
    if imported:
        import sentry_sdk
        integrations = sorted(sentry_sdk.get_client().integrations)
        sentry_sdk.flush(timeout=10)
    print(json.dumps({{"statuses": statuses, "sentry_imported": imported,
                      "integrations": integrations}}))
    """
)


class Recorder:
    """A loopback Sentry: records every envelope POSTed to it, answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                assert encoding in ("", "gzip"), encoding
                if encoding == "gzip":
                    body = gzip.decompress(body)
                recorder.posts.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.httpd.server_address[1]}/42"

    def events(self) -> list[dict]:
        """The event items of every envelope (sessions, client reports left out)."""
        events = []
        for _, _, body in self.posts:
            rest = body.split(b"\n", 1)[1]  # the envelope header
            while rest.strip():
                header_line, rest = rest.split(b"\n", 1)
                header = json.loads(header_line)
                length = header.get("length")
                if length is None:
                    payload, _, rest = rest.partition(b"\n")
                else:
                    payload, rest = rest[:length], rest[length + 1 :]
                if header.get("type") == "event":
                    events.append(json.loads(payload))
        return events


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def run(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _exception_types(event: dict) -> list[str]:
    return [value["type"] for value in event.get("exception", {}).get("values", [])]


def test_sentry_receives_unhandled_errors_of_views_and_tasks_without_personal_data(recorder):
    outcome = run(
        SENTRY_DSN=recorder.dsn, SENTRY_ENVIRONMENT="ci-test", SENTRY_RELEASE="sigmasight@1.2.3"
    )

    assert outcome["statuses"] == [500, 500]
    assert {"django", "celery"} <= set(outcome["integrations"])
    assert all(path == "/api/42/envelope/" for path, _, _ in recorder.posts)
    events = recorder.events()
    by_type = {kind: event for event in events for kind in _exception_types(event)}
    assert {"RuntimeError", "ZeroDivisionError", "LookupError"} <= by_type.keys(), events
    assert by_type["RuntimeError"]["logger"] == "sigmasight.api"  # the API's exception handler
    assert by_type["RuntimeError"]["request"]["url"].endswith("/fail/crash/")
    assert by_type["ZeroDivisionError"]["request"]["url"].endswith("/plain/")
    assert by_type["ZeroDivisionError"]["request"]["method"] == "POST"
    assert by_type["LookupError"]["exception"]["values"][-1]["mechanism"]["type"] == "celery"
    for event in events:
        assert event["environment"] == "ci-test"
        assert event["release"] == "sigmasight@1.2.3"
        assert "ip_address" not in event.get("user", {})
        assert not event.get("request", {}).get("data")  # no request bodies
    raw = b"".join(body for _, _, body in recorder.posts).decode()
    assert SECRET_BODY not in raw
    assert SECRET_TOKEN not in raw and "Bearer" not in raw  # the Authorization header blanked


def test_sentry_is_not_imported_without_a_dsn(recorder):
    outcome = run()
    assert outcome == {"statuses": [500, 500], "sentry_imported": False, "integrations": []}
    assert recorder.posts == []
