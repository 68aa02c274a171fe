"""One endpoint answers every verification: each body's answer, what it records, what it counts, and
that Flask's view only documents it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from limits import parse
from sqlalchemy import func, select

from service import create_app, db
from service.limits.keys import KeyLimit, LocalWindows
from service.models import Verification
from service.verification import bodies
from service.verification.endpoint import VerificationEndpoint

if TYPE_CHECKING:
    from tests.support import ForceExpiry, MakeTenant, Tenant

#: The endpoint decides on connections of its own: every test here commits for real.
pytestmark = pytest.mark.committed

RECORDED = ("org_id", "api_key_id", "purpose", "consent_id", "subject_id", "device_id", "decision", "reason")


@pytest.fixture()
def hot_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config.update(API_KEY_CACHE_SECONDS=300, RATE_LIMIT_PREFIX=f"cg-test-{uuid.uuid4().hex}")
    return app_config


@pytest.fixture()
def handed_over(app: Flask) -> list[str]:
    """Requests the endpoint handed on to Flask instead of answering itself."""
    endpoint = app.wsgi_app
    assert isinstance(endpoint, VerificationEndpoint)
    seen: list[str] = []
    downstream = endpoint.downstream

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return downstream(environ, start_response)

    endpoint.downstream = spy
    return seen


@pytest.fixture()
def world(hot_config: dict[str, Any], tenant: Tenant, force_expiry: ForceExpiry) -> dict[str, Any]:
    """One organization with people in every state a verification can meet."""
    tenant.purpose()
    tenant.purpose("payment", category="payment")
    active, revoked, expired, erased = (tenant.subject() for _ in range(4))
    tokens = {}
    consents = {}
    for name, person in (("active", active), ("revoked", revoked), ("expired", expired), ("erased", erased)):
        consents[name] = tenant.consent(person["id"]).json
        tokens[name] = consents[name]["token"]
    tenant.post(f"/v1/consents/{consents['revoked']['id']}/revoke", scope="consents")
    force_expiry(consents["expired"]["id"])
    assert tenant.delete(f"/v1/subjects/{erased['id']}").status_code in (200, 204)
    gate = tenant.post("/v1/devices", {"name": "Gate 3", "location_type": "school"}).json["id"]
    return {
        "tenant": tenant,
        "tokens": tokens,
        "consents": {name: consent["id"] for name, consent in consents.items()},
        "subjects": {"active": active["id"], "erased": erased["id"]},
        "gate": gate,
    }


def _post(client: FlaskClient, path: str, body: Any, key: str | None, **headers: str) -> Any:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    return client.post(path, data=data, headers=headers)


def _records(app: Flask, answer: dict[str, Any]) -> list[dict[str, Any]]:
    ids = [r["verification_id"] for r in answer.get("results", [answer])]
    with app.app_context():
        rows = {v.id: v for v in db.session().scalars(select(Verification).where(Verification.id.in_(ids)))}
    return [{column: getattr(rows[i], column) for column in RECORDED} for i in ids]


def _recorded(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(Verification)) or 0)


def _expected(world: dict[str, Any]) -> list[tuple[dict[str, Any], str, str | None]]:
    """Well-formed requests, each with the reason it must answer and the consent it names."""
    tokens, subjects, gate, consents = world["tokens"], world["subjects"], world["gate"], world["consents"]
    unknown = str(uuid.uuid4())
    return [
        ({"purpose": "door_access", "token": tokens["active"]}, "consent_active", consents["active"]),
        (
            {"purpose": "door_access", "token": tokens["active"], "device_id": gate},
            "consent_active",
            consents["active"],
        ),
        (
            {"purpose": "door_access", "token": tokens["active"], "device_id": "no-such-device"},
            "device_unknown",
            consents["active"],
        ),
        ({"purpose": "door_access", "token": tokens["revoked"]}, "revoked", consents["revoked"]),
        ({"purpose": "door_access", "token": tokens["expired"]}, "expired", consents["expired"]),
        ({"purpose": "door_access", "token": tokens["erased"]}, "subject_erased", consents["erased"]),
        ({"purpose": "payment", "token": tokens["active"]}, "purpose_mismatch", consents["active"]),
        ({"purpose": "door_access", "token": "not-a-token"}, "invalid_token", None),
        ({"purpose": "door_access", "subject_id": subjects["active"]}, "consent_active", consents["active"]),
        ({"purpose": "door_access", "subject_id": subjects["erased"]}, "subject_erased", consents["erased"]),
        ({"purpose": "payment", "subject_id": subjects["active"]}, "no_consent", None),
        ({"purpose": "no_such_purpose", "subject_id": subjects["active"]}, "unknown_purpose", None),
        ({"purpose": "door_access", "subject_id": unknown}, "no_consent", None),
    ]


@pytest.mark.parametrize("cached", [True, False], ids=["cached key", "uncached key"])
def test_every_verification_is_answered_and_recorded_by_the_endpoint(
    cached: bool, world: dict[str, Any], app: Flask, client: FlaskClient, handed_over: list[str]
) -> None:
    tenant: Tenant = world["tenant"]
    key = tenant.keys["verify"]
    if not cached:
        app.wsgi_app.verifier.keys.ttl = 0  # type: ignore[attr-defined]  # every request reads the key
    expected = _expected(world)
    for body, reason, consent_id in expected:
        answer = _post(client, "/v1/verifications", body, key)
        assert (answer.status_code, answer.content_type) == (200, "application/json; charset=utf-8"), body
        assert answer.json["reason"] == reason and answer.json["consent_id"] == consent_id, body
        assert answer.json["decision"] == ("allow" if reason == "consent_active" else "deny")
        assert answer.data.endswith(b"\n") and b", " not in answer.data, "rendered compact, as Flask renders"
        assert answer.headers["X-RateLimit-Limit"] and answer.headers["X-Request-ID"]
        assert "Retry-After" not in answer.headers
        (record,) = _records(app, answer.json)
        assert record["org_id"] == tenant.org_id and record["purpose"] == body["purpose"]
        assert (record["decision"], record["reason"], record["consent_id"]) == (
            answer.json["decision"],
            reason,
            consent_id,
        )
        assert record["device_id"] == body.get("device_id")
    batch = _post(client, "/v1/verifications/batch", {"items": [body for body, _, _ in expected]}, key)
    assert batch.status_code == 200
    assert [r["reason"] for r in batch.json["results"]] == [reason for _, reason, _ in expected]
    assert [r["reason"] for r in _records(app, batch.json)] == [reason for _, reason, _ in expected]
    assert handed_over == [], "Flask never answers a verification"
    echoed = _post(client, "/v1/verifications", expected[0][0], key, **{"X-Request-ID": "recognition-42"})
    assert echoed.headers["X-Request-ID"] == "recognition-42"


def test_unusual_requests_get_their_documented_error_and_change_nothing(
    world: dict[str, Any], app: Flask, client: FlaskClient, handed_over: list[str]
) -> None:
    tenant: Tenant = world["tenant"]
    key, token = tenant.keys["verify"], world["tokens"]["active"]
    item = {"purpose": "door_access", "token": token}
    invalid = "validation_error"
    unusual: list[tuple[str, Any, str | None, dict[str, str], int, str, Any]] = [
        (
            "/v1/verifications",
            {"purpose": "door_access"},
            key,
            {},
            422,
            invalid,
            {"_schema": ["give exactly one of token or subject_id"]},
        ),
        (
            "/v1/verifications",
            {"token": token},
            key,
            {},
            422,
            invalid,
            {"purpose": ["Missing data for required field."]},
        ),
        ("/v1/verifications", {**item, "subject_id": str(uuid.uuid4())}, key, {}, 422, invalid, None),
        ("/v1/verifications", {**item, "face": "base64..."}, key, {}, 422, invalid, {"face": ["Unknown field."]}),
        (
            "/v1/verifications",
            {**item, "device_id": None},
            key,
            {},
            422,
            invalid,
            {"device_id": ["Field may not be null."]},
        ),
        ("/v1/verifications", {**item, "device_id": 7}, key, {}, 422, invalid, {"device_id": ["Not a valid string."]}),
        ("/v1/verifications", {**item, "purpose": "p" * 65}, key, {}, 422, invalid, None),
        ("/v1/verifications", {**item, "purpose": ""}, key, {}, 422, invalid, None),
        ("/v1/verifications", {**item, "purpose": "door\x00access"}, key, {}, 422, invalid, None),
        ("/v1/verifications", b'{"purpose": "door_access", "token": "\\ud800"}', key, {}, 422, invalid, None),
        (
            "/v1/verifications",
            b'{"purpose": "door_access", "token": ',
            key,
            {},
            400,
            "malformed_json",
            ["Invalid JSON body."],
        ),
        ("/v1/verifications", b"\xff\xfe", key, {}, 400, "malformed_json", None),
        ("/v1/verifications", b"", key, {}, 400, "malformed_json", None),
        ("/v1/verifications", [item], key, {}, 422, invalid, {"_schema": ["Invalid input type."]}),
        ("/v1/verifications", item, key, {"Content-Type": "text/plain"}, 415, "unsupported_media_type", None),
        ("/v1/verifications", b"[" * 60_000, key, {}, 400, "json_too_deep", None),
        ("/v1/verifications", b"x" * 70_000, key, {}, 413, "payload_too_large", None),
        ("/v1/verifications", item, None, {}, 401, "unauthorized", None),
        ("/v1/verifications", item, "not-a-key", {}, 401, "unauthorized", None),
        ("/v1/verifications", item, tenant.keys["consents"], {}, 403, "forbidden", None),
        ("/v1/verifications/batch", {"items": []}, key, {}, 422, invalid, {"items": ["give 1 to 1000 items"]}),
        (
            "/v1/verifications/batch",
            {"items": [item] * 1001},
            key,
            {},
            422,
            invalid,
            {"items": ["give 1 to 1000 items"]},
        ),
        ("/v1/verifications/batch", {"items": [item, {"purpose": "door_access"}]}, key, {}, 422, invalid, None),
        ("/v1/verifications/batch", {"items": [item], "more": 1}, key, {}, 422, invalid, {"more": ["Unknown field."]}),
        ("/v1/verifications/batch", {"items": item}, key, {}, 422, invalid, None),
    ]
    before = _recorded(app)
    for path, body, caller, headers, status, code, errors in unusual:
        answer = _post(client, path, body, caller, **headers)
        assert (answer.status_code, answer.json["code"], answer.json["status"]) == (status, code, status), body
        assert answer.json["message"]
        if errors is not None:
            assert answer.json["errors"]["json"] == errors, body
    assert _recorded(app) == before, "a refused request records nothing"
    assert handed_over == []
    # Other methods on these paths are Flask's: 405, in the same error shape.
    assert client.get("/v1/verifications").status_code == 405
    assert handed_over == ["GET /v1/verifications"]


def test_the_flask_view_only_documents_the_endpoint(app: Flask) -> None:
    spec = app.extensions["consent_gate.api"].spec.to_dict()
    for path in ("/v1/verifications", "/v1/verifications/batch"):
        operation = spec["paths"][path]["post"]
        assert {"200", "401", "403", "415", "422", "429", "503"} <= set(operation["responses"])
    # Never reached; were it reached, it would deny rather than fail open or answer 500.
    view = app.view_functions["verifications.Verifications"]
    with app.test_request_context("/v1/verifications", method="POST", json={"purpose": "a", "token": "t"}):
        answer = view()
    assert answer.status_code == 503 and answer.json["decision"] == "deny"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "//v1/verifications"),
        ("POST", "///v1/verifications/batch"),
        ("post", "/v1/verifications"),
        ("Post", "//v1/verifications/batch"),
    ],
)
def test_every_spelling_flask_would_route_is_the_endpoints(
    method: str, path: str, world: dict[str, Any], app: Flask, handed_over: list[str]
) -> None:
    """Flask's router strips repeated leading slashes and reads the method in any case: so does the endpoint,
    or such a request would reach the documenting view without being counted or decided."""
    item = {"purpose": "door_access", "token": world["tokens"]["active"]}
    body = {"items": [item]} if path.endswith("batch") else item
    for key, status in ((world["tenant"].keys["verify"], "200 OK"), (None, "401 UNAUTHORIZED")):
        statuses, answer = _call(app, method, path, json.dumps(body).encode(), key)
        assert statuses == [status] and handed_over == [], answer
    assert answer["code"] == "unauthorized"


def _call(
    app: Flask, method: str, path: str, body: bytes, key: str | None, **environ: str
) -> tuple[list[str], dict[str, Any]]:
    """Call the app as a WSGI server would, with the path and headers exactly as given."""
    request = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        **({"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}),
        **environ,
    }
    statuses: list[str] = []
    answer = b"".join(app.wsgi_app(request, lambda status, _headers: statuses.append(status)))
    return statuses, json.loads(answer)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "\u00b2"},  # a digit to str.isdigit, not to int()
        {"Content-Length": "9" * 5000},
        {"Transfer-Encoding": "gzip, chunked"},
    ],
    ids=["superscript two", "5000 digits", "gzip"],
)
def test_odd_length_headers_are_refused(headers: dict[str, str], world: dict[str, Any], app: Flask) -> None:
    body = json.dumps({"purpose": "door_access", "token": world["tokens"]["active"]}).encode()
    environ = {"CONTENT_LENGTH": headers.get("Content-Length", str(len(body)))}
    if "Transfer-Encoding" in headers:
        environ = {"HTTP_TRANSFER_ENCODING": headers["Transfer-Encoding"], "CONTENT_LENGTH": ""}
    statuses, answer = _call(app, "POST", "/v1/verifications", body, world["tenant"].keys["verify"], **environ)
    assert statuses == ["400 BAD REQUEST"] and answer["code"] == "bad_request"


def test_the_fast_reading_accepts_only_what_the_schema_accepts() -> None:
    assert bodies.single({"purpose": "door_access", "token": "t"})[0].token == "t"
    assert bodies.single({"purpose": "door_access", "subject_id": "s", "device_id": "d"})[0].device_id == "d"
    for refused in (
        {"purpose": "door_access", "token": "t" * 4097},
        {"purpose": "door_access", "subject_id": "s" * 37},
        [],
        None,
    ):
        with pytest.raises(Exception) as raised:
            bodies.single(refused)
        assert getattr(raised.value, "code", None) == 422
    batch = bodies.batch({"items": [{"purpose": "a", "token": "t"}, {"purpose": "b", "subject_id": "s"}]})
    assert [r.purpose for r in batch] == ["a", "b"]


def test_single_and_batch_share_one_rate_limit(hot_config: dict[str, Any], make_tenant: MakeTenant) -> None:
    hot_config["RATE_LIMIT_VERIFY"] = "3/minute"
    app = create_app(hot_config)
    try:
        client = app.test_client()
        tenant = make_tenant(app=app, client=client)
        key = tenant.keys["verify"]
        body = {"purpose": "door_access", "token": "x"}
        statuses = [_post(client, "/v1/verifications", body, key).status_code for _ in range(3)]
        limited = _post(client, "/v1/verifications/batch", {"items": [body]}, key)
        assert statuses == [200, 200, 200] and limited.status_code == 429
        assert limited.json["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        # Another key has its own allowance.
        other = make_tenant("Other Corp", app=app, client=client)
        assert _post(client, "/v1/verifications", body, other.keys["verify"]).status_code == 200
    finally:
        app.extensions["consent_gate.engine"].dispose()


def test_the_endpoint_fails_closed(world: dict[str, Any], client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    key = world["tenant"].keys["verify"]
    body = {"purpose": "door_access", "token": world["tokens"]["active"]}

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("service.verification.verifier.decide_and_record", explode)
    for path, sent in (("/v1/verifications", body), ("/v1/verifications/batch", {"items": [body]})):
        answer = _post(client, path, sent, key)
        assert answer.status_code == 503
        assert answer.json == {
            "decision": "deny",
            "reason": "unavailable",
            "code": "service_unavailable",
            "status": 503,
            "message": "the service could not decide; do not process the face",
            "request_id": answer.headers["X-Request-ID"],
        }
    # An uncached key that cannot be read (the database fails) denies too.
    monkeypatch.setattr("service.verification.verifier.find_caller", explode)
    monkeypatch.setattr("service.keys.api_keys.KeyCache.peek", lambda _cache, _secret: None)
    fresh = _post(client, "/v1/verifications", body, key)
    assert fresh.status_code == 503 and fresh.json["decision"] == "deny"


def test_the_endpoint_logs_neither_tokens_nor_keys(
    world: dict[str, Any], client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    key, token = world["tenant"].keys["verify"], world["tokens"]["active"]
    body = {"purpose": "door_access", "token": token}
    with caplog.at_level(logging.INFO):
        answered = _post(client, "/v1/verifications", body, key, **{"X-Request-ID": "trace-me-0001"})
        _post(client, "/v1/verifications", {"purpose": "door_access", "token": token + "x"}, "wrong-" + key)
    assert answered.status_code == 200
    access = [r for r in caplog.records if r.name == "service.requests"]
    assert [r.getMessage().split()[:3] for r in access] == [
        ["POST", "/v1/verifications", "200"],
        ["POST", "/v1/verifications", "401"],
    ]
    assert access[0].request_id == "trace-me-0001"  # type: ignore[attr-defined]
    assert not any(token in r.getMessage() or key in r.getMessage() for r in caplog.records)


@pytest.fixture()
def redis_url() -> str:
    url = "redis://127.0.0.1:6379/0"
    try:
        with redis.Redis.from_url(url) as client:
            client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    return url


def test_the_verify_limit_is_shared_between_instances_through_redis(
    redis_url: str, hot_config: dict[str, Any], make_tenant: MakeTenant
) -> None:
    prefix = f"cg-test-{uuid.uuid4().hex}"
    hot_config.update(REDIS_URL=redis_url, RATE_LIMIT_VERIFY="3/minute", RATE_LIMIT_PREFIX=prefix)
    first, second = create_app(hot_config), create_app(hot_config)
    try:
        tenant = make_tenant(app=first, client=first.test_client())
        body = {"purpose": "door_access", "token": "x"}
        key = tenant.keys["verify"]
        statuses = [_post(first.test_client(), "/v1/verifications", body, key).status_code for _ in range(2)]
        statuses += [_post(second.test_client(), "/v1/verifications", body, key).status_code for _ in range(2)]
        assert statuses == [200, 200, 200, 429]
        with redis.Redis.from_url(redis_url) as client:
            stored = list(client.scan_iter(f"*{prefix}*"))
        assert stored and all(key.encode() not in name for name in stored)
    finally:
        with redis.Redis.from_url(redis_url) as client:
            for name in client.scan_iter(f"*{prefix}*"):
                client.delete(name)
        for instance in (first, second):
            instance.extensions["consent_gate.engine"].dispose()


def test_the_verify_limit_counts_in_process_while_its_store_is_down(caplog: pytest.LogCaptureFixture) -> None:
    limit = KeyLimit("2/minute", storage_uri="redis://127.0.0.1:1/0", prefix="p", scope="verifications")
    answers = [limit.hit("key:abc") for _ in range(3)]
    assert [a.allowed for a in answers] == [True, True, False]
    assert dict(answers[-1].headers)["X-RateLimit-Remaining"] == "0" and "Retry-After" in dict(answers[-1].headers)
    assert "rate-limit storage unreachable" in caplog.text
    assert KeyLimit("1/minute", storage_uri=None, prefix="p", scope="s", enabled=False).hit("k").allowed


def test_local_windows_start_over_with_each_window() -> None:
    now = [1_000_000.0]
    windows = LocalWindows(parse("2/minute"), clock=lambda: now[0])
    assert [windows.count("a")[0] for _ in range(3)] == [True, True, False]
    assert windows.count("b")[:2] == (True, 1), "each caller has its own allowance"
    allowed, remaining, reset = windows.count("a")
    assert not allowed and remaining == 0 and reset == (1_000_000 // 60 + 1) * 60
    now[0] = reset
    assert windows.count("a")[:2] == (True, 1)


def test_a_token_with_a_deeply_nested_header_is_only_invalid(world: dict[str, Any], client: FlaskClient) -> None:
    """Its header once raised RecursionError out of the token check: a 503 for the item and its whole batch."""
    deep = base64.urlsafe_b64encode(b"[" * 1400).rstrip(b"=").decode() + ".e30.AAAA"
    key = world["tenant"].keys["verify"]
    single = _post(client, "/v1/verifications", {"purpose": "door_access", "token": deep}, key)
    assert (single.status_code, single.json["reason"]) == (200, "invalid_token")
    good = {"purpose": "door_access", "token": world["tokens"]["active"]}
    batch = _post(client, "/v1/verifications/batch", {"items": [good, {**good, "token": deep}]}, key)
    assert [r["reason"] for r in batch.json["results"]] == ["consent_active", "invalid_token"]


@pytest.mark.parametrize("count", [2, 3, 17, 1000])
def test_a_batch_records_exactly_its_items(count: int, world: dict[str, Any], app: Flask, client: FlaskClient) -> None:
    """A batch runs as one statement of a size rounded up (a power of two on SQLite): only its items count."""
    tokens = world["tokens"]
    mixed = [{"purpose": "door_access", "token": tokens[("active", "revoked", "expired")[n % 3]]} for n in range(count)]
    before = _recorded(app)
    answer = _post(client, "/v1/verifications/batch", {"items": mixed}, world["tenant"].keys["verify"])
    assert answer.status_code == 200
    reasons = [r["reason"] for r in answer.json["results"]]
    assert reasons == [("consent_active", "revoked", "expired")[n % 3] for n in range(count)]
    assert _recorded(app) == before + count
    assert [r["reason"] for r in _records(app, answer.json)] == reasons
