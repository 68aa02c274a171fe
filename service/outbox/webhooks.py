"""Webhook deliveries, per Standard Webhooks (https://www.standardwebhooks.com).

Each delivery is a POST of the event's JSON with the headers ``webhook-id`` (the outbox row's id, the same
on every retry: receivers deduplicate by it), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body" keyed with the secret's bytes>``; the
secret is ``whsec_<base64 of 32 random bytes>``.

URL rules, checked when a webhook is created and again at every delivery (the name may resolve elsewhere
by then): in production only ``https``, and every address the host resolves to must be public (no private,
loopback, link-local, multicast, reserved or unspecified address, nor an IPv6 address wrapping such an IPv4
one: v4-mapped, 6to4, Teredo, NAT64; SSRF). In development and test ``http`` and loopback addresses are
allowed, for local receivers.

A delivery resolves the name once, checks every address, and connects to a checked address itself (pinned:
a DNS server answering differently a moment later is never asked again), keeping the URL's host name for
``Host``, TLS SNI and the certificate; the whole attempt, resolution included, has ``WEBHOOK_TIMEOUT_SECONDS``
by the clock; the answer's body is never read, redirects never followed (see
:mod:`service.outbox.webhook_http`). What each outcome means for the outbox row:

- a 2xx: ``sent``;
- another status (``http_<status>``), no connection or no answer in time (``webhook_unreachable``), a name
  that does not resolve (``webhook_unresolved``: a DNS failure may pass): tried again;
- a URL the rules refuse now (``webhook_url_refused``), a secret that does not decrypt (DATA_KEY changed:
  ``webhook_secret_unreadable``): ``failed`` at once, since trying again cannot help.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import idna

from service.outbox.webhook_http import Deadline, Target, post

if TYPE_CHECKING:
    from service.models import OutboxMessage
    from service.outbox.dispatcher import Outcome

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not one)
DEFAULT_PORTS = {"http": 80, "https": 443}
#: NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: What a path keeps as it is; anything else (spaces excepted: refused) is percent-encoded as UTF-8.
PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header's value for one delivery."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class UrlRefused(ValueError):
    """A webhook URL the rules refuse; ``code`` is stable (``webhook_url_refused``), the message says why."""

    code = "webhook_url_refused"


class UrlUnresolved(UrlRefused):
    """The URL's host did not resolve (in time). Refused at creation, like any URL that cannot be reached;
    at a delivery tried again, since a DNS failure may pass."""


def _address_allowed(address: str, *, development: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An address that only translates to an IPv4 one is judged by that one.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            # Tunnels (6to4, Teredo) reach their IPv4 end too: it must be allowed as well as the address.
            ends = [ip.sixtofour] if ip.sixtofour is not None else list(ip.teredo or ())
            if not all(_ip_allowed(end, development=development) for end in ends if end is not None):
                return False
    return _ip_allowed(ip, development=development)


def _ip_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, development: bool) -> bool:
    if development and ip.is_loopback:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:  # fec0::/10, deprecated but routable inside
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local)


def parse_url(url: str, *, development: bool) -> Target:
    """The URL's parts for a delivery, without addresses; :class:`UrlRefused` if its form is refused."""
    if any(char.isspace() or not char.isprintable() for char in url):
        raise UrlRefused("the URL must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed "[" of an IPv6 address, say
        raise UrlRefused(f"the URL cannot be read: {exc}") from None
    allowed_schemes = {"https", "http"} if development else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UrlRefused("the URL must be https" if not development else "the URL must be http or https")
    try:
        port = parts.port
    except ValueError:  # out of 0-65535, or not a number
        port = 0
    if port == 0:
        raise UrlRefused("the URL's port must be a number from 1 to 65535")
    if not parts.hostname or parts.username or parts.password:
        raise UrlRefused("the URL needs a host, and no user name or password")
    host = parts.hostname
    literal = _literal(host)
    if literal is None:
        host = host.rstrip(".")  # "x.internal." is "x.internal": checked, and resolved, as one name
        if not host.isascii():
            # UTS 46 / IDNA 2008, as browsers do: Python's own "idna" codec (IDNA 2003) maps "faß.de" to
            # "fass.de", another domain, that would receive the signed events.
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError:
                raise UrlRefused("the URL's host is not a valid name") from None
        if not development and "." not in host:
            # A single label resolves through the resolver's search domains: an internal name.
            raise UrlRefused("the URL's host must be a full domain name")
    default = DEFAULT_PORTS[parts.scheme]
    named = f"[{host}]" if literal is not None and literal.version == 6 else host
    path = quote(parts.path or "/", safe=PATH_SAFE) + (f"?{quote(parts.query, safe=PATH_SAFE)}" if parts.query else "")
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port or default,
        host_header=named if port in (None, default) else f"{named}:{port}",
        path=path,
    )


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, development: bool, resolve: bool = True, timeout: float | None = None) -> Target:
    """The URL's :class:`Target` with its checked addresses; :class:`UrlRefused` unless ``url`` may receive
    webhooks (see the module's doc).

    ``resolve``: also resolve the host and check every address (at delivery; at creation too, in production,
    so that a mistake shows at once); ``timeout``: seconds the resolution may take (:class:`UrlUnresolved`).
    Without ``resolve`` the target has no addresses unless the host is an IP literal.
    """
    target = parse_url(url, development=development)
    literal = _literal(target.host)
    if literal is not None:
        if not _address_allowed(str(literal), development=development):
            raise UrlRefused("the URL's address is not a public one")
        family = socket.AF_INET if literal.version == 4 else socket.AF_INET6
        sockaddr = (str(literal), target.port) if literal.version == 4 else (str(literal), target.port, 0, 0)
        return _with_addresses(target, [(family, sockaddr)])
    host = target.host
    if not development and (host == "localhost" or host.endswith((".localhost", ".local", ".internal"))):
        raise UrlRefused("the URL's host is not a public one")
    if not resolve:
        return target
    infos = _getaddrinfo(host, target.port, timeout)
    addresses: list[tuple[int, tuple[Any, ...]]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if not _address_allowed(str(sockaddr[0]), development=development):
            raise UrlRefused("the URL's host resolves to an address that is not a public one")
        addresses.append((int(family), tuple(sockaddr)))
    if not addresses:
        raise UrlUnresolved("the URL's host does not resolve")
    return _with_addresses(target, addresses)


def _with_addresses(target: Target, addresses: list[tuple[int, tuple[Any, ...]]]) -> Target:
    unique = tuple(dict.fromkeys(addresses))
    return Target(target.scheme, target.host, target.port, target.host_header, target.path, unique)


def _getaddrinfo(host: str, port: int, timeout: float | None) -> list[Any]:
    """The host's addresses; :class:`UrlUnresolved` on any failure, or after ``timeout`` seconds.

    The resolver cannot be interrupted and may wait many seconds for a name server that does not answer:
    with a timeout it runs in a thread of its own, abandoned (it ends with the resolver's own timeout)
    if it takes too long.
    """
    found: list[Any] = []
    failed: list[BaseException] = []

    def resolve() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # gaierror (EAI_AGAIN, EAI_NONAME…), UnicodeError for a label too long
            failed.append(exc)

    if timeout is None:
        resolve()
    else:
        resolver = threading.Thread(target=resolve, name="webhook-resolve", daemon=True)
        resolver.start()
        resolver.join(timeout)
        if resolver.is_alive():
            raise UrlUnresolved("the URL's host did not resolve in time")
    if failed:
        raise UrlUnresolved("the URL's host does not resolve") from failed[0]
    return found


@dataclass(frozen=True)
class WebhookSender:
    """Sends one webhook delivery from the outbox; reads the webhook's URL and secret as they are now.

    ``send`` returns an outcome for every failure it can name rather than raise: the dispatcher thread that
    calls it sends everyone's SMS too.
    """

    sessions: Any
    protector: Any
    development: bool
    timeout: float

    @classmethod
    def of(cls, app: Any) -> WebhookSender:
        from service.config import is_development

        return cls(
            sessions=app.extensions["consent_gate.sessionmaker"],
            protector=app.extensions["consent_gate.protector"],
            development=is_development(app.config),
            timeout=app.config["WEBHOOK_TIMEOUT_SECONDS"],
        )

    def send(self, message: OutboxMessage, payload: dict[str, Any]) -> Outcome:
        from service.outbox.dispatcher import Outcome

        found = self._webhook(message)
        if found is None:
            return Outcome(ok=False, error="webhook_deleted")
        url, secret_ciphertext = found
        try:
            secret = self.protector.decrypt(secret_ciphertext)
        except Exception:  # sealed with another DATA_KEY: it never will decrypt
            log.warning("webhook %s: its secret does not decrypt (DATA_KEY changed?)", message.webhook_id)
            return Outcome(ok=False, error="webhook_secret_unreadable")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "consent-gate-webhooks",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message.id, timestamp, body),
        }
        with Deadline(self.timeout) as deadline:
            try:
                target = check_url(url, development=self.development, timeout=deadline.remaining())
            except UrlUnresolved:
                return Outcome(ok=False, error="webhook_unresolved", retryable=True)
            except UrlRefused:
                return Outcome(ok=False, error="webhook_url_refused")
            except TimeoutError:
                return Outcome(ok=False, error="webhook_unreachable", retryable=True)
            try:
                status = post(target, body.encode(), headers, deadline)
            except (OSError, http.client.HTTPException) as exc:
                log.warning("webhook %s unreachable (%s)", message.webhook_id, type(exc).__name__)
                return Outcome(ok=False, error="webhook_unreachable", retryable=True)
        if 200 <= status < 300:
            return Outcome(ok=True, status_code=status)
        # 3xx are not followed (a redirect could point anywhere); they fail like any other answer
        return Outcome(ok=False, error=f"http_{status}", retryable=True, status_code=status)

    def _webhook(self, message: OutboxMessage) -> tuple[str, str] | None:
        """The webhook's URL and sealed secret, read now; ``None`` once it is deleted."""
        from service.db import begin_read
        from service.models import Webhook

        with self.sessions() as session:
            begin_read(session)
            webhook = session.get(Webhook, message.webhook_id) if message.webhook_id else None
            found = (webhook.url, webhook.secret_ciphertext) if webhook else None
            session.commit()
        return found
