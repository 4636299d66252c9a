"""Webhooks of the limit alerts: which URLs a user may register, the signature, and the POST.

Signature. Every POST carries `X-SigmaSight-Signature: t=<unix seconds>,v1=<hex>`, where hex is
HMAC-SHA256 under the user's webhook secret (its UTF-8 bytes) of `f"{t}.".encode() + body`, the
body being the exact bytes received. A receiver recomputes it, compares with
`hmac.compare_digest`, and refuses a `t` older than a few minutes (a replayed request). Each
attempt is signed afresh, so a retried delivery carries a newer `t`; `X-SigmaSight-Delivery`
names the delivery (the same on every attempt), for a receiver that wants to drop repeats.

Server-side request forgery. A URL must be https, carry no user name or password, and its host
must resolve only to public addresses: private, loopback, link-local, multicast, reserved and
unspecified addresses (IPv4 and IPv6, IPv4-mapped, 6to4, Teredo and NAT64 forms included) are
refused unless SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE is on (the tests' local receiver). The POST
connects to the address that was checked (the name is resolved once; the TLS handshake still
sends and verifies the host name), so a DNS answer that changes between the check and the
connection (rebinding) cannot point it elsewhere. Redirects are followed by hand, at most
`MAX_REDIRECTS`, each hop checked and pinned the same way; the body is POSTed again, unchanged.
Environment proxies and .netrc are ignored (`trust_env = False`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

SIGNATURE_HEADER = "X-SigmaSight-Signature"
DELIVERY_HEADER = "X-SigmaSight-Delivery"
EVENT_HEADER = "X-SigmaSight-Event"
EVENT = "limits.digest"
USER_AGENT = "SigmaSight-Webhook/1"
MAX_REDIRECTS = 3
MAX_ADDRESSES = 2  # the resolved addresses tried in turn when one refuses the connection
REDIRECTS = (301, 302, 303, 307, 308)
# Worth another attempt later: the receiver is overloaded, restarting or timed out.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookError(Exception):
    """A POST that did not succeed. `transient`: worth retrying later (the receiver is down or
    answered 5xx/429); otherwise retrying cannot help (a 4xx, too many redirects)."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = True):
        super().__init__(message)
        self.status = status
        self.transient = transient


class WebhookRefused(WebhookError):
    """The URL (or a redirect's) is not one webhooks may reach; nothing was sent to it."""

    def __init__(self, errors: list[str], *, status: int | None = None):
        super().__init__(" ".join(errors), status=status, transient=False)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`) and what to say the host is."""

    url: str
    hostname: str
    addresses: tuple[str, ...]


def secret_generate() -> str:
    """A new webhook secret (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.".encode() + body` under `secret`."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal: itself); [] when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether a webhook may connect to `address`: globally routable unicast, and so is the IPv4
    address an IPv6 one embeds."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def _checked(url: str) -> tuple[list[str], Target | None]:
    """The errors of `url` as a webhook URL, or where to connect when there are none."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        return ["Enter a valid URL."], None
    if parts.scheme.lower() != "https":
        return ["Use an https:// URL."], None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return ["Leave the user name and password out of the URL."], None
    hostname = parts.hostname
    if not hostname:
        return ["The URL has no host."], None
    addresses = resolve(hostname, port)
    if not addresses:
        return [f"The host {hostname[:100]!r} does not resolve."], None
    if not settings.SIGMASIGHT_WEBHOOK_ALLOW_PRIVATE:
        internal = [str(address) for address in addresses if not is_public(address)]
        if internal:
            return [
                f"The host resolves to {', '.join(internal[:3])}: a private, loopback, "
                "link-local or reserved address, which webhooks may not reach."
            ], None
    return [], Target(url=url, hostname=hostname, addresses=tuple(map(str, addresses)))


def webhook_url_errors(url: str) -> list[str]:
    """Why `url` may not be a webhook URL ([] when it may): the API and the sender share it."""
    return _checked(url)[0]


class _PinnedAdapter(HTTPAdapter):
    """Connects to one checked address while TLS sends and verifies the URL's host name."""

    def __init__(self, address: str, hostname: str) -> None:
        self._address = address
        self._hostname = hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params["host"] = self._address
        pool_kwargs["server_hostname"] = self._hostname
        pool_kwargs["assert_hostname"] = self._hostname
        return host_params, pool_kwargs


def _host_header(url: str) -> str:
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[2]


def _post_once(target: Target, body: bytes, headers: dict[str, str]) -> requests.Response:
    """One POST of `body` to `target`, over its checked addresses in turn (the next one only when
    a connection could not be made). The response is closed; only its status and headers remain."""
    timeout = settings.SIGMASIGHT_WEBHOOK_TIMEOUT_S
    verify: bool | str = settings.SIGMASIGHT_WEBHOOK_CA_BUNDLE or True
    last: requests.ConnectionError | None = None
    for address in target.addresses[:MAX_ADDRESSES]:
        with requests.Session() as session:
            session.trust_env = False
            session.mount("https://", _PinnedAdapter(address, target.hostname))
            try:
                response = session.post(
                    target.url,
                    data=body,
                    headers={**headers, "Host": _host_header(target.url)},
                    timeout=(timeout, timeout),
                    allow_redirects=False,
                    verify=verify,
                    stream=True,  # the receiver's body is never read
                )
            except requests.ConnectionError as exc:
                last = exc
                continue
            response.close()
            return response
    assert last is not None
    raise last


def post(
    url: str, secret: str, body: bytes, *, delivery_id: int | None = None
) -> requests.Response:
    """POST `body` (JSON) to `url` signed with `secret`, following redirects by hand. Returns the
    final 2xx response; raises WebhookRefused for an unsafe URL or hop (nothing sent to it) and
    WebhookError for any other failure (`transient`: a retry may succeed)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: EVENT,
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
    }
    if delivery_id is not None:
        headers[DELIVERY_HEADER] = str(delivery_id)
    for _hop in range(MAX_REDIRECTS + 1):
        errors, target = _checked(url)
        if target is None:
            raise WebhookRefused(errors)
        try:
            response = _post_once(target, body, headers)
        except requests.RequestException as exc:
            raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in REDIRECTS and response.headers.get("Location"):
            url = urljoin(url, response.headers["Location"])
            continue
        if 200 <= status < 300:
            return response
        raise WebhookError(
            f"The receiver answered HTTP {status}.",
            status=status,
            transient=status in TRANSIENT_STATUSES,
        )
    raise WebhookError(
        f"More than {MAX_REDIRECTS} redirects.", status=response.status_code, transient=False
    )
