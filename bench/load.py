"""Load test: the demo's dashboard reads against gunicorn, idle and while the daily batch runs.

`make load` (python -m bench.load) makes a fresh database for each backend (PostgreSQL as
`sigmasight_load` at BENCH_POSTGRES_URL's server, then SQLite in a temporary directory),
migrates it, seeds the demo, starts gunicorn with 2 sync workers on a free loopback port with the
production settings (PostgreSQL with Redis at BENCH_REDIS_URL, default db 9, emptied first: the
API cache and the broker, as in production; then the same with the API cache off, the
alternative the cache is measured against; SQLite without Redis, the embedded default, where the
API cache is off), logs in as the three demo users and runs each phase for a bounded time:
20 and 100 concurrent users, once idle and once while `manage.py run_batch` recomputes the demo's
session in a subprocess (started again whenever it finishes, so the whole phase runs under it).
Then the workbench's pages (bench/load_pages.py): --page-users visitors signed in through the
sign-in form, the server's time per page from the Server-Timing header (target p95 < 100 ms).

A user is a thread with its own connection that asks for summary, positions, Greeks, factor
exposures and stress results of its portfolio in turn, thinking a random 0 to 2 x --think seconds
between requests (mean 1 s by default; --think 0 measures capacity instead). Errors are
responses other than 200 and failed connections. The per-user rate limit (100/min) would answer
429 to such users, so the server runs with every SIGMASIGHT_THROTTLE_* rate raised: the limits
are not what is measured. Not part of `make bench` (bench_*.py): a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import ROOT, drop_postgres, fresh_postgres, print_table
from bench.load_pages import PAGES, STAFF_PAGES, PageSample, load_pages, sign_in
from sigmasight.servers import HOST, gunicorn

LOAD_DB = "sigmasight_load"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
UNCACHED = "PG cache off"  # PostgreSQL and Redis with the API cache off: the cache's alternative
UNCACHED_SQLITE = "SQLite cache off"  # the embedded default (file cache) with the cache off
BACKENDS = ("postgres", "postgres-uncached", "sqlite", "sqlite-uncached")
PASSWORD = "load-demo-password-1"
DEMO_EMAILS = (
    "demo_growth@sigmasight.local",
    "demo_value@sigmasight.local",
    "demo_balanced@sigmasight.local",
)
ADMIN_EMAIL = "admin@sigmasight.local"
THROTTLE = "1000000/min"
ENDPOINTS = {
    "summary": "/api/v1/portfolios/{id}/summary/",
    "positions": "/api/v1/positions/?portfolio={id}",
    "greeks": "/api/v1/risk/greeks/?portfolio={id}",
    "factors": "/api/v1/factors/exposures/?portfolio={id}",
    "stress": "/api/v1/stress/results/{id}/",
}


@dataclass(frozen=True)
class Sample:
    endpoint: str
    seconds: float
    ok: bool


@dataclass
class Phase:
    backend: str
    users: int
    phase: str
    duration: float
    samples: list[Sample] = field(default_factory=list)
    batch_runs: int = 0
    batch_failures: int = 0
    pages: list[PageSample] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values` (q in 0..100)."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), math.ceil(q / 100 * len(values))))
    return values[rank - 1]


def _fresh_redis() -> str | None:
    """BENCH_REDIS_URL's database, emptied: the production setup's cache (and broker)."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no Redis for the load test"
        sys.stderr.write(f"Redis unavailable for the load test: {exc}\n")
        return None
    return REDIS_URL


def _server_env(database_url: str, data_dir: str, redis_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sigmasight.settings.base",
        "DATABASE_URL": database_url,
        "SIGMASIGHT_DATA_DIR": data_dir,
        "SECRET_KEY": "load-test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DEBUG": "false",
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SIGMASIGHT_MARKET_DATA_SOURCE": "synthetic",
        "SIGMASIGHT_DEMO_PASSWORD": PASSWORD,
        "SIGMASIGHT_THROTTLE_USER": THROTTLE,
        "SIGMASIGHT_THROTTLE_ANON": THROTTLE,
        "SIGMASIGHT_THROTTLE_LOGIN_IP": THROTTLE,
        "SIGMASIGHT_THROTTLE_LOGIN_EMAIL": THROTTLE,
        "LOG_LEVEL": "WARNING",
    }
    for name in ("REDIS_URL", "POLYGON_API_KEY"):
        env.pop(name, None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _manage(env: dict[str, str], *args: str, timeout: int) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _request(
    port: int, method: str, path: str, body: dict | None = None, token: str | None = None
) -> tuple[int, object]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


@dataclass(frozen=True)
class Login:
    token: str
    portfolio: int


def _logins(port: int) -> list[Login]:
    logins = []
    for email in DEMO_EMAILS:
        status, body = _request(
            port, "POST", "/api/v1/auth/login/", {"email": email, "password": PASSWORD}
        )
        if status != 200:
            raise RuntimeError(f"login of {email} answered {status}: {body}")
        token = body["access"]
        _, portfolios = _request(port, "GET", "/api/v1/portfolios/", token=token)
        logins.append(Login(token, portfolios["results"][0]["id"]))
    return logins


def _user(
    port: int, login: Login, deadline: float, think: float, samples: list[Sample], seed: int
) -> None:
    rng = random.Random(seed)
    names = list(ENDPOINTS)
    headers = {"Authorization": f"Bearer {login.token}"}
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    index = rng.randrange(len(names))
    time.sleep(rng.uniform(0, think))  # users arrive spread over one think time
    while time.monotonic() < deadline:
        name = names[index % len(names)]
        index += 1
        path = ENDPOINTS[name].format(id=login.portfolio)
        start = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
        samples.append(Sample(name, time.perf_counter() - start, ok))
        pause = rng.uniform(0, 2 * think)
        if pause:
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    conn.close()


def _load(port: int, logins: list[Login], users: int, seconds: float, think: float) -> list:
    samples: list[Sample] = []  # list.append is atomic: the threads share it
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=_user,
            args=(port, logins[i % len(logins)], deadline, think, samples, i),
            daemon=True,
        )
        for i in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


class _Batch:
    """`manage.py run_batch` for the demo's session, started again whenever it finishes."""

    def __init__(self, env: dict[str, str], as_of: str) -> None:
        self.env, self.as_of = env, as_of
        self.stop = threading.Event()
        self.runs = self.failures = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            done = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "run_batch",
                    "--date",
                    self.as_of,
                    "--verbosity",
                    "0",
                ],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            self.runs += 1
            if done.returncode != 0:
                self.failures += 1
                sys.stderr.write(f"run_batch failed:\n{done.stdout}\n{done.stderr}\n")

    def __enter__(self) -> _Batch:
        self.thread.start()
        time.sleep(1.0)  # the batch's own start-up (Django, imports) is not the batch
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run_backend(
    label: str,
    url: str,
    tmp: str,
    args: argparse.Namespace,
    redis_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> list[Phase]:
    env = {**_server_env(url, tmp, redis_url), **(extra_env or {})}
    started = time.monotonic()
    _manage(env, "migrate", "--noinput", timeout=600)
    _manage(env, "seed_demo", timeout=1800)
    _manage(env, "collectstatic", "--noinput", timeout=600)  # the pages' {% static %} manifest
    sys.stderr.write(f"{label}: migrated and seeded in {time.monotonic() - started:.0f}s\n")
    phases = []
    with gunicorn(env, workers=args.workers, log=Path(tmp) / "gunicorn.log") as port:
        logins = _logins(port)
        _, summary = _request(
            port, "GET", ENDPOINTS["summary"].format(id=logins[0].portfolio), token=logins[0].token
        )
        as_of = summary["as_of"]
        _load(port, logins, users=4, seconds=3, think=0)  # warm both workers up
        for users in args.users:
            for name in ("idle", "batch"):
                phase = Phase(label, users, name, args.duration)
                if name == "idle":
                    phase.samples = _load(port, logins, users, args.duration, args.think)
                else:
                    with _Batch(env, as_of) as batch:
                        phase.samples = _load(port, logins, users, args.duration, args.think)
                    phase.batch_runs, phase.batch_failures = batch.runs, batch.failures
                phases.append(phase)
                sys.stderr.write(f"{label}: {users} users {name}: {len(phase.samples)} requests\n")
        # The workbench's pages: the demo users' and the staff admin's sessions, idle.
        page_logins = [
            sign_in(port, email, PASSWORD, login.portfolio, staff=False)
            for email, login in zip(DEMO_EMAILS, logins, strict=True)
        ]
        page_logins.append(sign_in(port, ADMIN_EMAIL, PASSWORD, None, staff=True))
        load_pages(port, page_logins, users=4, seconds=3, think=0)  # warm up
        phase = Phase(label, args.page_users, "pages", args.duration)
        phase.pages = load_pages(port, page_logins, args.page_users, args.duration, args.think)
        phases.append(phase)
        sys.stderr.write(f"{label}: pages: {len(phase.pages)} requests\n")
    return phases


def _ms(seconds: float) -> float:
    return seconds * 1000


def report_pages(phases: list[Phase], args: argparse.Namespace) -> None:
    """Per page and backend: requests, errors, server time p50/p95 (Server-Timing), client p95."""
    rows = []
    for p in phases:
        for name in [*PAGES, *STAFF_PAGES]:
            samples = [s for s in p.pages if s.page == name]
            server = sorted(s.server_ms for s in samples if s.server_ms is not None)
            client = sorted(s.seconds for s in samples)
            p95 = _pct(server, 95) if server else float("nan")
            rows.append(
                [
                    p.backend,
                    name,
                    len(samples),
                    sum(not s.ok for s in samples),
                    _pct(server, 50) if server else float("nan"),
                    p95,
                    _ms(_pct(client, 95)) if client else float("nan"),
                    "met" if p95 < 100 and all(s.ok for s in samples) else "NOT met",
                ]
            )
    print_table(
        f"Pages: {args.page_users} visitors for {args.duration:.0f} s, idle (times in ms; server "
        "= the Server-Timing header; target p95 < 100 ms)",
        [
            "backend",
            "page",
            "requests",
            "errors",
            "server p50",
            "server p95",
            "client p95",
            "target",
        ],
        rows,
    )


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    report_pages([p for p in phases if p.phase == "pages"], args)
    phases = [p for p in phases if p.phase != "pages"]
    rows = []
    off_of = {"PostgreSQL": UNCACHED, "SQLite": UNCACHED_SQLITE}  # each cache's alternative
    uncached = {
        (p.backend, p.users, p.phase): _pct(sorted(s.seconds for s in p.samples), 95)
        for p in phases
        if p.backend in off_of.values()
    }
    for p in phases:
        times = sorted(s.seconds for s in p.samples)
        errors = sum(not s.ok for s in p.samples)
        batch = "" if p.phase == "idle" else f"{p.batch_runs} runs, {p.batch_failures} failed"
        off = uncached.get((off_of.get(p.backend, ""), p.users, p.phase))
        ratio = f"{off / _pct(times, 95):.1f}x" if off and times else ""
        rows.append(
            [
                p.backend,
                p.users,
                p.phase,
                len(times),
                len(times) / p.duration,
                _ms(_pct(times, 50)),
                _ms(_pct(times, 95)),
                _ms(_pct(times, 99)),
                _ms(times[-1]) if times else float("nan"),
                errors,
                batch,
                ratio,
            ]
        )
    print_table(
        f"Load: gunicorn, {args.workers} sync workers, {args.duration:.0f} s per phase, think "
        f"time uniform 0-{2 * args.think:g} s, throttles raised to {THROTTLE} (times in ms)",
        [
            "backend",
            "users",
            "phase",
            "requests",
            "req/s",
            "p50",
            "p95",
            "p99",
            "max",
            "errors",
            "batch",
            "p95 cache off / on",
        ],
        rows,
    )
    short = {"PostgreSQL": "PG", UNCACHED: "PG-off", "SQLite": "SQ", UNCACHED_SQLITE: "SQ-off"}
    headers = ["endpoint"] + [f"{short[p.backend]} {p.users}u {p.phase}" for p in phases]
    per_endpoint = []
    for name in ENDPOINTS:
        row: list[object] = [name]
        for p in phases:
            row.append(_ms(_pct(sorted(s.seconds for s in p.samples if s.endpoint == name), 95)))
        per_endpoint.append(row)
    print_table("p95 per endpoint (ms)", headers, per_endpoint)
    for p in phases:
        if p.backend == "PostgreSQL" and p.users == 20:
            times = sorted(s.seconds for s in p.samples)
            errors = sum(not s.ok for s in p.samples)
            met = _ms(_pct(times, 95)) < 100 and errors == 0
            sys.stdout.write(
                f"Target (PostgreSQL, 20 users, {p.phase}): p95 < 100 ms and no errors: "
                f"{'met' if met else 'NOT met'}\n"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--users", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--think", type=float, default=1.0, help="mean think time (s)")
    parser.add_argument("--page-users", type=int, default=20, help="visitors of the pages")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--backend",
        choices=list(BACKENDS),
        action="append",
        help="default: all four (-uncached: the API cache off, the cache's alternative)",
    )
    args = parser.parse_args(argv)
    backends = args.backend or list(BACKENDS)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, label, extra in (
            ("postgres", "PostgreSQL", {}),
            ("postgres-uncached", UNCACHED, {"SIGMASIGHT_API_CACHE_TTL_S": "0"}),
        ):
            if backend not in backends:
                continue
            url = fresh_postgres(LOAD_DB)
            if url is None:
                sys.stdout.write(f"{label}: skipped, PostgreSQL not reachable\n")
                continue
            try:
                phases += run_backend(label, url, tmp, args, _fresh_redis(), extra)
            finally:
                drop_postgres(LOAD_DB)
        for backend, label, extra in (
            ("sqlite", "SQLite", {}),
            ("sqlite-uncached", UNCACHED_SQLITE, {"SIGMASIGHT_API_CACHE_TTL_S": "0"}),
        ):
            if backend not in backends:
                continue
            sqlite_dir = Path(tmp) / backend  # its own database and file cache
            sqlite_dir.mkdir()
            url = f"sqlite:///{sqlite_dir}/load.sqlite3"
            phases += run_backend(label, url, str(sqlite_dir), args, extra_env=extra)
    report(phases, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
