"""A loopback HTTP server that replays recorded responses, for testing real client libraries.

Routes match on the request path (exact, or a prefix ending in '*'); each route holds a queue of
responses served in order, the last one repeating. A response can be a status with a JSON or raw
body and headers, `Slow(seconds, reply)` to answer late, or `HANG` to accept the connection and never answer
(timeout tests).
Every request is logged in `server.requests` so tests can assert what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

RECORDINGS = Path(__file__).parent / "recordings"

HANG = object()


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "application/json"
        return self.body, "application/octet-stream"


@dataclass
class Slow:
    """Answer `reply`, but only after `seconds` (a provider that answers late)."""

    seconds: float
    reply: Reply


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


def recording(*parts: str) -> Any:
    """Load a recorded JSON payload from tests/recordings/."""
    return json.loads(RECORDINGS.joinpath(*parts).read_text())


class ReplayServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Reply | object]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with server._lock:
                    server.requests.append(
                        Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers))
                    )
                    reply = server._next(parts.path)
                if reply is HANG:
                    server._stop.wait(60)  # never answer; the client must time out
                    return
                if isinstance(reply, Slow):
                    server._stop.wait(reply.seconds)
                    reply = reply.reply
                if reply is None:
                    reply = Reply(404, {"error": f"no recording for {parts.path}"})
                assert isinstance(reply, Reply)  # HANG and Slow are handled above
                body, content_type = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _serve
            do_POST = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, *replies: Reply | object) -> None:
        with self._lock:
            self.routes[path] = list(replies)

    def _next(self, path: str) -> Reply | object | None:
        queue = self.routes.get(path)
        if queue is None:
            prefixes = [p for p in self.routes if p.endswith("*") and path.startswith(p[:-1])]
            if not prefixes:
                return None
            queue = self.routes[max(prefixes, key=len)]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        time.sleep(0)
