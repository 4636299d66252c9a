"""A real HTTPS webhook receiver for the alert tests, and the rows an evening's `limits` job
would leave (a limit, its breach, the breach's events).

The receiver is `http.server` in a thread behind TLS, with a certificate from a throwaway CA
made with the `openssl` command when the session starts (names: localhost, alerts.test,
127.0.0.1). It checks each POST's signature on its own (hmac, not the code under test) with
the secret it is given, and records what it got."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modeling.limit_models import Breach, BreachEvent, Limit
from portfolios.models import Portfolio
from portfolios.tests.factories import PortfolioFactory

DAY = date(2026, 11, 20)
NEXT = date(2026, 11, 23)
LATER = date(2026, 11, 24)
TOLERANCE_S = 300


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr = folder / "server.pem", folder / "server.key", folder / "server.csr"
    ext = folder / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,DNS:alerts.test,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_subject = ["-subj", "/CN=SigmaSight test CA"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    signed = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-extfile", ext]
    commands = [
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", *ca_subject, *ca_ext],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-out", cert, "-days", "2", *signed],
    ]
    for command in commands:
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return Tls(ca=ca, cert=cert, key=key)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int
    secret: str = ""
    status: int = 200
    received: list[Received] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def verifies(self, header: str, body: bytes) -> bool:
        """The check a receiver makes: t recent, v1 the HMAC of "t." + body."""
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > TOLERANCE_S:
            return False
        message = fields["t"].encode() + b"." + body
        expected = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields.get("v1", ""))


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            header = self.headers.get("X-SigmaSight-Signature", "")
            verified = receiver.verifies(header, body)
            receiver.received.append(Received(self.path, dict(self.headers), body, verified))
            if self.path.startswith("/redirect/"):  # /redirect/<quoted Location>
                self.send_response(307)
                self.send_header("Location", self.path.removeprefix("/redirect/"))
            else:
                self.send_response(receiver.status if verified else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(tls: Tls, settings: Any) -> Iterator[Receiver]:
    """A running receiver; webhooks may reach it (private addresses allowed, its CA trusted)."""
    settings.SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE = True
    settings.SIGMASIGHT_WEBHOOK_CA_BUNDLE = str(tls.ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = Receiver(port=server.server_address[1])
    context.sni_callback = lambda sock, name, ctx: receiver.server_names.append(name)
    server.RequestHandlerClass = _handler(receiver)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def breach_event(
    portfolio: Portfolio,
    *,
    kind: str = "opened",
    session: date = DAY,
    value: float = 1_200_000.0,
    limit: Limit | None = None,
) -> BreachEvent:
    """An event as the `limits` job records it: the breach of `limit` (a hard cap on gross
    exposure, made when None) on `portfolio`, updated to `session`, and its `kind` event."""
    if limit is None:
        limit = Limit.objects.create(
            owner=portfolio.owner,
            portfolio=portfolio,
            name="Gross cap",
            measure="gross_exposure",
            unit="money",
            bound="max",
            warning=900_000.0,
            hard=1_000_000.0,
        )
    level = "" if kind == "resolved" else ("hard" if value > limit.hard else "warning")
    breach = Breach.objects.filter(limit=limit, portfolio=portfolio).exclude(status="resolved")
    found = breach.first()
    if found is None:
        found = Breach.objects.create(
            limit=limit,
            portfolio=portfolio,
            session=session,
            value=value,
            bound_value=limit.hard,
            level=level or "hard",
            first_seen=session,
            last_seen=session,
            notified_value=value,
        )
    else:
        found.session = session
        found.value = value
        if kind == "resolved":
            found.status = Breach.Status.RESOLVED
            found.resolved_on = session
        else:
            found.last_seen = session
            found.level = level
            found.notified_value = value
        found.save()
    return BreachEvent.objects.create(
        breach=found, session=session, kind=kind, value=value, level=level
    )


@pytest.fixture
def book(user) -> Portfolio:
    return PortfolioFactory(owner=user, name="Main book", cash=Decimal("100000"))
