from __future__ import annotations

import socket

import pytest


def test_non_loopback_connections_are_refused():
    with pytest.raises(OSError, match="never leave this machine"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(OSError, match="never leave this machine"):
        socket.getaddrinfo("api.polygon.io", 443)


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()
