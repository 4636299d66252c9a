"""Webhook URLs (server-side request forgery refused), the signature, and the POST: pinned to the
address that was checked, redirects followed by hand with every hop checked."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field

import pytest
import requests

from modeling.limits import webhooks
from modeling.tests.alerts.conftest import Receiver, closed_port

PUBLIC = {
    "hooks.example.com": ["93.184.216.34"],
    "v6.example.com": ["2606:4700::1111"],
    "rebind.example.com": ["93.184.216.34", "10.0.0.5"],
    "inside.example.com": ["192.168.0.10"],
    "alerts.test": ["127.0.0.1"],
}


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names resolve from PUBLIC (the network guard refuses any real lookup but localhost)."""
    real = webhooks.resolve

    def resolve(host: str, port: int) -> list[webhooks.IPAddress]:
        if host in PUBLIC:
            return [ipaddress.ip_address(address) for address in PUBLIC[host]]
        return real(host, port)

    monkeypatch.setattr(webhooks, "resolve", resolve)


ALLOWED = [
    "https://hooks.example.com/sigmasight",
    "https://hooks.example.com:8443/x?y=1",
    "https://v6.example.com/",
    "https://93.184.216.34/hook",
    "https://[2606:4700::1111]/hook",
]
REFUSED = [
    ("http://hooks.example.com/x", "https"),
    ("ftp://hooks.example.com/x", "https"),
    ("not a url", "https"),
    ("https://", "no host"),
    ("https://hooks.example.com:99999/", "valid URL"),
    ("https://user:pass@hooks.example.com/", "user name and password"),
    ("https://user@hooks.example.com/", "user name and password"),
    ("https://127.0.0.1/", "may not reach"),
    ("https://127.9.8.7:8443/", "may not reach"),
    ("https://[::1]/", "may not reach"),
    ("https://10.1.2.3/", "may not reach"),
    ("https://172.16.0.1/", "may not reach"),
    ("https://172.31.255.254/", "may not reach"),
    ("https://192.168.1.1/", "may not reach"),
    ("https://169.254.169.254/latest/meta-data/", "may not reach"),
    ("https://[::ffff:127.0.0.1]/", "may not reach"),
    ("https://[::ffff:169.254.169.254]/", "may not reach"),
    ("https://[::ffff:a00:1]/", "may not reach"),
    ("https://0.0.0.0/", "may not reach"),
    ("https://[::]/", "may not reach"),
    ("https://100.64.0.1/", "may not reach"),
    ("https://224.0.0.1/", "may not reach"),
    ("https://240.0.0.1/", "may not reach"),
    ("https://[fe80::1]/", "may not reach"),
    ("https://[fc00::1]/", "may not reach"),
    ("https://[ff02::1]/", "may not reach"),
    ("https://[2002:7f00:1::]/", "may not reach"),  # 6to4 of 127.0.0.1
    ("https://[64:ff9b::a00:1]/", "may not reach"),  # NAT64 of 10.0.0.1
    ("https://localhost/", "may not reach"),
    ("https://localhost:8443/hook", "may not reach"),
    ("https://inside.example.com/", "may not reach"),
    ("https://rebind.example.com/", "10.0.0.5"),
    ("https://nowhere.invalid/", "does not resolve"),
]


@pytest.mark.parametrize("url", ALLOWED)
def test_webhook_url_errors_allows_public_https(dns, url):
    assert webhooks.webhook_url_errors(url) == []


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_webhook_url_errors_refuses(dns, url, reason):
    errors = webhooks.webhook_url_errors(url)
    assert errors and reason in " ".join(errors), errors


def test_webhook_url_errors_private_setting_allows_only_addresses(dns, settings):
    settings.SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE = True
    for url in ("https://127.0.0.1:8443/", "https://localhost/", "https://10.1.2.3/"):
        assert webhooks.webhook_url_errors(url) == [], url
    for url in ("http://127.0.0.1/", "https://a:b@localhost/", "https://nowhere.invalid/"):
        assert webhooks.webhook_url_errors(url), url


def test_sign_matches_an_independent_hmac():
    secret, timestamp, body = "s3cret-é", 1_767_225_600, b'{"session":"2026-11-20"}'
    expected = hmac.new(secret.encode("utf-8"), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign(secret, timestamp, body) == expected
    header = webhooks.signature_header(secret, timestamp, body)
    assert header == f"t=1767225600,v1={expected}"
    assert webhooks.sign(secret, timestamp + 1, body) != expected
    assert webhooks.sign(secret + "x", timestamp, body) != expected


def test_secret_generate_is_random_and_url_safe():
    made = {webhooks.secret_generate() for _ in range(20)}
    assert len(made) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", secret) for secret in made)


def _response(status: int, location: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if location:
        response.headers["Location"] = location
    return response


@dataclass
class Hops:
    """The network replaced: each POST answers the next of `answers` and records its target."""

    answers: list[requests.Response] = field(default_factory=list)
    targets: list[webhooks.Target] = field(default_factory=list)


@pytest.fixture
def hops(dns, monkeypatch: pytest.MonkeyPatch) -> Hops:
    replaced = Hops()

    def post_once(target: webhooks.Target, body: bytes, headers: dict[str, str]):
        replaced.targets.append(target)
        return replaced.answers.pop(0)

    monkeypatch.setattr(webhooks, "_post_once", post_once)
    return replaced


@pytest.mark.parametrize(
    "location",
    [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://inside.example.com/",
        "https://localhost/",
        "http://hooks.example.com/",
    ],
)
def test_post_refuses_a_redirect_to_an_unsafe_url(hops, location):
    hops.answers.append(_response(302, location))
    with pytest.raises(webhooks.WebhookRefused) as refused:
        webhooks.post("https://hooks.example.com/hook", "secret", b"{}")
    assert refused.value.transient is False
    assert [target.hostname for target in hops.targets] == [
        "hooks.example.com"
    ]  # nothing more sent


def test_post_follows_at_most_three_redirects(hops):
    hops.answers.extend(_response(307, f"/hop{n}") for n in range(4))
    with pytest.raises(webhooks.WebhookError, match="More than 3 redirects") as error:
        webhooks.post("https://hooks.example.com/hook", "secret", b"{}")
    assert error.value.transient is False
    assert [target.url for target in hops.targets] == [
        "https://hooks.example.com/hook",
        "https://hooks.example.com/hop0",
        "https://hooks.example.com/hop1",
        "https://hooks.example.com/hop2",
    ]
    assert all(target.addresses == ("93.184.216.34",) for target in hops.targets)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_post_server_errors_are_transient(hops, status):
    hops.answers.append(_response(status))
    with pytest.raises(webhooks.WebhookError) as error:
        webhooks.post("https://hooks.example.com/hook", "secret", b"{}")
    assert (error.value.status, error.value.transient) == (status, True)


def test_post_client_errors_are_not_retried(hops):
    hops.answers.append(_response(404))
    with pytest.raises(webhooks.WebhookError) as error:
        webhooks.post("https://hooks.example.com/hook", "secret", b"{}")
    assert (error.value.status, error.value.transient) == (404, False)


# --- against the real HTTPS receiver ---------------------------------------------------------


def test_post_signs_and_connects_to_the_checked_address(dns, receiver: Receiver):
    """alerts.test is resolved only by the check (a lookup at connect time would hit the network
    guard); TLS still sends and verifies the name."""
    receiver.secret = "shh"
    body = b'{"session":"2026-11-20","opened":[]}'
    response = webhooks.post(receiver.url(host="alerts.test"), "shh", body, delivery_id=7)
    assert response.status_code == 200
    [got] = receiver.received
    assert got.verified and got.body == body
    assert got.headers["Host"] == f"alerts.test:{receiver.port}"
    assert got.headers["X-SigmaSight-Delivery"] == "7"
    assert got.headers["X-SigmaSight-Event"] == "limits.digest"
    assert got.headers["Content-Type"] == "application/json"
    assert "alerts.test" in receiver.server_names


def test_post_verifies_the_certificate_name(dns, receiver: Receiver, monkeypatch):
    """A name the certificate does not hold fails the handshake although the address is
    the receiver's."""
    monkeypatch.setitem(PUBLIC, "other.test", ["127.0.0.1"])
    with pytest.raises(webhooks.WebhookError, match="SSLError") as error:
        webhooks.post(receiver.url(host="other.test"), "shh", b"{}")
    assert error.value.transient is True
    assert receiver.received == []


def test_post_follows_a_checked_redirect_and_signs_each_hop(receiver: Receiver):
    receiver.secret = "shh"
    response = webhooks.post(receiver.url(f"/redirect/{receiver.url()}"), "shh", b"[1]")
    assert response.status_code == 200
    assert [got.path for got in receiver.received] == [f"/redirect/{receiver.url()}", "/hook"]
    assert all(got.verified and got.body == b"[1]" for got in receiver.received)


def test_post_refuses_a_real_redirect_to_plain_http(receiver: Receiver):
    receiver.secret = "shh"
    target = receiver.url().replace("https://", "http://")
    with pytest.raises(webhooks.WebhookRefused, match="https"):
        webhooks.post(receiver.url(f"/redirect/{target}"), "shh", b"[1]")
    assert len(receiver.received) == 1


def test_post_to_a_closed_port_is_transient(receiver: Receiver):
    with pytest.raises(webhooks.WebhookError, match="ConnectionError") as error:
        webhooks.post(f"https://localhost:{closed_port()}/", "s", b"{}")
    assert error.value.transient is True
