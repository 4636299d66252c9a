"""Multiprocess mode (PROMETHEUS_MULTIPROC_DIR): what several processes record, one scrape sums.

prometheus_client chooses its mode when it is imported, from the environment, so the writers
are fresh processes: two short Django processes, and a real gunicorn with two workers.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from sigmasight.servers import HOST, ROOT, gunicorn
from sigmasight.tests.helpers import METRICS_TOKEN as TOKEN
from sigmasight.tests.helpers import samples, scrape

pytestmark = pytest.mark.django_db

WRITER = textwrap.dedent(
    """
    import django
    django.setup()
    from django.test import Client
    from sigmasight import metrics
    assert Client().get("/api/v1/no-such-route/").status_code == 404
    metrics.batch_job_closed(job="greeks", status="succeeded", duration_s=2.5, portfolios_failed=1)
    """
)


def _env(directory: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "SENTRY_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        **extra,
    }


def test_metrics_multiprocess_scrape_sums_two_writer_processes(client, tmp_path):
    directory = tmp_path / "prometheus"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER], cwd=ROOT, env=_env(directory))
        for _ in range(2)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    assert len({path.stem.rsplit("_", 1)[1] for path in directory.glob("*.db")}) == 2  # two pids

    with override_settings(SIGMASIGHT_METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=directory):
        found = samples(scrape(client))

    def value(name: str, **labels: str) -> float:
        return found[(name, frozenset(labels.items()))]

    assert value("sigmasight_batch_jobs_total", job="greeks", status="succeeded") == 2
    assert value("sigmasight_batch_portfolios_failed_total", job="greeks") == 2
    assert value("sigmasight_batch_job_duration_seconds_count", job="greeks") == 2
    assert value("sigmasight_batch_job_duration_seconds_sum", job="greeks") == 5.0
    assert value("sigmasight_http_requests_total", method="GET", route="/api/", status="404") == 2
    # The outbox is read at scrape time, whatever the mode.
    assert value("sigmasight_outbox_pending_tasks") == 0


def _get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_metrics_gunicorn_workers_answer_the_same_totals(tmp_path):
    """Every scrape counts every worker's requests, whichever worker answers it. The server's
    database cannot be opened: the outbox gauges are left out and the rest is served."""
    env = _env(
        tmp_path / "prometheus",
        SIGMASIGHT_METRICS_TOKEN=TOKEN,
        DATABASE_URL=f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}",
    )
    with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as port:
        for _ in range(12):
            assert _get(port, "/api/v1/no-such-route/")[0] == 404
        assert _get(port, "/metrics")[0] == 404
        scrapes = []
        for _ in range(4):
            status, text = _get(port, "/metrics", TOKEN)
            assert status == 200, text
            scrapes.append(
                {
                    (s.name, s.labels.get("route"), s.labels.get("status")): s.value
                    for family in text_string_to_metric_families(text)
                    for s in family.samples
                    if s.name == "sigmasight_http_requests_total"
                }
            )
    for number, found in enumerate(scrapes):
        assert found[("sigmasight_http_requests_total", "/api/", "404")] == 12
        assert found[("sigmasight_http_requests_total", "/metrics", "404")] == 1
        # The earlier scrapes, counted once each, by whichever worker answered them.
        assert found.get(("sigmasight_http_requests_total", "/metrics", "200"), 0) == number
    assert "sigmasight_outbox_pending_tasks" not in text
