"""The workbench's pages under load (`make load` runs this after each backend's API phases).

Each demo user (and the staff admin for the operations page) signs in through the sign-in form
(CSRF cookie and token, as a browser does) and asks for its pages in turn with the session
cookie; the server's own time comes from the `Server-Timing` header the outermost middleware
sets, so what is measured is the page, not the client's queueing. Target: p95 of server time
under 100 ms for every page on the demo.
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from sigmasight.servers import HOST

PAGES = {
    "overview": "/portfolios/{id}/",
    "positions": "/portfolios/{id}/positions/",
    "risk": "/portfolios/{id}/risk/",
    "stress": "/portfolios/{id}/stress/",
    "whatif": "/portfolios/{id}/whatif/",
    "reports": "/portfolios/{id}/reports/",
    "alerts": "/alerts/",
}
STAFF_PAGES = {"operations": "/operations/"}
TIMING = re.compile(r"app;dur=([0-9.]+)")


@dataclass(frozen=True)
class PageSample:
    page: str
    seconds: float  # as the client saw it
    server_ms: float | None  # Server-Timing
    ok: bool


@dataclass(frozen=True)
class PageLogin:
    cookie: str
    portfolio: int | None
    staff: bool


def _cookies(response: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel.value


def sign_in(port: int, email: str, password: str, portfolio: int | None, staff: bool) -> PageLogin:
    jar: dict[str, str] = {}
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", "/signin/")
        response = conn.getresponse()
        response.read()
        _cookies(response, jar)
        body = urlencode(
            {"email": email, "password": password, "csrfmiddlewaretoken": jar["csrftoken"]}
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={jar['csrftoken']}",
        }
        conn.request("POST", "/signin/", body, headers)
        response = conn.getresponse()
        response.read()
        _cookies(response, jar)
        if response.status != 302 or "sessionid" not in jar:
            raise RuntimeError(f"page sign-in of {email} answered {response.status}")
    finally:
        conn.close()
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    return PageLogin(cookie, portfolio, staff)


def _visitor(
    port: int, login: PageLogin, deadline: float, think: float, out: list[PageSample], seed: int
) -> None:
    rng = random.Random(seed)
    pages = STAFF_PAGES if login.staff else PAGES
    names = list(pages)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    index = rng.randrange(len(names))
    time.sleep(rng.uniform(0, think))
    while time.monotonic() < deadline:
        name = names[index % len(names)]
        index += 1
        start = time.perf_counter()
        server = None
        try:
            conn.request(
                "GET", pages[name].format(id=login.portfolio), headers={"Cookie": login.cookie}
            )
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
            match = TIMING.search(response.headers.get("Server-Timing", ""))
            server = float(match.group(1)) if match else None
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
        out.append(PageSample(name, time.perf_counter() - start, server, ok))
        pause = rng.uniform(0, 2 * think)
        if pause:
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    conn.close()


def load_pages(
    port: int, logins: list[PageLogin], users: int, seconds: float, think: float
) -> list[PageSample]:
    """`users` visitors (one of them staff when a staff login is given) for `seconds`."""
    samples: list[PageSample] = []
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=_visitor,
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
