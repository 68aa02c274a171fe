"""Webhooks (issue 15): created per organization, signed per Standard Webhooks, retried, SSRF-safe."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.keys.crypto import DataProtector
from service.models import OutboxMessage
from service.models import Webhook as WebhookRow
from service.outbox.dispatcher import Dispatcher
from service.outbox.webhooks import UrlRefused, WebhookSender, check_url

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

    from tests.support import Race, Tenant


class Receiver:
    """A local receiver: answers the scripted statuses first, then 204; keeps what it got."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server_names: list[str | None] = []  # TLS SNI, when served over TLS
        self.url = ""
        self.port = 0


@contextlib.contextmanager
def serving(
    box: Receiver, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> Iterator[Receiver]:
    """Serve ``box`` on ``host:port`` (0: any free port), over TLS with ``tls``, until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = box.script.pop(0) if box.script else 204
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", box.url + "/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer((host, port), Handler)
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _context: box.server_names.append(name)  # type: ignore[assignment]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    box.port = server.server_address[1]
    box.url = f"{'https' if tls else 'http'}://{host}:{box.port}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with serving(Receiver()) as box:
        yield box


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
        "https://[fec0::1]/x",  # site-local (deprecated, still routed inside some networks)
        "https://hooks.internal./x",  # a trailing dot is the same name
        "https://localhost./x",
        "https://postgres/x",  # one label: the resolver's search domains make it an internal name
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


def test_non_ascii_hosts_follow_idna_2008_as_browsers_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under IDNA 2003 (Python's "idna" codec) "faß.de" would become "fass.de", another domain, which would
    receive the signed events; UTS 46 / IDNA 2008 keeps the sharp s."""
    asked: list[str] = []

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    target = check_url("https://faß.de/hooks", development=False)
    assert (target.host, asked) == ("xn--fa-hia.de", ["xn--fa-hia.de"])
    with pytest.raises(UrlRefused):
        check_url("https://a\u200db.de/hooks".encode().decode("unicode_escape"), development=False)


def test_a_name_server_that_never_answers_cannot_hold_a_creation(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In production the name is resolved at creation, within RESOLVE_SECONDS: then 422, not a request held
    (nor, on SQLite, the write lock) for as long as the resolver waits."""
    from service.domain import webhooks as domain

    answered = threading.Event()

    def hang(*args: Any, **kwargs: Any) -> list[Any]:
        answered.wait(30)  # released at the end of the test
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setitem(app.config, "ENV", "production")
    monkeypatch.setattr(domain, "RESOLVE_SECONDS", 0.2)
    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        answer = tenant.post("/v1/webhooks", {"url": "https://slow-dns.example.com/x", "events": ["consent.granted"]})
    finally:
        answered.set()
    assert (answer.status_code, answer.json["code"]) == (422, "webhook_url_refused"), answer.json
    assert tenant.get("/v1/webhooks").json["items"] == []


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


# --- delivery: the deadline, the body never read, redirects ----------------------------------------------------


class RawReceiver:
    """One connection at a time, by hand: reads the request, then ``answer(connection)`` writes the reply and
    returns what happened to it (``("closed", n)``: the sender closed after ``n`` bytes; ``("finished", n)``)."""

    def __init__(self, answer: Callable[[socket.socket], tuple[str, int]]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"
        self.result: tuple[str, int] | BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
            with connection:
                connection.settimeout(HANG)  # only to end a hang; never reached when the sender behaves
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                self.result = self.answer(connection)
        except BaseException as exc:  # looked at by the test
            self.result = exc

    def outcome(self) -> tuple[str, int] | BaseException | None:
        self.thread.join(HANG)
        assert not self.thread.is_alive(), "the receiver hung"
        self.listener.close()
        return self.result


#: A generous bound that only a hang reaches.
HANG = 60.0


def a_message(hook_id: str) -> OutboxMessage:
    return OutboxMessage(id=f"msg_{hook_id[:8]}", webhook_id=hook_id)


def sender_of(app: Flask, **changes: Any) -> WebhookSender:
    return dataclasses.replace(WebhookSender.of(app), **changes)


def trickle(connection: socket.socket) -> tuple[str, int]:
    """A valid 200, one byte every 50 ms: each read gets a byte in time, the whole takes ~8 s."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: " + b"z" * 120 + b"\r\n\r\n"
    for sent in range(len(answer)):
        try:
            connection.sendall(answer[sent : sent + 1])
        except OSError:
            return ("closed", sent)
        time.sleep(0.05)
    return ("finished", len(answer))


HUGE = 50 * 1024 * 1024


def huge_body(connection: socket.socket) -> tuple[str, int]:
    """A 200 followed by 50 MB of body."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % HUGE)
    chunk, sent = b"x" * 65536, 0
    try:
        while sent < HUGE:
            connection.sendall(chunk)
            sent += len(chunk)
    except OSError:
        return ("closed", sent)
    return ("finished", sent)


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline(app: Flask, tenant: Tenant) -> None:
    """Each byte comes well within the timeout, so only a deadline on the whole delivery ends it."""
    slow = RawReceiver(trickle)
    hook_id = tenant.post("/v1/webhooks", {"url": slow.url, "events": ["consent.granted"]}).json["id"]
    with app.app_context():
        outcome = sender_of(app, timeout=0.5).send(a_message(hook_id), {"type": "consent.granted"})
    assert (outcome.ok, outcome.error, outcome.retryable) == (False, "webhook_unreachable", True)
    result = slow.outcome()
    assert isinstance(result, tuple) and result[0] == "closed", result  # the sender hung up, mid-status


def test_a_huge_answer_body_is_never_read(app: Flask, tenant: Tenant) -> None:
    big = RawReceiver(huge_body)
    hook_id = tenant.post("/v1/webhooks", {"url": big.url, "events": ["consent.granted"]}).json["id"]
    with app.app_context():
        outcome = sender_of(app).send(a_message(hook_id), {"type": "consent.granted"})
    assert (outcome.ok, outcome.status_code) == (True, 200)
    result = big.outcome()
    # The sender closed the connection after the headers: the receiver's writing broke off long before the end.
    assert isinstance(result, tuple) and result[0] == "closed" and result[1] < HUGE, result


def test_a_redirect_is_not_followed(app: Flask, tenant: Tenant, receiver: Receiver) -> None:
    hook_id = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["consent.granted"]}).json["id"]
    receiver.script = [307]  # Location: the same receiver, /hooks/moved
    with app.app_context():
        outcome = sender_of(app).send(a_message(hook_id), {"type": "consent.granted"})
    assert (outcome.ok, outcome.error, outcome.retryable, outcome.status_code) == (False, "http_307", True, 307)
    assert len(receiver.received) == 1  # the redirect's target was never asked


# --- DNS rebinding: resolved once, connected to the address checked ------------------------------------------


def rebinding(monkeypatch: pytest.MonkeyPatch, host: str, first: str, later: str | Exception) -> list[str | Exception]:
    """``host`` resolves to ``first`` once, then to ``later`` (an exception: raised); other names as usual.
    Returns what each lookup of ``host`` answered."""
    real = socket.getaddrinfo
    answered: list[str | Exception] = []

    def resolve(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if name != host:
            return real(name, port, *args, **kwargs)
        answer = first if not answered else later
        answered.append(answer)
        if isinstance(answer, Exception):
            raise answer
        family = socket.AF_INET6 if ":" in answer else socket.AF_INET
        sockaddr = (answer, int(port), 0, 0) if family == socket.AF_INET6 else (answer, int(port))
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return answered


def connected(listener: socket.socket) -> bool:
    """Whether anyone connected to ``listener`` (the kernel completes connections before any accept())."""
    listener.setblocking(False)
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_rebinding_the_name_after_the_check_does_not_move_the_delivery(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, drain: Any
) -> None:
    """Development (loopback allowed): the delivery goes to the first answer, however later lookups answer."""
    with serving(Receiver(), "127.0.0.1") as first, socket.create_server(("127.0.0.2", first.port)) as second:
        answered = rebinding(monkeypatch, "rebind.test", "127.0.0.1", "127.0.0.2")
        url = f"http://rebind.test:{first.port}/hooks"
        created = tenant.post("/v1/webhooks", {"url": url, "events": ["consent.granted"]})
        assert created.status_code == 201, created.json
        tenant.purpose()
        assert tenant.consent(tenant.subject()["id"]).status_code == 201
        drain()
        assert answered[:1] == ["127.0.0.1"]
        [(headers, body)] = first.received
        assert headers["host"] == f"rebind.test:{first.port}"
        assert verify(created.json["secret"], headers, body)["type"] == "consent.granted"
        assert not connected(second)


def test_production_rebinding_to_loopback_reaches_nothing(
    app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production: a public first answer, loopback afterwards; the loopback listener is never connected to."""
    with socket.create_server(("127.0.0.1", 0)) as inside:
        port = inside.getsockname()[1]
        url = f"https://rebind.test:{port}/hooks"
        hook_id = tenant.post("/v1/webhooks", {"url": url, "events": ["consent.granted"]}).json["id"]
        answered = rebinding(monkeypatch, "rebind.test", "93.184.216.34", "127.0.0.1")
        with app.app_context():
            outcome = sender_of(app, development=False, timeout=0.5).send(a_message(hook_id), {"type": "x"})
        assert answered == ["93.184.216.34"]  # looked up once
        assert (outcome.ok, outcome.error) == (False, "webhook_unreachable")  # no network here: nobody answers
        assert not connected(inside)


def test_a_refused_connection_moves_on_to_the_next_checked_address(
    app: Flask, tenant: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first address refuses the connection (nobody listens on 127.0.0.2 at that port): the second serves."""
    url = f"http://two.test:{receiver.port}/hooks"
    hook_id = tenant.post("/v1/webhooks", {"url": url, "events": ["consent.granted"]}).json["id"]
    addresses = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", receiver.port)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port)),
    ]
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda h, *a, **k: addresses if h == "two.test" else real(h, *a, **k))
    with app.app_context():
        outcome = sender_of(app).send(a_message(hook_id), {"type": "consent.granted"})
    assert outcome.ok and len(receiver.received) == 1


def certificate(tmp_path: Path, hostname: str) -> Path:
    """A self-signed certificate and its key for ``hostname``, in one PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"{hostname}.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


@pytest.mark.parametrize(("served_name", "delivered"), [("pinned.test", True), ("other.test", False)])
def test_tls_to_the_pinned_address_keeps_the_url_host_name(
    app: Flask,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    served_name: str,
    delivered: bool,
) -> None:
    """Connected to 127.0.0.1, yet SNI, ``Host`` and the certificate check are the URL's name's: a
    certificate for another name is refused."""
    pem = certificate(tmp_path, served_name)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(pem)
    real_context = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = real_context(*args, **kwargs)
        context.load_verify_locations(cafile=str(pem))  # trusts the test certificate, verifies as ever
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    with serving(Receiver(), tls=server_side) as box:
        rebinding(monkeypatch, "pinned.test", "127.0.0.1", "127.0.0.1")
        url = f"https://pinned.test:{box.port}/hooks"
        hook_id = tenant.post("/v1/webhooks", {"url": url, "events": ["consent.granted"]}).json["id"]
        with app.app_context():
            outcome = sender_of(app).send(a_message(hook_id), {"type": "consent.granted"})
        assert box.server_names == ["pinned.test"]
        if delivered:
            assert outcome.ok and [h["host"] for h, _ in box.received] == [f"pinned.test:{box.port}"]
        else:
            assert (outcome.ok, outcome.error, box.received) == (False, "webhook_unreachable", [])


# --- URL rules: IPv6 wrappers, ports --------------------------------------------------------------------------

WRAPPING_PRIVATE = [
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45
    "2001:0:a00:1:8000:63bf:3fff:fdd2",  # Teredo, server 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]


@pytest.mark.parametrize("address", WRAPPING_PRIVATE)
def test_ipv6_addresses_wrapping_a_private_ipv4_are_refused(address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UrlRefused):
        check_url(f"https://[{address}]/x", development=False)
    rebinding(monkeypatch, "wrapped.test", address, address)
    with pytest.raises(UrlRefused):
        check_url("https://wrapped.test/x", development=False)
    if "7f00:1" not in address:  # development allows loopback, wrapped or not
        with pytest.raises(UrlRefused):
            check_url("http://wrapped.test/x", development=True)


def test_nat64_of_a_public_ipv4_is_judged_by_that_address() -> None:
    target = check_url("https://[64:ff9b::5db8:d822]/x", development=False)  # 93.184.216.34
    assert target.host_header == "[64:ff9b::5db8:d822]"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com:99999/x",
        "https://example.com:65536/x",
        "https://example.com:0/x",
        "https://example.com:-1/x",
        "https://example.com:https/x",
        "https://[::1/x",
        "https://example.com/a b",
        "https://example.com/a\r\nX-Injected: 1",
    ],
)
@pytest.mark.parametrize("development", [True, False])
def test_unreadable_urls_are_refused_not_raised(url: str, development: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rebinding(monkeypatch, "example.com", "93.184.216.34", "93.184.216.34")  # resolution is not the reason
    with pytest.raises(UrlRefused):
        check_url(url, development=development)


@pytest.mark.parametrize("env", ["test", "production"])
def test_a_port_out_of_range_answers_422(app: Flask, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setitem(app.config, "ENV", env)  # read at each request
    rebinding(monkeypatch, "example.com", "93.184.216.34", "93.184.216.34")
    answer = tenant.post("/v1/webhooks", {"url": "https://example.com:99999/", "events": ["consent.granted"]})
    assert (answer.status_code, answer.json["code"]) == (422, "webhook_url_refused"), answer.json
    assert "port" in answer.json["message"]


# --- failures that may pass, and those that cannot -----------------------------------------------------------


def test_a_dns_failure_at_delivery_is_tried_again(
    app: Flask, tenant: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, drain: Any
) -> None:
    url = f"http://flaky.test:{receiver.port}/hooks"
    hook_id = tenant.post("/v1/webhooks", {"url": url, "events": ["consent.granted"]}).json["id"]
    temporary = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    answered = rebinding(monkeypatch, "flaky.test", temporary, "127.0.0.1")  # type: ignore[arg-type]
    tenant.purpose()
    assert tenant.consent(tenant.subject()["id"]).status_code == 201
    with app.app_context():
        assert Dispatcher.of(app).drain(limit=1) == 1
    [delivery] = tenant.get(f"/v1/webhooks/{hook_id}/deliveries").json["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("queued", 1, "webhook_unresolved")
    assert receiver.received == []
    drain()
    [delivery] = tenant.get(f"/v1/webhooks/{hook_id}/deliveries").json["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("sent", 2, 204)
    assert len(receiver.received) == 1 and answered == [temporary, "127.0.0.1"]


def test_a_name_resolving_to_a_refused_address_fails_at_once(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch, drain: Any
) -> None:
    hook_id = tenant.post("/v1/webhooks", {"url": "http://moved.test/hooks", "events": ["consent.granted"]}).json["id"]
    rebinding(monkeypatch, "moved.test", "10.0.0.5", "10.0.0.5")
    tenant.purpose()
    assert tenant.consent(tenant.subject()["id"]).status_code == 201
    drain()
    [delivery] = tenant.get(f"/v1/webhooks/{hook_id}/deliveries").json["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("failed", 1, "webhook_url_refused")


def test_a_secret_that_does_not_decrypt_fails_the_delivery_without_raising(
    tenant: Tenant, receiver: Receiver, db_session: Session, drain: Any
) -> None:
    hook_id = tenant.post("/v1/webhooks", {"url": receiver.url, "events": ["consent.granted"]}).json["id"]
    other_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    webhook = db_session.get(WebhookRow, hook_id)
    assert webhook is not None
    webhook.secret_ciphertext = DataProtector(other_key).encrypt("whsec_" + base64.b64encode(b"k" * 32).decode())
    db_session.commit()
    tenant.purpose()
    assert tenant.consent(tenant.subject()["id"]).status_code == 201
    drain()
    [delivery] = tenant.get(f"/v1/webhooks/{hook_id}/deliveries").json["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "failed",
        1,
        "webhook_secret_unreadable",
    )
    assert receiver.received == []


# --- the limit of 20, under concurrency ------------------------------------------------------------------------


def test_concurrent_creations_never_pass_the_limit(app: Flask, tenant: Tenant, receiver: Receiver, race: Race) -> None:
    """19 webhooks, then five creations at once, a few rounds: one takes the last place, four get 422."""
    body = {"url": receiver.url, "events": ["consent.granted"]}

    def create() -> tuple[int, str | None]:
        answer = app.test_client().post("/v1/webhooks", json=body, headers=tenant.headers("admin"))
        return answer.status_code, (answer.json or {}).get("code")

    for _ in range(19):
        assert tenant.post("/v1/webhooks", body).status_code == 201
    for _round in range(4):
        [answers] = race(*[create] * 5)
        assert sorted(answers, key=str) == [(201, None)] + [(422, "too_many_webhooks")] * 4, answers  # type: ignore[arg-type]
        items = tenant.get("/v1/webhooks").json["items"]
        assert len(items) == 20
        assert tenant.delete(f"/v1/webhooks/{items[-1]['id']}", scope="admin").status_code == 204
