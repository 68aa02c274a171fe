"""Webhook deliveries, per Standard Webhooks (https://www.standardwebhooks.com).

Each delivery is a POST of the event's JSON with the headers ``webhook-id`` (the outbox row's id, the same
on every retry: receivers deduplicate by it), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body" keyed with the secret's bytes>``; the
secret is ``whsec_<base64 of 32 random bytes>``.

URL rules, checked when a webhook is created and again at every delivery (the name may resolve elsewhere
by then): in production only ``https``, and every address the host resolves to must be public (no private,
loopback, link-local, multicast, reserved or unspecified address: SSRF); redirects are never followed. In
development and test ``http`` and loopback addresses are allowed, for local receivers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from service.models import OutboxMessage
    from service.outbox.dispatcher import Outcome

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not one)


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


def _address_allowed(address: str, *, development: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if development and ip.is_loopback:
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local)


def check_url(url: str, *, development: bool, resolve: bool = True) -> None:
    """Raise :class:`UrlRefused` unless ``url`` may receive webhooks (see the module's doc).

    ``resolve``: also resolve the host and check every address (at delivery; at creation too, so that a
    mistake shows at once).
    """
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if development else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UrlRefused("the URL must be https" if not development else "the URL must be http or https")
    if not parts.hostname or parts.username or parts.password:
        raise UrlRefused("the URL needs a host, and no user name or password")
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not _address_allowed(str(literal), development=development):
            raise UrlRefused("the URL's address is not a public one")
        return
    if not development and (host == "localhost" or host.endswith((".localhost", ".local", ".internal"))):
        raise UrlRefused("the URL's host is not a public one")
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused("the URL's host does not resolve") from exc
    for info in infos:
        if not _address_allowed(str(info[4][0]), development=development):
            raise UrlRefused("the URL's host resolves to an address that is not a public one")


@dataclass(frozen=True)
class WebhookSender:
    """Sends one webhook delivery from the outbox; reads the webhook's URL and secret as they are now."""

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
        import requests

        from service.db import begin_read
        from service.models import Webhook
        from service.outbox.dispatcher import Outcome

        with self.sessions() as session:
            begin_read(session)
            webhook = session.get(Webhook, message.webhook_id) if message.webhook_id else None
            url = webhook.url if webhook else None
            secret = self.protector.decrypt(webhook.secret_ciphertext) if webhook else None
            session.commit()
        if url is None or secret is None:
            return Outcome(ok=False, error="webhook_deleted")
        try:
            check_url(url, development=self.development)
        except UrlRefused:
            return Outcome(ok=False, error="webhook_url_refused")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "consent-gate-webhooks",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message.id, timestamp, body),
        }
        try:
            response = requests.post(
                url, data=body.encode(), headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            log.warning("webhook %s unreachable (%s)", message.webhook_id, type(exc).__name__)
            return Outcome(ok=False, error="webhook_unreachable", retryable=True)
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return Outcome(ok=True, status_code=status)
        # 3xx are not followed (a redirect could point anywhere); they fail like any other answer
        return Outcome(ok=False, error=f"http_{status}", retryable=True, status_code=status)
