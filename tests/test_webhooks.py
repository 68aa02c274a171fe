"""Webhooks (issue 15): created per organization, signed per Standard Webhooks, retried, SSRF-safe."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.outbox.webhooks import UrlRefused, check_url

if TYPE_CHECKING:
    from tests.support import Tenant


class Receiver:
    """A local receiver: answers the scripted statuses first, then 204; keeps what it got."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = box.script.pop(0) if box.script else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Standard Webhooks verification, by hand: HMAC-SHA256 of "id.timestamp.body" with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert any(sig == f"v1,{expected}" for sig in headers["webhook-signature"].split()), "bad signature"
    payload: dict[str, Any] = json.loads(body)
    # And by the reference implementation (PyPI standardwebhooks), as a receiver would: it also checks the
    # timestamp's freshness, and refuses the body altered by one byte.
    assert Webhook(secret).verify(body, headers) == payload
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    return payload


def test_create_list_read_delete_and_the_secret_is_shown_once(tenant: Tenant, receiver: Receiver) -> None:
    created = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["consent.revoked"]})
    assert created.status_code == 201, created.json
    assert created.json["secret"].startswith("whsec_") and created.json["events"] == ["consent.revoked"]
    hook_id = created.json["id"]
    listed = tenant.get("/v1/webhooks").json
    assert [item["id"] for item in listed["items"]] == [hook_id] and listed["next_cursor"] is None
    assert "secret" not in listed["items"][0]
    assert tenant.get(f"/v1/webhooks/{hook_id}").json["url"] == receiver.url
    assert tenant.delete(f"/v1/webhooks/{hook_id}", scope="admin").status_code == 204
    assert tenant.get(f"/v1/webhooks/{hook_id}").status_code == 404


def test_another_tenant_cannot_see_or_delete_a_webhook(
    tenant: Tenant, other_tenant: Tenant, receiver: Receiver
) -> None:
    hook_id = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["consent.revoked"]}).json["id"]
    for path in (f"/v1/webhooks/{hook_id}", f"/v1/webhooks/{hook_id}/deliveries"):
        assert other_tenant.get(path).status_code == 404
    assert other_tenant.delete(f"/v1/webhooks/{hook_id}", scope="admin").status_code == 404
    assert other_tenant.get("/v1/webhooks").json["items"] == []
    assert tenant.get(f"/v1/webhooks/{hook_id}").status_code == 200


def test_webhooks_need_an_admin_key(tenant: Tenant, receiver: Receiver) -> None:
    answer = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["consent.revoked"]}, scope="consents")
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x", "events": ["consent.revoked"]}, "webhook_url_refused"),
        ({"url": "http://10.0.0.5/x", "events": ["consent.revoked"]}, "webhook_url_refused"),
        ({"url": "http://127.0.0.1/x", "events": ["consent.updated"]}, "webhook_event_unknown"),
        ({"url": "http://127.0.0.1/x", "events": []}, "validation_error"),
    ],
)
def test_bad_urls_and_events_are_refused(tenant: Tenant, body: dict[str, Any], code: str) -> None:
    answer = tenant.post("/v1/webhooks", body)
    assert answer.status_code == 422 and answer.json["code"] == code, answer.json


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fe80::1]/x",
        "https://224.0.0.1/x",
        "https://0.0.0.0/x",
        "https://240.0.0.1/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost/x",
        "https://user:pw@hooks.example.com/x",
    ],
)
def test_ssrf_production_refuses_what_is_not_public(url: str) -> None:
    with pytest.raises(UrlRefused):
        check_url(url, development=False)


def test_ssrf_production_checks_every_resolved_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that resolves to a public and a private address is refused (checked at every delivery)."""

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(UrlRefused):
        check_url("https://hooks.example.com/x", development=False)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [resolve("", 443)[0]])
    check_url("https://hooks.example.com/x", development=False)  # public only: accepted


def test_development_allows_http_and_loopback() -> None:
    check_url("http://127.0.0.1:9000/hooks", development=True)
    with pytest.raises(UrlRefused):
        check_url("http://10.0.0.5/hooks", development=True)


def test_a_grant_is_delivered_signed_retried_after_a_500(tenant: Tenant, receiver: Receiver, drain: Any) -> None:
    created = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["consent.granted", "consent.revoked"]})
    secret, hook_id = created.json["secret"], created.json["id"]
    receiver.script = [500]
    subject = tenant.subject()
    tenant.purpose()
    granted = tenant.consent(subject["id"])
    assert granted.status_code == 201, granted.json
    drain()
    assert len(receiver.received) == 2  # the 500, then the retry accepted
    (first_headers, _), (headers, body) = receiver.received
    assert first_headers["webhook-id"] == headers["webhook-id"]  # the same id on a retry: deduplicate by it
    payload = verify(secret, headers, body)
    assert payload["type"] == "consent.granted" and payload["data"]["id"]
    assert "birth_date" not in body.decode() and "external_ref" not in body.decode()
    [delivery] = tenant.get(f"/v1/webhooks/{hook_id}/deliveries").json["items"]
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == ("consent.granted", "sent", 2)
    assert delivery["last_status_code"] == 204 and "body" not in delivery


def test_a_receiver_always_failing_ends_failed(tenant: Tenant, receiver: Receiver, drain: Any) -> None:
    hook_id = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["subject.erased"]}).json["id"]
    receiver.script = [500] * 10
    subject = tenant.subject()
    assert tenant.delete(f"/v1/subjects/{subject['id']}").status_code == 204
    drain()
    [delivery] = tenant.get(f"/v1/webhooks/{hook_id}/deliveries").json["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("failed", 3, "http_500")
