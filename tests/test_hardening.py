"""Hardening: limits, secrets, logs and metrics."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import redis

from service import create_app
from service.config import ConfigError
from service.keys.crypto import generate_data_key
from service.limits import json_depth

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant


def test_deep_json_is_refused_before_parsing(tenant: Tenant) -> None:
    deep = "[" * 5000 + "]" * 5000
    response = tenant.client.post(
        "/v1/subjects", data=deep, headers=tenant.headers("consents", {"Content-Type": "application/json"})
    )
    assert response.status_code == 400 and response.json["code"] == "json_too_deep"
    shallow = {"external_ref": "x[{[{" * 10, "birth_date": "1990-01-01"}  # brackets inside strings do not count
    assert tenant.post("/v1/subjects", shallow, scope="consents").status_code == 201
    assert json_depth(b'{"a": [1, {"b": "]]]]"}]}') == 3


def test_page_sizes_are_capped(tenant: Tenant) -> None:
    assert tenant.get("/v1/audit/events?limit=1001").status_code == 422
    assert tenant.get("/v1/consent-events?limit=100000", scope="verify").status_code == 422


@pytest.fixture()
def tight_limits(app_config: dict[str, Any]) -> None:
    app_config.update(
        RATE_LIMIT_API="3/minute",
        RATE_LIMIT_GUARDIAN="2/minute",
        RATE_LIMIT_VERIFY="4/minute",
        RATE_LIMIT_PREFIX=f"cg-test-{uuid.uuid4().hex}",
    )


@pytest.mark.committed
def test_rate_limits_per_key_and_per_guardian_client(tight_limits: None, tenant: Tenant, other_tenant: Tenant) -> None:
    statuses = [tenant.get("/v1/purposes").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = tenant.get("/v1/purposes")
    assert limited.json["code"] == "rate_limited" and "Retry-After" in limited.headers
    # Another key has its own allowance.
    assert other_tenant.get("/v1/purposes").status_code == 200
    verify = [tenant.verify("door_access", token="x").status_code for _ in range(5)]
    assert verify == [200, 200, 200, 200, 429]
    pages = [tenant.client.get("/g/" + "x" * 43).status_code for _ in range(3)]
    assert pages == [404, 404, 429]


@pytest.fixture()
def redis_limits(app_config: dict[str, Any]) -> Iterator[str]:
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        if __import__("os").environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    prefix = f"cg-test-{uuid.uuid4().hex}"
    app_config.update(REDIS_URL=url, RATE_LIMIT_API="4/minute", RATE_LIMIT_PREFIX=prefix)
    yield prefix
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)


@pytest.mark.committed
def test_limits_are_shared_between_instances_through_redis(
    redis_limits: str, app_config: dict[str, Any], tenant: Tenant
) -> None:
    second = create_app(app_config)  # another instance, same Redis
    other_client = second.test_client()
    first = [tenant.get("/v1/purposes").status_code for _ in range(2)]
    then = [other_client.get("/v1/purposes", headers=tenant.headers("admin")).status_code for _ in range(3)]
    assert first + then == [200, 200, 200, 200, 429]
    keys = list(redis.Redis.from_url(app_config["REDIS_URL"]).scan_iter(f"*{redis_limits}*"))
    assert keys, "the counters live in Redis"
    assert all(tenant.keys["admin"].encode() not in key for key in keys)
    second.extensions["consent_gate.engine"].dispose()


@pytest.mark.parametrize("problem", ["missing", "generated", "hmac", "rsa"])
def test_production_refuses_unsafe_signing_keys(tmp_path: Any, problem: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from service.keys.tokens import ensure_key_file

    key_file = tmp_path / "key.pem"
    if problem == "generated":
        ensure_key_file(str(key_file), allow_generate=True)
    elif problem == "hmac":
        key_file.write_text("a-shared-hmac-secret-of-32-bytes!!")
    elif problem == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    config = {**production_settings(tmp_path), "SIGNING_KEY_FILE": str(key_file)}
    with pytest.raises(ConfigError, match="SIGNING_KEY_FILE"):
        create_app(config)


def production_settings(tmp_path: Any) -> dict[str, Any]:
    """Everything production asks for, except a signing key file."""
    return {
        "ENV": "production",
        "INSTANCE_PATH": str(tmp_path),
        "DATA_KEY": generate_data_key(),
        "PUBLIC_URL": "https://consent.example",
        "DATABASE_URL": f"sqlite:///{tmp_path}/production.sqlite3",
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM": "+8613800000000",
    }


def test_production_needs_a_real_data_key(tmp_path: Any) -> None:
    from service.keys.tokens import generate_private_key_pem

    key_file = tmp_path / "key.pem"
    key_file.write_bytes(generate_private_key_pem())
    base = {**production_settings(tmp_path), "SIGNING_KEY_FILE": str(key_file)}
    with pytest.raises(ConfigError, match="DATA_KEY is not set"):
        create_app({**base, "DATA_KEY": None})
    with pytest.raises(ConfigError, match="DATA_KEY is unusable"):
        create_app({**base, "DATA_KEY": "c2hvcnQ="})
    app = create_app(base)
    assert app.config["ENV"] == "production"
    app.extensions["consent_gate.engine"].dispose()


@pytest.mark.committed
def test_no_secret_or_phone_in_the_logs_of_a_full_flow(
    tenant: Tenant, outbox: Any, client: Any, caplog: pytest.LogCaptureFixture, guardian: GuardianKit
) -> None:
    caplog.set_level(logging.DEBUG)
    child = guardian.setup_child(tenant)
    consent = tenant.consent(tenant.subject()["id"]).json
    tenant.verify("door_access", token=consent["token"])
    created = tenant.guardian_request(child["id"], ["door_access"], delivery="qr", phone="+8613912345678").json
    browser = guardian.browser(created["approve_url"])
    browser.submit(action="send_code", purpose="door_access")
    code = guardian.code_from(outbox()[-1])
    wrong = "000000" if code != "000000" else "111111"
    browser.submit(action="approve", attest_guardian="yes", purpose="door_access", otp=wrong)
    browser.submit(action="approve", attest_guardian="yes", purpose="door_access", otp=code)
    withdrawal = guardian.url_from(outbox()[-1])
    guardian.browser(withdrawal).open()
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "guardian" in logged or "sms" in logged, "the flow logged something"
    secrets = [
        consent["token"],
        code,
        "13912345678",
        "+8613912345678",
        guardian.link_path(created["approve_url"]).rsplit("/", 1)[1],
        guardian.link_path(withdrawal).rsplit("/", 1)[1],
    ]
    secrets += list(tenant.keys.values())
    secrets += ["139****5678"]  # not even the masked number: logs keep the country code only
    for secret in secrets:
        assert secret not in logged, secret[:12]


def test_json_logs_carry_the_request_id(tenant: Tenant, capfd: pytest.CaptureFixture[str]) -> None:
    from service.observability import JsonFormatter, RequestIdFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("service.requests")
    logger.addHandler(handler)
    try:
        response = tenant.client.get("/healthz", headers={"X-Request-ID": "req-abc-12345"})
    finally:
        logger.removeHandler(handler)
    assert response.headers["X-Request-ID"] == "req-abc-12345"
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert any(line["request_id"] == "req-abc-12345" and "/healthz" in line["message"] for line in lines)
    generated = tenant.client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


@pytest.mark.committed
def test_metrics_count_requests_decisions_and_sms(
    metrics_token: str, tenant: Tenant, outbox: Any, guardian: GuardianKit
) -> None:
    child = guardian.setup_child(tenant)
    tenant.verify("door_access", token="nonsense")
    tenant.guardian_request(child["id"], ["door_access"])
    outbox()  # the dispatcher sends it
    body = tenant.client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"}).get_data(as_text=True)
    assert 'consent_gate_requests_total{method="POST",route="/v1/verifications",status="200"}' in body
    assert "consent_gate_request_seconds_bucket" in body
    assert 'consent_gate_verification_decisions_total{decision="deny",reason="invalid_token"}' in body
    assert 'consent_gate_sms_total{kind="link",status="sent"}' in body
