"""The verify hot path answers exactly as the Flask view does, records the same, and hands over the rest.

Two apps on one database: ``hot`` with the hot path (and the API-key cache it needs), ``view`` without it.
Every request goes to both; answers and the recorded verifications are compared field by field.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from limits import parse
from sqlalchemy import select

from service import create_app, db
from service.hot_path import HotPath, parse_batch, parse_request
from service.limits.keys import KeyLimit, LocalWindows
from service.models import Verification

if TYPE_CHECKING:
    from tests.support import ForceExpiry, MakeTenant, Tenant, VerifyScenarios

#: A second app, the WSGI hot path and its own connections: every test here commits for real.
pytestmark = pytest.mark.committed

RECORDED = ("org_id", "api_key_id", "purpose", "consent_id", "subject_id", "device_id", "decision", "reason")


@pytest.fixture()
def hot_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config.update(API_KEY_CACHE_SECONDS=300, RATE_LIMIT_PREFIX=f"cg-test-{uuid.uuid4().hex}")
    return app_config


@pytest.fixture()
def view(hot_config: dict[str, Any], app: Flask) -> Iterator[FlaskClient]:
    """The same service with the hot path switched off, on the same database."""
    plain = create_app({**hot_config, "VERIFY_HOT_PATH": False})
    assert not isinstance(plain.wsgi_app, HotPath)
    yield plain.test_client()
    plain.extensions["consent_gate.engine"].dispose()


@pytest.fixture()
def handed_over(app: Flask) -> list[str]:
    """Paths the hot path handed to Flask instead of answering itself."""
    hot = app.wsgi_app
    assert isinstance(hot, HotPath)
    seen: list[str] = []
    downstream = hot.downstream

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        return downstream(environ, start_response)

    hot.downstream = spy
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
        "subjects": {"active": active["id"], "erased": erased["id"]},
        "gate": gate,
    }


def _post(client: FlaskClient, path: str, body: Any, key: str | None, **headers: str) -> Any:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    return client.post(path, data=data, headers=headers)


def _without_ids(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {k: _without_ids(v) for k, v in answer.items() if k != "verification_id"}
    if isinstance(answer, list):
        return [_without_ids(item) for item in answer]
    return answer


def _records(app: Flask, answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    ids = [r["verification_id"] for r in answer.get("results", [answer])]
    with app.app_context():
        rows = {v.id: v for v in db.session().scalars(select(Verification).where(Verification.id.in_(ids)))}
    return [tuple(getattr(rows[i], column) for column in RECORDED) for i in ids]


def _well_formed(world: dict[str, Any]) -> list[tuple[str, Any]]:
    tokens, subjects, gate = world["tokens"], world["subjects"], world["gate"]
    singles: list[dict[str, Any]] = [
        {"purpose": "door_access", "token": tokens["active"]},
        {"purpose": "door_access", "token": tokens["active"], "device_id": gate},
        {"purpose": "door_access", "token": tokens["active"], "device_id": "no-such-device"},
        {"purpose": "door_access", "token": tokens["revoked"]},
        {"purpose": "door_access", "token": tokens["expired"]},
        {"purpose": "door_access", "token": tokens["erased"]},
        {"purpose": "payment", "token": tokens["active"]},
        {"purpose": "door_access", "token": "not-a-token"},
        {"purpose": "door_access", "subject_id": subjects["active"]},
        {"purpose": "door_access", "subject_id": subjects["erased"]},
        {"purpose": "payment", "subject_id": subjects["active"]},
        {"purpose": "no_such_purpose", "subject_id": subjects["active"]},
        {"purpose": "door_access", "subject_id": str(uuid.uuid4())},
    ]
    return [("/v1/verifications", body) for body in singles] + [("/v1/verifications/batch", {"items": singles})]


def test_hot_path_answers_and_records_exactly_as_the_view(
    world: dict[str, Any], app: Flask, client: FlaskClient, view: FlaskClient, handed_over: list[str]
) -> None:
    key = world["tenant"].keys["verify"]
    # The first request of a key is the view's: it fills the key cache the hot path reads.
    assert _post(client, "/v1/verifications", {"purpose": "door_access", "token": "x"}, key).status_code == 200
    assert handed_over == ["/v1/verifications"]
    handed_over.clear()
    reasons = set()
    for path, body in _well_formed(world):
        hot, plain = _post(client, path, body, key), _post(view, path, body, key)
        assert (
            (hot.status_code, hot.content_type) == (plain.status_code, plain.content_type) == (200, "application/json")
        )
        assert _without_ids(hot.json) == _without_ids(plain.json), body
        assert _records(app, hot.json) == _records(app, plain.json)
        assert hot.data.endswith(b"\n") and plain.data.endswith(b"\n")
        assert hot.headers["X-RateLimit-Limit"] == plain.headers["X-RateLimit-Limit"]
        assert hot.headers["X-Request-ID"] and plain.headers["X-Request-ID"]
        reasons.update(r["reason"] for r in hot.json.get("results", [hot.json]))
    assert handed_over == [], "every well-formed request from a cached key is answered by the hot path"
    assert reasons == {
        "consent_active",
        "device_unknown",
        "revoked",
        "expired",
        "subject_erased",
        "purpose_mismatch",
        "invalid_token",
        "unknown_purpose",
        "no_consent",
    }
    # A caller's request id is echoed, as the view echoes it.
    body = {"purpose": "door_access", "token": world["tokens"]["active"]}
    echoed = _post(client, "/v1/verifications", body, key, **{"X-Request-ID": "recognition-42"})
    assert echoed.headers["X-Request-ID"] == "recognition-42"


def test_everything_unusual_is_handed_to_the_view(
    world: dict[str, Any], client: FlaskClient, view: FlaskClient, handed_over: list[str]
) -> None:
    tenant: Tenant = world["tenant"]
    key, token = tenant.keys["verify"], world["tokens"]["active"]
    _post(client, "/v1/verifications", {"purpose": "door_access", "token": "x"}, key)  # fills the key cache
    handed_over.clear()
    item = {"purpose": "door_access", "token": token}
    unusual: list[tuple[str, Any, str | None, dict[str, str]]] = [
        ("/v1/verifications", {"purpose": "door_access"}, key, {}),
        ("/v1/verifications", {"token": token}, key, {}),
        ("/v1/verifications", {**item, "subject_id": str(uuid.uuid4())}, key, {}),
        ("/v1/verifications", {**item, "face": "base64..."}, key, {}),
        ("/v1/verifications", {**item, "device_id": None}, key, {}),
        ("/v1/verifications", {**item, "device_id": 7}, key, {}),
        ("/v1/verifications", {**item, "purpose": "p" * 65}, key, {}),
        ("/v1/verifications", {**item, "purpose": ""}, key, {}),
        ("/v1/verifications", {**item, "purpose": "door\x00access"}, key, {}),
        ("/v1/verifications", b'{"purpose": "door_access", "token": "\\ud800"}', key, {}),
        ("/v1/verifications", b'{"purpose": "door_access", "token": ', key, {}),
        ("/v1/verifications", b"\xff\xfe", key, {}),
        ("/v1/verifications", [item], key, {}),
        ("/v1/verifications", item, key, {"Content-Type": "text/plain"}),
        ("/v1/verifications", item, None, {}),
        ("/v1/verifications", item, "not-a-key", {}),
        ("/v1/verifications", item, tenant.keys["consents"], {}),
        ("/v1/verifications/batch", {"items": []}, key, {}),
        ("/v1/verifications/batch", {"items": [item] * 1001}, key, {}),
        ("/v1/verifications/batch", {"items": [item, {"purpose": "door_access"}]}, key, {}),
        ("/v1/verifications/batch", {"items": [item], "more": 1}, key, {}),
        ("/v1/verifications/batch", {"items": item}, key, {}),
    ]
    for path, body, caller, headers in unusual:
        hot, plain = _post(client, path, body, caller, **headers), _post(view, path, body, caller, **headers)
        assert hot.status_code == plain.status_code and hot.status_code >= 400, (body, hot.status_code)
        assert hot.json == plain.json
    assert len(handed_over) == len(unusual)


def test_the_parsers_accept_only_what_the_schema_accepts() -> None:
    assert parse_request(b'{"purpose": "door_access", "token": "t"}') is not None
    assert parse_request(b'{"purpose": "door_access", "subject_id": "s", "device_id": "d"}') is not None
    assert parse_request(b'{"purpose": "door_access", "token": "' + b"t" * 4097 + b'"}') is None
    assert parse_request(b'{"purpose": "door_access", "subject_id": "' + b"s" * 37 + b'"}') is None
    assert parse_request(b"[]") is None and parse_request(b"null") is None
    batch = parse_batch(b'{"items": [{"purpose": "a", "token": "t"}, {"purpose": "b", "subject_id": "s"}]}')
    assert batch is not None and [r.purpose for r in batch] == ["a", "b"]
    assert parse_batch(b'{"items": [{"purpose": "a", "token": "t", "x": 1}]}') is None


def test_hot_path_and_view_share_one_rate_limit(hot_config: dict[str, Any], make_tenant: MakeTenant) -> None:
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


def test_hot_path_fails_closed(
    world: dict[str, Any], client: FlaskClient, view: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = world["tenant"].keys["verify"]
    body = {"purpose": "door_access", "token": world["tokens"]["active"]}
    _post(client, "/v1/verifications", body, key)  # fills the key cache

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("service.api.verifications.decide_many", explode)
    for path, sent in (("/v1/verifications", body), ("/v1/verifications/batch", {"items": [body]})):
        hot, plain = _post(client, path, sent, key), _post(view, path, sent, key)
        assert hot.status_code == plain.status_code == 503
        assert hot.json == plain.json and hot.json["decision"] == "deny" and hot.json["reason"] == "unavailable"


def test_hot_path_logs_neither_tokens_nor_keys(
    world: dict[str, Any], client: FlaskClient, caplog: pytest.LogCaptureFixture, handed_over: list[str]
) -> None:
    key, token = world["tenant"].keys["verify"], world["tokens"]["active"]
    body = {"purpose": "door_access", "token": token}
    _post(client, "/v1/verifications", body, key)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        answered = _post(client, "/v1/verifications", body, key, **{"X-Request-ID": "trace-me-0001"})
    assert answered.status_code == 200 and handed_over == ["/v1/verifications"]
    access = [r for r in caplog.records if r.name == "service.requests"]
    assert [r.getMessage().split()[:3] for r in access] == [["POST", "/v1/verifications", "200"]]
    assert access[0].request_id == "trace-me-0001"  # type: ignore[attr-defined]
    assert not any(token in r.getMessage() or key in r.getMessage() for r in caplog.records)


@pytest.fixture()
def hot_tenant(hot_config: dict[str, Any], handed_over: list[str], tenant: Tenant) -> Tenant:
    return tenant


def test_no_allow_after_a_revoke_has_committed_on_the_hot_path(
    hot_tenant: Tenant, handed_over: list[str], verify_scenarios: VerifyScenarios
) -> None:
    verify_scenarios.no_allow_after_revoke(hot_tenant)
    # Each test client thread's first verification filled the cache; the rest were the hot path's.
    assert handed_over.count("/v1/verifications") <= 3


@pytest.fixture()
def short_timeouts(hot_config: dict[str, Any]) -> None:
    hot_config["DB_TIMEOUT_MS"] = 300


def test_locked_database_makes_the_hot_path_deny_then_recover(
    short_timeouts: None, hot_tenant: Tenant, handed_over: list[str], verify_scenarios: VerifyScenarios
) -> None:
    verify_scenarios.locked_database_denies_then_recovers(hot_tenant)
    assert handed_over.count("/v1/verifications") == 1  # only the first, which filled the key cache


@pytest.mark.parametrize("holder", ["process", "thread"])
def test_a_held_sqlite_writer_lock_makes_the_hot_path_deny_then_recover(
    short_timeouts: None,
    holder: str,
    app: Flask,
    hot_tenant: Tenant,
    handed_over: list[str],
    verify_scenarios: VerifyScenarios,
) -> None:
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("the writer lock (an flock beside the database file) is SQLite's")
    verify_scenarios.writer_lock_held_denies_then_recovers(hot_tenant, holder)
    assert handed_over.count("/v1/verifications") == 1  # only the first, which filled the key cache


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
