"""Fuzzing the verification endpoint: no body of any shape, size or encoding answers 500.

One WSGI endpoint, in front of Flask (``service.verification.endpoint``), answers every ``POST`` to
``/v1/verifications`` and ``/v1/verifications/batch``; other methods on these paths go on to Flask (405). In
order, it:

1. reads the body, declared by a ``Content-Length`` or chunked, within ``MAX_CONTENT_LENGTH`` (a batch:
   ``BATCH_MAX_CONTENT_LENGTH``): 413 ``payload_too_large``; as JSON (``application/json`` or
   ``application/*+json``): 415 ``unsupported_media_type``; and no deeper than 32 levels: 400
   ``json_too_deep``. All of these before authentication;
2. authenticates: no key or an unknown one 401, a key without the ``verify`` scope 403;
3. parses UTF-8 JSON (no byte order mark, no other encoding): 400 ``malformed_json``; then validates it
   with the schema: 422 ``validation_error``;
4. counts it, once, against the key's rate limit (a batch costs its items): 429;
5. decides and records it.

So every answer is JSON and one of:

- 200 ``{decision, reason, consent_id, verification_id}`` (single) or ``{"results": [...]}`` (batch), each
  result recorded as one row of ``verifications``;
- 503 ``{decision: deny, reason: unavailable, code: service_unavailable}``, nothing recorded;
- a 4xx whose body has a ``code`` of ``service.errors.ERROR_CODES`` and that ``status``, nothing recorded.

The tests talk to the HTTP surface only: status, headers, the JSON body, and the row counts of
``verifications`` and ``audit_events`` (a verification writes no audit event). They run on both databases,
each test twice: with a key read from the database on every request, on the endpoint's own connection
(``API_KEY_CACHE_SECONDS=0``), and with a key cache (``API_KEY_CACHE_SECONDS=300``, warmed up). In process,
requests go through the test client (``app.wsgi_app``: the endpoint, then Flask), a body without a length as
a server that de-chunked it passes it on; an exception the endpoint raises reaches the test client and counts
as a 500. Chunked bodies and raw header spellings go over a socket to the app served on a loopback port (the
``live`` fixture: the request written byte for byte, the answer read by ``http.client``).

Broken framing (a bad chunk size, a chunk cut short, both Content-Length and chunked) is refused with 400
``bad_request``, at the end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from schemas.verifications import REASONS
from service.errors import ERROR_CODES

if TYPE_CHECKING:
    from tests.support import Tenant

#: Verifications commit on connections of their own, and a served app is used: every test commits for real.
pytestmark = pytest.mark.committed

SINGLE, BATCH = "/v1/verifications", "/v1/verifications/batch"
PATHS = (SINGLE, BATCH)
JSON = "application/json"
RESULT_KEYS = {"decision", "reason", "consent_id", "verification_id"}
FIELDS = ("purpose", "token", "subject_id", "device_id")
#: Callers whose key may allow: the tenant's own verify key, however the header spells it.
OWN_KEY = ("key", "lowercase", "spaces")

FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- The world, the requests and the contract --------------------------------------------------------------


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """An organization (with an active consent, unless ``consent_id`` is empty), another one, and every way of
    spelling a caller; ``port`` when the app is also served."""

    app: Flask
    client: FlaskClient
    token: str
    subject_id: str
    consent_id: str
    authorizations: dict[str, str | None]
    port: int | None = None

    def rows(self) -> tuple[int, int]:
        engine = self.app.extensions["consent_gate.engine"]
        with engine.connect() as conn:
            verifications = conn.execute(text("SELECT count(*) FROM verifications")).scalar_one()
            audit = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
        return int(verifications), int(audit)

    def fill(self, body: bytes) -> bytes:
        """``@TOKEN@`` and ``@SUBJECT@`` replaced by the consent's token and its subject."""
        return body.replace(b"@TOKEN@", self.token.encode()).replace(b"@SUBJECT@", self.subject_id.encode())

    def limit(self, path: str) -> int:
        return int(self.app.config["MAX_CONTENT_LENGTH" if path == SINGLE else "BATCH_MAX_CONTENT_LENGTH"])


@pytest.fixture(params=["uncached key", "cached key"])
def route(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> str:
    """How the endpoint finds the caller: its key read from the database on every request (on the endpoint's
    own connection), or from the key cache. Requested first: it configures the app."""
    app_config["API_KEY_CACHE_SECONDS"] = 300 if request.param == "cached key" else 0
    app_config["RATE_LIMIT_PREFIX"] = f"cg-fuzz-{uuid.uuid4().hex}"
    return str(request.param)


def _authorizations(tenant: Tenant, other_tenant: Tenant) -> dict[str, str | None]:
    key = tenant.keys["verify"]
    return {
        "key": f"Bearer {key}",
        "lowercase": f"bearer {key}",
        "spaces": f"Bearer   {key}",
        "none": None,
        "wrong": "Bearer cg_" + "A" * 43,
        "basic": f"Basic {key}",
        "no scope": f"Bearer {tenant.keys['consents']}",
        "other tenant": f"Bearer {other_tenant.keys['verify']}",
    }


@pytest.fixture()
def world(route: str, app: Flask, client: FlaskClient, tenant: Tenant, other_tenant: Tenant) -> World:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    # The first request of each key fills the key cache, when there is one.
    warm = tenant.verify("door_access", token=consent["token"])
    assert (warm.status_code, warm.json["decision"]) == (200, "allow"), warm.json
    other = other_tenant.verify("door_access", token=consent["token"])
    assert (other.status_code, other.json["decision"]) == (200, "deny"), other.json
    return World(app, client, consent["token"], person["id"], consent["id"], _authorizations(tenant, other_tenant))


@pytest.fixture()
def keys_world(route: str, app: Flask, client: FlaskClient, tenant: Tenant, other_tenant: Tenant) -> World:
    """Keys but no consent (cheaper): for requests whose answer no consent changes."""
    for caller in (tenant, other_tenant):  # fills the key cache, when there is one
        assert caller.verify("door_access", token="not-a-token").status_code == 200
    return World(app, client, "not-a-token", str(uuid.uuid4()), "", _authorizations(tenant, other_tenant))


@pytest.fixture()
def served(route: str, live: str, live_port: int, world: World) -> World:
    """The world, its app also served on a loopback port, a thread per request (``route`` first: it
    configures the app)."""
    world.port = live_port
    return world


def post(
    world: World,
    path: str,
    body: bytes,
    *,
    caller: str = "key",
    content_type: str | None = JSON,
    chunked: bool = False,
) -> Answer:
    """In process, through ``app.wsgi_app``. ``chunked``: no length, as from a server that de-chunked the body
    (``wsgi.input_terminated``, as gunicorn and werkzeug's server set it)."""
    headers: dict[str, str] = {}
    authorization = world.authorizations[caller]
    if authorization is not None:
        headers["Authorization"] = authorization
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            response = world.client.post(
                path,
                input_stream=io.BytesIO(body),
                headers=headers,
                environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
            )
        else:
            response = world.client.post(path, data=body, headers=headers)
    except Exception as exc:  # raised by the endpoint, which no Flask handler catches: a server answers 500
        return Answer(500, "(an exception reached the server)", repr(exc).encode())
    return Answer(response.status_code, response.headers.get("Content-Type", ""), response.get_data())


def raw_request(path: str, head: list[bytes], body: bytes, *, chunks: int | None = None) -> bytes:
    """An HTTP/1.1 request as written on the wire: ``head`` lines as given, the body chunked or with a length."""
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *head]
    if chunks is None:
        if not any(line.lower().startswith(b"content-length:") for line in head):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + body
    if not any(line.lower().startswith(b"transfer-encoding:") for line in head):
        lines.append(b"Transfer-Encoding: chunked")
    framed = b"".join(
        b"%x\r\n" % len(body[i : i + chunks]) + body[i : i + chunks] + b"\r\n" for i in range(0, len(body), chunks)
    )
    return b"\r\n".join(lines) + b"\r\n\r\n" + framed + b"0\r\n\r\n"


def auth_head(world: World, caller: str, content_type: bytes = b"Content-Type: application/json") -> list[bytes]:
    authorization = world.authorizations[caller]
    return [content_type] + ([] if authorization is None else [b"Authorization: " + authorization.encode()])


def send_raw(port: int, request: bytes) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # a body shorter than announced ends here, instead of waiting for more
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        body = response.read()
        return Answer(response.status, response.getheader("Content-Type", ""), body, dict(response.getheaders()))


def _no_constants(name: str) -> Any:
    raise AssertionError(f"the answer is not strict JSON: {name}")


def check(world: World, path: str, answer: Answer, before: tuple[int, int], caller: str = "key") -> Any:
    """The contract, for any request: JSON, 200/503/4xx of the documented shapes, a 4xx records nothing."""
    after = world.rows()
    shown = f"{answer.status} {answer.content_type} {answer.body[:300]!r}"
    assert answer.status != 500 and answer.status < 600, shown
    assert answer.content_type.partition(";")[0].strip() == JSON, shown
    data = json.loads(answer.body, parse_constant=_no_constants)
    recorded, audited = after[0] - before[0], after[1] - before[1]
    assert audited == 0, f"a verification wrote {audited} audit event(s): {shown}"
    if answer.status == 200:
        if path == SINGLE:
            assert isinstance(data, dict) and set(data) == RESULT_KEYS, shown
            results = [data]
        else:
            assert isinstance(data, dict) and set(data) == {"results"}, shown
            results = data["results"]
            assert isinstance(results, list) and 1 <= len(results) <= 1000, shown
        for result in results:
            assert isinstance(result, dict) and set(result) == RESULT_KEYS, shown
            assert result["decision"] in ("allow", "deny"), shown
            assert result["reason"] in REASONS and result["reason"] != "unavailable", shown
            assert (result["decision"] == "allow") == (result["reason"] == "consent_active"), shown
            assert isinstance(result["verification_id"], str) and result["verification_id"], shown
            if result["decision"] == "allow":
                # Only the tenant's own verify key allows, and only its own consent.
                assert caller in OWN_KEY and result["consent_id"] == world.consent_id, (caller, shown)
        assert len({r["verification_id"] for r in results}) == len(results), shown
        assert recorded == len(results), f"{recorded} row(s) recorded for {len(results)} result(s): {shown}"
    elif answer.status == 503:
        assert isinstance(data, dict), shown
        assert {k: data.get(k) for k in ("decision", "reason", "code")} == {
            "decision": "deny",
            "reason": "unavailable",
            "code": "service_unavailable",
        }, shown
        assert recorded == 0, f"{recorded} row(s) recorded for a 503: {shown}"
    else:
        assert 400 <= answer.status < 500, shown
        assert isinstance(data, dict) and data.get("code") in ERROR_CODES, shown
        assert data.get("status") == answer.status, shown
        assert recorded == 0, f"{recorded} row(s) recorded for a {answer.status}: {shown}"
    return data


def exchange(world: World, path: str, body: bytes, *, caller: str = "key", **kwargs: Any) -> tuple[Answer, Any]:
    before = world.rows()
    answer = post(world, path, body, caller=caller, **kwargs)
    return answer, check(world, path, answer, before, caller)


def served_exchange(world: World, path: str, request: bytes, caller: str = "key") -> tuple[Answer, Any]:
    assert world.port is not None
    before = world.rows()
    answer = send_raw(world.port, request)
    return answer, check(world, path, answer, before, caller)


def as_batch(item: bytes) -> bytes:
    return b'{"items": [' + item + b"]}"


def padded(body: bytes, size: int) -> bytes:
    """``body`` with trailing whitespace, ``size`` bytes in all."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


def encode(value: Any) -> bytes:
    # ensure_ascii: lone surrogates travel escaped (\ud800), as a client written in any language may send them.
    return json.dumps(value).encode()


VALID_ITEM = b'{"purpose": "door_access", "token": "@TOKEN@"}'


def valid_body(world: World, path: str) -> bytes:
    item = world.fill(VALID_ITEM)
    return item if path == SINGLE else as_batch(item)


def batch_of(world: World, count: int, size: int | None = None) -> bytes:
    body = encode({"items": [{"purpose": "door_access", "token": world.token}] * count})
    return body if size is None else padded(body, size)


# --- Explicit cases, run in loops: every failing case is reported, not only the first ----------------------

Body = bytes | Callable[[World], bytes]


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: Body
    #: (status, code); code ``None``: any; the whole ``None``: any answer of the contract.
    expected: tuple[int, str | None] | None = None
    caller: str = "key"
    content_type: str | None = JSON
    chunked: bool = False
    #: For a 200: how many results, and their decisions.
    results: int | None = None
    decisions: frozenset[str] | None = None
    reasons: frozenset[str] | None = None

    @property
    def label(self) -> str:
        how = " (chunked)" if self.chunked else ""
        return f"{self.path.rsplit('/', 1)[1]}: {self.name}{how}, caller {self.caller}, type {self.content_type}"

    def run(self, world: World) -> None:
        body = self.body(world) if callable(self.body) else world.fill(self.body)
        answer, data = exchange(
            world, self.path, body, caller=self.caller, content_type=self.content_type, chunked=self.chunked
        )
        verify(answer, data, self.expected, self.results, self.decisions, self.reasons)


def verify(
    answer: Answer,
    data: Any,
    expected: tuple[int, str | None] | None,
    results: int | None = None,
    decisions: frozenset[str] | None = None,
    reasons: frozenset[str] | None = None,
) -> None:
    if expected is not None:
        status, code = expected
        assert answer.status == status, f"expected {status} {code or ''}, got {answer.status} {answer.body[:300]!r}"
        if code is not None:
            assert data["code"] == code, f"expected {status} {code}, got {data}"
    if answer.status == 200:
        found = data.get("results", [data])
        if results is not None:
            assert len(found) == results, f"{len(found)} results, expected {results}"
        if decisions is not None:
            assert {r["decision"] for r in found} == decisions, f"decisions {found}, expected {set(decisions)}"
        if reasons is not None:
            assert {r["reason"] for r in found} <= reasons, f"reasons {found}, expected {set(reasons)}"


def run_all(world: World, cases: list[Case]) -> None:
    failures = []
    for case in cases:
        try:
            case.run(world)
        except AssertionError as exc:
            failures.append(f"{case.label}: {exc}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


ALLOW, DENY = frozenset({"allow"}), frozenset({"deny"})
OK = (200, None)
INVALID = (422, "validation_error")
MALFORMED = (400, "malformed_json")
TOO_DEEP = (400, "json_too_deep")
TOO_LARGE = (413, "payload_too_large")
UNSUPPORTED = (415, "unsupported_media_type")
UNAUTHORIZED = (401, "unauthorized")

#: Items: the single body, and a batch's one item (``{"items": [item]}``), with the answer expected for both.
#: ``@TOKEN@`` and ``@SUBJECT@`` stand for the consent's token and its subject.
ITEMS: dict[str, tuple[bytes, tuple[int, str | None], frozenset[str] | None]] = {
    "valid token": (VALID_ITEM, OK, ALLOW),
    "valid subject": (b'{"purpose": "door_access", "subject_id": "@SUBJECT@"}', OK, ALLOW),
    "valid with device": (b'{"purpose": "door_access", "token": "@TOKEN@", "device_id": "gate"}', OK, DENY),
    "both token and subject": (
        b'{"purpose": "door_access", "token": "@TOKEN@", "subject_id": "@SUBJECT@"}',
        INVALID,
        None,
    ),
    "neither token nor subject": (b'{"purpose": "door_access"}', INVALID, None),
    "neither, and device": (b'{"purpose": "door_access", "device_id": "gate"}', INVALID, None),
    "no purpose": (b'{"token": "@TOKEN@"}', INVALID, None),
    "an empty object": (b"{}", INVALID, None),
    "purpose a number": (b'{"purpose": 7, "token": "@TOKEN@"}', INVALID, None),
    "purpose true": (b'{"purpose": true, "token": "@TOKEN@"}', INVALID, None),
    "purpose null": (b'{"purpose": null, "token": "@TOKEN@"}', INVALID, None),
    "token a list": (b'{"purpose": "door_access", "token": ["@TOKEN@"]}', INVALID, None),
    "token an object": (b'{"purpose": "door_access", "token": {"t": "@TOKEN@"}}', INVALID, None),
    "token null, subject given": (
        b'{"purpose": "door_access", "token": null, "subject_id": "@SUBJECT@"}',
        INVALID,
        None,
    ),
    "subject a float": (b'{"purpose": "door_access", "subject_id": 1.5}', INVALID, None),
    "device null": (b'{"purpose": "door_access", "token": "@TOKEN@", "device_id": null}', INVALID, None),
    "device a number": (b'{"purpose": "door_access", "token": "@TOKEN@", "device_id": 7}', INVALID, None),
    "empty purpose": (b'{"purpose": "", "token": "@TOKEN@"}', INVALID, None),
    "empty token": (b'{"purpose": "door_access", "token": ""}', INVALID, None),
    "empty subject": (b'{"purpose": "door_access", "subject_id": ""}', INVALID, None),
    "purpose of 64": (b'{"purpose": "' + b"p" * 64 + b'", "token": "@TOKEN@"}', OK, DENY),
    "purpose of 65": (b'{"purpose": "' + b"p" * 65 + b'", "token": "@TOKEN@"}', INVALID, None),
    "token of 4096": (b'{"purpose": "door_access", "token": "' + b"t" * 4096 + b'"}', OK, DENY),
    "token of 4097": (b'{"purpose": "door_access", "token": "' + b"t" * 4097 + b'"}', INVALID, None),
    "subject of 36": (b'{"purpose": "door_access", "subject_id": "' + b"s" * 36 + b'"}', OK, DENY),
    "subject of 37": (b'{"purpose": "door_access", "subject_id": "' + b"s" * 37 + b'"}', INVALID, None),
    "device of 64": (b'{"purpose": "door_access", "token": "@TOKEN@", "device_id": "' + b"d" * 64 + b'"}', OK, DENY),
    "device of 65": (
        b'{"purpose": "door_access", "token": "@TOKEN@", "device_id": "' + b"d" * 65 + b'"}',
        INVALID,
        None,
    ),
    "a 60 KB token": (b'{"purpose": "door_access", "token": "' + b"t" * 60_000 + b'"}', INVALID, None),
    "unknown key": (b'{"purpose": "door_access", "token": "@TOKEN@", "face": "/9j/4AAQ"}', INVALID, None),
    "empty key": (b'{"purpose": "door_access", "token": "@TOKEN@", "": 1}', INVALID, None),
    "key in another case": (b'{"Purpose": "door_access", "token": "@TOKEN@"}', INVALID, None),
    "NUL in purpose": (b'{"purpose": "door\\u0000access", "token": "@TOKEN@"}', INVALID, None),
    "NUL in token": (b'{"purpose": "door_access", "token": "@TOKEN@\\u0000"}', INVALID, None),
    "NUL in subject": (b'{"purpose": "door_access", "subject_id": "\\u0000"}', INVALID, None),
    "NUL in a key": (b'{"purpose": "door_access", "token": "@TOKEN@", "\\u0000": "x"}', INVALID, None),
    "lone high surrogate": (b'{"purpose": "door_access", "token": "\\ud800"}', INVALID, None),
    "lone low surrogate": (b'{"purpose": "door_access", "subject_id": "a\\udc00"}', INVALID, None),
    "lone surrogate in device": (
        b'{"purpose": "door_access", "token": "@TOKEN@", "device_id": "\\udbff"}',
        INVALID,
        None,
    ),
    "lone surrogate in a key": (b'{"purpose": "door_access", "token": "@TOKEN@", "\\ud800": 1}', INVALID, None),
    "surrogate pair": (b'{"purpose": "\\ud83d\\ude00", "token": "@TOKEN@"}', OK, DENY),
    "raw UTF-8 of a surrogate": (b'{"purpose": "door_access", "token": "\xed\xa0\x80"}', MALFORMED, None),
    "invalid UTF-8 in a string": (b'{"purpose": "door\xffaccess", "token": "@TOKEN@"}', MALFORMED, None),
    "overlong UTF-8": (b'{"purpose": "door\xc0\xafaccess", "token": "@TOKEN@"}', MALFORMED, None),
    "NaN": (b'{"purpose": NaN, "token": "@TOKEN@"}', INVALID, None),
    "Infinity": (b'{"purpose": "door_access", "token": Infinity}', INVALID, None),
    "-Infinity": (b'{"purpose": "door_access", "subject_id": -Infinity}', INVALID, None),
    "1e999999": (b'{"purpose": 1e999999, "token": "@TOKEN@"}', INVALID, None),
    "a 4300-digit integer": (b'{"purpose": ' + b"9" * 4300 + b', "token": "@TOKEN@"}', INVALID, None),
    # Python refuses to convert integers of more than 4300 digits: not JSON it can read.
    "a 5000-digit integer": (b'{"purpose": ' + b"9" * 5000 + b', "token": "@TOKEN@"}', MALFORMED, None),
    "duplicate keys, last valid": (
        b'{"purpose": 1, "token": [], "purpose": "door_access", "token": "@TOKEN@"}',
        OK,
        ALLOW,
    ),
    "duplicate keys, last invalid": (b'{"purpose": "door_access", "token": "@TOKEN@", "token": 7}', INVALID, None),
    "truncated": (b'{"purpose": "door_access", "token": ', MALFORMED, None),
    "trailing garbage": (b'{"purpose": "door_access", "token": "@TOKEN@"} x', MALFORMED, None),
    "trailing comma": (b'{"purpose": "door_access", "token": "@TOKEN@",}', MALFORMED, None),
    "single quotes": (b"{'purpose': 'door_access', 'token': '@TOKEN@'}", MALFORMED, None),
    "raw newline in a string": (b'{"purpose": "door\naccess", "token": "@TOKEN@"}', MALFORMED, None),
    "bad escape": (b'{"purpose": "door\\xaccess", "token": "@TOKEN@"}', MALFORMED, None),
    "brackets in a string": (b'{"purpose": "' + b"[{" * 30 + b'", "token": "@TOKEN@"}', OK, DENY),
}

#: Whole bodies, sent as they are to both endpoints; ``None``: any answer of the contract.
BODIES: dict[str, tuple[bytes, tuple[int, str | None] | None]] = {
    "empty": (b"", MALFORMED),
    "whitespace": (b" \r\n\t ", MALFORMED),
    "null": (b"null", INVALID),
    "a list": (b"[]", INVALID),
    "a list of a valid item": (b"[" + VALID_ITEM + b"]", INVALID),
    "a string": (b'"door_access"', INVALID),
    "a number": (b"0", INVALID),
    "true": (b"true", INVALID),
    "NaN": (b"NaN", INVALID),
    "Infinity": (b"Infinity", INVALID),
    "1e999999": (b"1e999999", INVALID),
    "-1e999999": (b"-1e999999", INVALID),
    "a 5000-digit integer": (b"9" * 5000, MALFORMED),
    "an open brace": (b"{", MALFORMED),
    "two documents": (b"{}{}", MALFORMED),
    "a NUL byte": (b"\x00", MALFORMED),
    "invalid UTF-8": (b"\xff\xfe\xfd", MALFORMED),
    "32 levels": (b"[" * 32 + b"]" * 32, INVALID),
    "33 levels": (b"[" * 33 + b"]" * 33, TOO_DEEP),
    "60 KB of [": (b"[" * 60_000, TOO_DEEP),
    '60 KB of {"a":': (b'{"a":' * 12_000, TOO_DEEP),
    "60 KB of ]": (b"]" * 60_000, MALFORMED),
    "deep inside items": (b'{"items": ' + b"[" * 40 + b"]" * 40 + b"}", TOO_DEEP),
    # Brackets inside a string (closed or not) are text, not nesting: not JSON, but nothing deep to parse.
    "an unterminated string, then brackets": (b'{"purpose": "' + b"[" * 60_000, MALFORMED),
    "brackets in strings only": (b'{"purpose": "' + b"[" * 1000 + b'", "token": "t"}', INVALID),
}

DEEP = ("60 KB of [", '60 KB of {"a":')
#: Too deep, by one level or by thousands.
TOO_DEEP_BODIES = ("33 levels", *DEEP)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def _reheader(world: World, **changes: Any) -> str:
    """The consent's token with its header changed (and so its signature no longer matching)."""
    header, claims, signature = world.token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    return ".".join((_segment({**decoded, **changes}), claims, signature))


def _reclaim(world: World, **changes: Any) -> str:
    header, claims, signature = world.token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    return ".".join((header, _segment({**decoded, **changes}), signature))


def _hs256(world: World) -> str:
    header, claims, _ = _reheader(world, alg="HS256").split(".")
    mac = hmac.new(b"the public key, as a secret", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(mac)}"


def _flipped(token: str) -> str:
    return token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]


#: Tokens that must deny ``invalid_token``, never 500 or 503: what an attacker or a broken client sends.
TOKENS: dict[str, Callable[[World], str]] = {
    "three dots": lambda world: "...",
    "two segments": lambda world: world.token.rsplit(".", 1)[0],
    "four segments": lambda world: world.token + ".e30",
    "its signature changed": lambda world: _flipped(world.token),
    "its signature empty": lambda world: world.token.rsplit(".", 1)[0] + ".",
    "padded": lambda world: world.token + "==",
    "a space before": lambda world: " " + world.token,
    "alg none": lambda world: _reheader(world, alg="none").rsplit(".", 1)[0] + ".",
    "alg HS256, signed with a guess": _hs256,
    "kid a number": lambda world: _reheader(world, kid=7),
    "kid a list": lambda world: _reheader(world, kid=["a"]),
    "kid of 2000 characters": lambda world: _reheader(world, kid="k" * 2000),
    "kid with NUL": lambda world: _reheader(world, kid="\x00"),
    "kid a lone surrogate": lambda world: ".".join(
        (_b64(b'{"alg":"ES256","typ":"consent+jwt","kid":"\\ud800"}'), *world.token.split(".")[1:])
    ),
    "jku header": lambda world: _reheader(world, jku="http://attacker.example/jwks.json"),
    "jwk header": lambda world: _reheader(world, jwk={"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
    "crit header": lambda world: _reheader(world, crit=["exp"]),
    "typ missing": lambda world: _reheader(world, typ=None),
    "header a list": lambda world: ".".join((_segment([1]), *world.token.split(".")[1:])),
    "header null": lambda world: ".".join((_segment(None), *world.token.split(".")[1:])),
    "header not JSON": lambda world: ".".join((_b64(b"not json"), *world.token.split(".")[1:])),
    "header invalid UTF-8": lambda world: ".".join((_b64(b'{"alg":"\xff"}'), *world.token.split(".")[1:])),
    "claims changed": lambda world: _reclaim(world, pur="another_purpose"),
    "claims exp a string": lambda world: _reclaim(world, exp="tomorrow"),
    "claims a list": lambda world: ".".join((world.token.split(".")[0], _segment([]), world.token.split(".")[2])),
    "non-ASCII": lambda world: "é.é.é",
    "4000 characters of base64": lambda world: "a" * 1900 + "." + "b" * 1900 + "." + "c" * 86,
}


def item_cases(path: str) -> list[Case]:
    cases = [
        Case(name, path, item if path == SINGLE else as_batch(item), expected, decisions=decisions)
        for name, (item, expected, decisions) in ITEMS.items()
    ]
    invalid = frozenset({"invalid_token"})
    for name, make in TOKENS.items():

        def by_token(world: World, make: Callable[[World], str] = make) -> bytes:
            item = encode({"purpose": "door_access", "token": make(world)})
            return item if path == SINGLE else as_batch(item)

        cases.append(Case(f"a token: {name}", path, by_token, OK, decisions=DENY, reasons=invalid))
    subjects: dict[str, Callable[[str], str]] = {
        "upper case": str.upper,
        "without hyphens": lambda subject: subject.replace("-", ""),
        "in braces": lambda subject: "{" + subject[:34] + "}",
    }
    for name, spell in subjects.items():

        def by_subject(world: World, spell: Callable[[str], str] = spell) -> bytes:
            item = encode({"purpose": "door_access", "subject_id": spell(world.subject_id)})
            return item if path == SINGLE else as_batch(item)

        cases.append(Case(f"a subject id {name}", path, by_subject, OK))
    return cases


#: Encodings other than UTF-8 (JSON's), a byte order mark included or not; and UTF-8 with one.
ENCODINGS = ("utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")


def encoded(path: str, codec: str) -> Callable[[World], bytes]:
    """A valid body for ``path``, in ``codec``."""
    return lambda world: valid_body(world, path).decode().encode(codec)


def body_cases(path: str) -> list[Case]:
    cases = [Case(name, path, body, expected) for name, (body, expected) in BODIES.items()]
    cases += [Case(name, path, body, expected, chunked=True) for name, (body, expected) in BODIES.items()]
    # Too deep is refused before authentication: with or without a key, whatever the content type's parameters,
    # with a length or chunked.
    for name in TOO_DEEP_BODIES:
        for caller in ("none", "wrong", "no scope"):
            for chunked in (False, True):
                cases.append(Case(name, path, BODIES[name][0], TOO_DEEP, caller=caller, chunked=chunked))
        cases.append(Case(name, path, BODIES[name][0], TOO_DEEP, content_type="application/json; charset=utf-8"))
    return cases


def header_cases(path: str) -> list[Case]:
    valid = VALID_ITEM if path == SINGLE else as_batch(VALID_ITEM)
    callers = {
        "key": (OK, ALLOW),
        "lowercase": (OK, ALLOW),
        "spaces": (OK, ALLOW),
        "none": (UNAUTHORIZED, None),
        "wrong": (UNAUTHORIZED, None),
        "basic": (UNAUTHORIZED, None),
        "no scope": ((403, "forbidden"), None),
        "other tenant": (OK, DENY),  # its key is valid, the token is not its organization's
    }
    cases = [
        Case("a valid body", path, valid, expected, caller=caller, decisions=decisions)
        for caller, (expected, decisions) in callers.items()
    ]
    # The type's parameters are ignored (a charset too: the body is read as UTF-8 whatever it says).
    content_types: dict[str | None, tuple[int, str | None]] = {
        None: UNSUPPORTED,
        "": UNSUPPORTED,
        "text/plain": UNSUPPORTED,
        "text/json": UNSUPPORTED,
        "application/x-www-form-urlencoded": UNSUPPORTED,
        "multipart/form-data; boundary=x": UNSUPPORTED,
        "application/jsonx": UNSUPPORTED,
        "application/json; charset=utf-16": OK,
        "application/json;charset=UTF-8": OK,
        "APPLICATION/JSON": OK,
        " application/json ; x=y": OK,
        "application/json-patch+json": OK,
        "application/vnd.api+json": OK,
        "Application/Problem+JSON": OK,
    }
    for content_type, expected in content_types.items():
        invalid = INVALID if expected == OK else expected
        for caller in ("key", "none"):  # the type is checked before the key
            found = expected if caller == "key" or expected != OK else UNAUTHORIZED
            cases.append(Case("a valid body", path, valid, found, caller=caller, content_type=content_type))
        cases.append(Case("an invalid body", path, b'{"purpose": 7}', invalid, content_type=content_type))
    return cases


@pytest.mark.parametrize("path", PATHS)
def test_near_valid_items(world: World, path: str) -> None:
    run_all(world, item_cases(path))


@pytest.mark.parametrize("path", PATHS)
def test_raw_bodies_and_deep_json(world: World, path: str) -> None:
    run_all(world, body_cases(path))


@pytest.mark.parametrize("path", PATHS)
def test_callers_and_content_types(world: World, path: str) -> None:
    run_all(world, header_cases(path))


def test_batch_shapes(world: World) -> None:
    def bad_at(position: int, bad: Any) -> Body:
        def body(world: World) -> bytes:
            items: list[Any] = [{"purpose": "door_access", "token": world.token}] * 1000
            items[position] = bad
            return encode({"items": items})

        return body

    good = b'{"purpose": "door_access", "token": "@TOKEN@"}'
    cases = [
        Case("no items", BATCH, b'{"items": []}', INVALID),
        Case("one item", BATCH, b'{"items": [' + good + b"]}", OK, results=1, decisions=ALLOW),
        Case("1000 items", BATCH, lambda world: batch_of(world, 1000), OK, results=1000, decisions=ALLOW),
        Case("1001 items", BATCH, lambda world: batch_of(world, 1001), INVALID),
        Case("items null", BATCH, b'{"items": null}', INVALID),
        Case("items an object", BATCH, b'{"items": ' + good + b"}", INVALID),
        Case("items a string", BATCH, b'{"items": "@TOKEN@"}', INVALID),
        Case("items of wrong types", BATCH, b'{"items": [1, "x", null, true, [], {}, 1.5]}', INVALID),
        Case("items of lists", BATCH, b'{"items": [[' + good + b"]]}", INVALID),
        Case("one bad item among good", BATCH, b'{"items": [' + good + b', {"purpose": "door_access"}]}', INVALID),
        Case("an extra key", BATCH, b'{"items": [' + good + b'], "more": 1}', INVALID),
        Case("no items key", BATCH, b'{"item": [' + good + b"]}", INVALID),
        Case("items twice, last valid", BATCH, b'{"items": 1, "items": [' + good + b"]}", OK, results=1),
        Case("a batch to the single endpoint", SINGLE, b'{"items": [' + good + b"]}", INVALID),
    ]
    wrong: list[Any] = [None, 7, "x", [], {"purpose": "door_access"}, {"purpose": "door_access", "token": "\ud800"}]
    for position in (0, 999):
        for bad in wrong:
            cases.append(Case(f"item {position} is {bad!r}", BATCH, bad_at(position, bad), INVALID))
    run_all(world, cases)


def test_sizes_around_the_limits(world: World) -> None:
    def sized(path: str, size_of: str, offset: int, count: int = 1) -> Body:
        """A valid body for ``path`` (``count`` items for a batch), padded to the limit of ``size_of`` + ``offset``."""

        def body(world: World) -> bytes:
            valid = valid_body(world, path) if count == 1 else batch_of(world, count)
            return padded(valid, world.limit(size_of) + offset)

        return body

    cases = []
    # With a Content-Length, or without one (chunked): the same limits, the same answers.
    for chunked in (False, True):
        cases += [
            Case("1 byte under the limit", SINGLE, sized(SINGLE, SINGLE, -1), OK, chunked=chunked, decisions=ALLOW),
            Case("at the limit", SINGLE, sized(SINGLE, SINGLE, 0), OK, chunked=chunked, decisions=ALLOW),
            Case("over the single's limit", BATCH, sized(BATCH, SINGLE, 1), OK, chunked=chunked, decisions=ALLOW),
            Case("1000 items, 1 byte under", BATCH, sized(BATCH, BATCH, -1, 1000), OK, chunked=chunked, results=1000),
            Case("1000 items at the limit", BATCH, sized(BATCH, BATCH, 0, 1000), OK, chunked=chunked, results=1000),
            Case("1 byte over the limit", SINGLE, sized(SINGLE, SINGLE, 1), TOO_LARGE, chunked=chunked),
            Case("1 byte over, no key", SINGLE, sized(SINGLE, SINGLE, 1), TOO_LARGE, chunked=chunked, caller="none"),
            # Both refused before authentication; the type is looked at first.
            Case(
                "1 byte over, not JSON",
                SINGLE,
                sized(SINGLE, SINGLE, 1),
                UNSUPPORTED,
                chunked=chunked,
                content_type="text/plain",
            ),
            Case("a batch's limit", SINGLE, sized(BATCH, BATCH, 0), TOO_LARGE, chunked=chunked),
            Case("1000 items, 1 byte over", BATCH, sized(BATCH, BATCH, 1, 1000), TOO_LARGE, chunked=chunked),
            Case("1 byte over, no key", BATCH, sized(BATCH, BATCH, 1), TOO_LARGE, chunked=chunked, caller="none"),
            Case("twice the limit", BATCH, sized(BATCH, BATCH, 2 * 1024 * 1024), TOO_LARGE, chunked=chunked),
        ]
    run_all(world, cases)


@pytest.mark.parametrize("path", PATHS)
def test_bodies_in_utf8_only(world: World, path: str) -> None:
    """JSON is UTF-8 (RFC 8259): a valid body in UTF-8 allows; the same body in UTF-16 or UTF-32, or after a
    byte order mark, is malformed JSON (400 ``malformed_json``) and records nothing."""
    cases = []
    for chunked in (False, True):
        cases.append(Case("a valid body in utf-8", path, encoded(path, "utf-8"), OK, chunked=chunked, decisions=ALLOW))
        cases += [Case(f"a valid body in {c}", path, encoded(path, c), MALFORMED, chunked=chunked) for c in ENCODINGS]
    run_all(world, cases)


def test_other_methods_go_to_flask(keys_world: World) -> None:
    """Only ``POST`` is the endpoint's: any other method on its paths is Flask's 405, and records nothing."""
    failures = []
    for path in PATHS:
        body = valid_body(keys_world, path)
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            before = keys_world.rows()
            headers = {"Authorization": str(keys_world.authorizations["key"]), "Content-Type": JSON}
            response = keys_world.client.open(path, method=method, data=body, headers=headers)
            answer = Answer(response.status_code, response.headers.get("Content-Type", ""), response.get_data())
            try:
                data = check(keys_world, path, answer, before)
                verify(answer, data, (405, "method_not_allowed"))
            except AssertionError as exc:
                failures.append(f"{method} {path}: {exc}")
    assert not failures, "\n".join(failures)


# --- Hypothesis: arbitrary JSON, near-valid objects, raw bytes ----------------------------------------------

#: Any character, lone surrogates (sent escaped, ``\ud800``), NUL and JSON's own specials included.
wild_chars = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from('\x00"\\[]{}'))
wild_text = st.text(wild_chars, max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**300),
    st.floats(),  # NaN and Infinity included: json.dumps writes them as NaN and Infinity
    wild_text,
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(wild_text, st.sampled_from((*FIELDS, "items"))), children, max_size=4)
    ),
    max_leaves=16,
)
callers = st.sampled_from(["key"] * 8 + ["lowercase", "spaces", "none", "wrong", "basic", "no scope", "other tenant"])
content_types = st.sampled_from(
    [JSON] * 6
    + [None, "text/plain", "application/json; charset=utf-16", "APPLICATION/JSON", "application/json-patch+json"]
)
CODECS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1")


def field_values(world: World) -> st.SearchStrategy[Any]:
    good = st.sampled_from(["door_access", world.token, world.subject_id, "no_such_purpose"])
    lengths = st.sampled_from([0, 1, 35, 36, 37, 63, 64, 65, 4095, 4096, 4097, 70_000]).map(lambda n: "x" * n)
    spoiled = st.tuples(good, st.sampled_from(["\x00", "\ud800", "\udc00", "\ud83d\ude00", " ", "\n"])).map(
        lambda pair: pair[0] + pair[1]
    )
    wrong_types = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.lists(good, max_size=2),
        st.dictionaries(good, good, max_size=2),
    )
    return st.one_of(good, good, good, lengths, spoiled, wild_text, wrong_types)


def items(world: World) -> st.SearchStrategy[Any]:
    value = field_values(world)
    near = st.fixed_dictionaries(
        {},
        optional={"purpose": value, "token": value, "subject_id": value, "device_id": value, "face": value, "": value},
    )
    valid = st.fixed_dictionaries(
        {"purpose": st.sampled_from(["door_access", "no_such_purpose"])},
        optional={"device_id": st.sampled_from(["gate-1", "x" * 64])},
    ).flatmap(lambda item: st.sampled_from([{**item, "token": world.token}, {**item, "subject_id": world.subject_id}]))
    return st.one_of(valid, near, near, json_values)


def bodies(world: World, path: str) -> st.SearchStrategy[Any]:
    """A near-valid body for ``path``: an item, or a batch of items, or almost one."""
    if path == SINGLE:
        return st.one_of(items(world), items(world), st.lists(items(world), max_size=3))
    batch = st.fixed_dictionaries(
        {"items": st.lists(items(world), max_size=6)}, optional={"extra": json_values, "items ": json_values}
    )
    return st.one_of(batch, batch, batch, items(world), st.fixed_dictionaries({"items": json_values}))


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(data=st.data())
def test_arbitrary_json_values(world: World, path: str, data: st.DataObject) -> None:
    value = data.draw(json_values, "value")
    if path == BATCH:
        value = data.draw(st.sampled_from([value, {"items": value}, {"items": [value]}]), "wrapped")
    caller = data.draw(callers, "caller")
    exchange(world, path, encode(value), caller=caller, content_type=data.draw(content_types, "content type"))


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(data=st.data())
def test_near_valid_objects(world: World, path: str, data: st.DataObject) -> None:
    body = data.draw(bodies(world, path), "body")
    caller = data.draw(callers, "caller")
    answer, answered = exchange(world, path, encode(body), caller=caller)
    if caller == "other tenant" and answer.status == 200:
        assert {r["decision"] for r in answered.get("results", [answered])} == {"deny"}


@pytest.mark.parametrize("path", PATHS)
@FUZZ
@given(data=st.data())
def test_raw_bytes(world: World, path: str, data: st.DataObject) -> None:
    valid = valid_body(world, path)
    kind = data.draw(st.sampled_from(["binary", "codec", "truncated", "flipped", "inserted"]), "kind")
    if kind == "binary":
        body = data.draw(st.binary(max_size=300), "body")
    elif kind == "codec":
        codec = data.draw(st.sampled_from(CODECS), "codec")
        value = data.draw(st.one_of(bodies(world, path), st.just(json.loads(valid))), "value")
        dumped = json.dumps(value, ensure_ascii=data.draw(st.booleans(), "ascii"))
        body = dumped.encode(codec, errors="replace" if codec == "latin-1" else "surrogatepass")
    else:
        at = data.draw(st.integers(0, len(valid) - 1), "at")
        noise = data.draw(st.binary(min_size=1, max_size=8), "noise")
        body = {
            "truncated": valid[:at],
            "flipped": valid[:at] + noise[:1] + valid[at + 1 :],
            "inserted": valid[:at] + noise + valid[at:],
        }[kind]
    exchange(world, path, body, caller=data.draw(callers, "caller"), content_type=data.draw(content_types, "type"))


# --- Over a socket: chunked bodies and raw header spellings -------------------------------------------------


def test_served_deep_json(served: World) -> None:
    """Too deep is refused before authentication, the body framed by a Content-Length or chunked."""
    failures = []
    for path in PATHS:
        for name in TOO_DEEP_BODIES:
            for caller in ("key", "none"):
                for chunks in (None, 4096):
                    request = raw_request(path, auth_head(served, caller), BODIES[name][0], chunks=chunks)
                    answer, data = served_exchange(served, path, request, caller)
                    if (answer.status, data.get("code")) != TOO_DEEP:
                        failures.append(f"{path} {name} caller {caller} chunks {chunks}: {answer.status} {data}")
    assert not failures, failures


@pytest.mark.parametrize("path", PATHS)
def test_served_chunked_bodies(served: World, path: str) -> None:
    head = auth_head(served, "key")
    valid = valid_body(served, path)
    limit = served.limit(path)
    over = padded(valid, limit) + b"x"
    cases: list[tuple[str, bytes, tuple[int, str | None] | None]] = [
        ("valid, one chunk", raw_request(path, head, valid, chunks=len(valid)), OK),
        ("valid, a byte a chunk", raw_request(path, head, valid, chunks=1), OK),
        ("valid, at the limit", raw_request(path, head, padded(valid, limit), chunks=8192), OK),
        ("1 byte over the limit", raw_request(path, head, over, chunks=8192), TOO_LARGE),
        ("1 byte over the limit, no key", raw_request(path, auth_head(served, "none"), over, chunks=8192), TOO_LARGE),
        ("empty", raw_request(path, head, b"", chunks=1), MALFORMED),
        ("truncated JSON", raw_request(path, head, valid[:-3], chunks=7), MALFORMED),
        ("invalid UTF-8", raw_request(path, head, b"\xff" + valid, chunks=5), MALFORMED),
        ("UTF-16", raw_request(path, head, valid.decode().encode("utf-16"), chunks=5), MALFORMED),
        ("not JSON", raw_request(path, [b"Content-Type: text/plain", *head[1:]], valid, chunks=5), UNSUPPORTED),
        # Both a Content-Length and chunked (RFC 9112 6.3): refused (test_served_broken_framing_is_refused).
        ("chunked and a Content-Length", raw_request(path, [*head, b"Content-Length: 3"], valid, chunks=16), None),
    ]
    if path == BATCH:
        cases.append(("1000 items", raw_request(path, head, batch_of(served, 1000), chunks=65536), OK))
        cases.append(("1001 items", raw_request(path, head, batch_of(served, 1001), chunks=65536), INVALID))
    failures = []
    for name, request, expected in cases:
        try:
            answer, data = served_exchange(served, path, request)
            verify(answer, data, expected)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)


def test_served_header_spellings(served: World) -> None:
    key = served.authorizations["key"]
    assert key is not None
    secret = key.split()[-1].encode()
    json_type = b"Content-Type: application/json"
    bearer = b"Authorization: Bearer " + secret
    cases: list[tuple[str, list[bytes], str, int | None]] = [
        ("as documented", [json_type, bearer], "key", 200),
        ("lowercase header and scheme", [json_type, b"authorization: bearer " + secret], "key", 200),
        ("no space after the colon", [json_type, b"AUTHORIZATION:Bearer " + secret], "key", 200),
        ("spaces around", [json_type, b"Authorization:   Bearer   " + secret + b"   "], "key", 200),
        ("BEARER", [json_type, b"Authorization: BEARER " + secret], "key", 200),
        ("a tab", [json_type, b"Authorization: Bearer\t" + secret], "wrong", 401),
        ("twice", [json_type, bearer, bearer], "wrong", 401),
        ("latin-1 bytes", [json_type, b"Authorization: Bearer \xff\xfe" + secret], "wrong", 401),
        ("only the scheme", [json_type, b"Authorization: Bearer"], "none", 401),
        ("no Authorization", [json_type], "none", 401),
        ("upper-case type", [b"content-type: APPLICATION/JSON", bearer], "key", 200),
        ("type with charset", [b"Content-Type: application/json;charset=utf-8", bearer], "key", 200),
        ("type twice", [json_type, json_type, bearer], "key", None),
        ("no type", [bearer], "key", 415),
        ("text/plain", [b"Content-Type: text/plain", bearer], "key", 415),
        ("text/plain, no key", [b"Content-Type: text/plain"], "none", 415),
        ("a long request id", [json_type, bearer, b"X-Request-ID: " + b"r" * 8000], "key", 200),
        ("a latin-1 request id", [json_type, bearer, b"X-Request-ID: \xe9t\xe9"], "key", 200),
    ]
    failures = []
    for path in PATHS:
        body = valid_body(served, path)
        requests = [(name, raw_request(path, head, body), caller, status) for name, head, caller, status in cases]
        short = [json_type, bearer, b"Content-Length: " + str(len(body) - 5).encode()]
        requests.append(("a short Content-Length", raw_request(path, short, body), "key", 400))
        for name, request, caller, status in requests:
            try:
                answer, _ = served_exchange(served, path, request, caller)
                assert status is None or answer.status == status, (answer.status, answer.body[:300])
            except AssertionError as exc:
                failures.append(f"{path} {name}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", PATHS)
@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_served_chunked_fuzz(served: World, path: str, data: st.DataObject) -> None:
    """Near-valid bodies, cut into chunks anywhere."""
    body = encode(data.draw(bodies(served, path), "body"))
    size = data.draw(st.integers(1, max(1, len(body))), "chunk size")
    caller = data.draw(callers, "caller")
    served_exchange(served, path, raw_request(path, auth_head(served, caller), body, chunks=size), caller)


# --- Framing: broken chunks and ambiguous lengths are the client's error ----------------------------------


def _framing_cases() -> Iterator[Any]:
    """Once answered 503 (the server's de-chunking error escaped) and 200 for a valid prefix (a
    Content-Length read out of a chunked body); both are 400 ``bad_request`` now."""

    def known(name: str, path: str, build: Callable[[World], bytes], expected: tuple[int, str | None]) -> Any:
        return pytest.param(path, build, expected, id=f"{path.rsplit('/', 1)[1]}: {name}")

    def framing(path: str, chunks: bytes) -> Callable[[World], bytes]:
        def build(world: World) -> bytes:
            head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            return head + b"\r\n".join(auth_head(world, "key")) + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks

        return build

    def prefix(path: str) -> Callable[[World], bytes]:
        def build(world: World) -> bytes:
            valid = valid_body(world, path)  # valid as its Content-Length says; the whole body is not JSON
            head = [*auth_head(world, "key"), b"Content-Length: " + str(len(valid)).encode()]
            return raw_request(path, head, valid + b" trailing bytes", chunks=16)

        return build

    for path in PATHS:
        yield known("chunked, and a Content-Length naming a valid prefix", path, prefix(path), (400, "bad_request"))
        yield known("a chunk size that is not hex", path, framing(path, b"zz\r\n{}\r\n0\r\n\r\n"), (400, "bad_request"))
        yield known(
            "a chunk shorter than announced", path, framing(path, b"10\r\n{}\r\n0\r\n\r\n"), (400, "bad_request")
        )


@pytest.mark.parametrize("route", ["uncached key"], indirect=True)  # all refused or read before the key matters
@pytest.mark.parametrize(("path", "build", "expected"), list(_framing_cases()))
def test_served_broken_framing_is_refused(
    served: World, path: str, build: Callable[[World], bytes], expected: tuple[int, str | None]
) -> None:
    answer, data = served_exchange(served, path, build(served))
    verify(answer, data, expected)
