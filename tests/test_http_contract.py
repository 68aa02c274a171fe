"""What every answer promises integrators and operators (issue 14): errors that name their request, JSON
that is JSON, headers that protect, ``Retry-After`` only when it means something, ``/metrics`` for the
operator alone."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

if TYPE_CHECKING:
    from tests.support import Tenant

SECURITY = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _protected(response: Any, cache: str = "no-store") -> None:
    for name, value in {**SECURITY, "Cache-Control": cache}.items():
        assert response.headers.get(name) == value, (name, response.status_code, dict(response.headers))
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def _names_its_request(response: Any) -> None:
    body = response.json
    assert response.status_code >= 400 and set(body) >= {"code", "status", "message", "request_id"}, body
    assert body["status"] == response.status_code
    assert body["request_id"] == response.headers["X-Request-ID"], body


# --- request_id -------------------------------------------------------------------------------------------


def test_every_flask_error_carries_the_request_id_of_its_log_lines(tenant: Tenant) -> None:
    client = tenant.client
    answers = [
        client.get("/v1/nothing-here"),
        client.delete("/healthz"),
        client.get("/v1/purposes"),  # no key
        client.get("/v1/purposes", headers={"Authorization": "Bearer cg_forged"}),
        tenant.get("/v1/audit/events", scope="verify"),  # wrong scope: 403
        tenant.post("/v1/purposes", {"code": "x"}),  # 422
        tenant.get(f"/v1/consents/{uuid.uuid4()}", scope="consents"),  # a domain NotFound
        client.post("/v1/subjects", data="{", headers=tenant.headers("consents", {"Content-Type": "application/json"})),
        client.post(
            "/v1/subjects",
            data="[" * 100 + "]" * 100,
            headers=tenant.headers("consents", {"Content-Type": "application/json"}),
        ),
        client.post(
            "/v1/subjects", data="x" * 70_000, headers=tenant.headers("consents", {"Content-Type": "application/json"})
        ),
        client.post(
            "/v1/subjects", data="external_ref=a", headers=tenant.headers("consents", {"Content-Type": "text/plain"})
        ),
    ]
    assert [answer.status_code for answer in answers] == [404, 405, 401, 401, 403, 422, 404, 400, 400, 413, 415]
    for answer in answers:
        _names_its_request(answer)
    mine = client.get("/v1/nothing-here", headers={"X-Request-ID": "ticket-4711-abc"})
    assert mine.json["request_id"] == mine.headers["X-Request-ID"] == "ticket-4711-abc"
    # A caller cannot write what the id says: an id that is not sane is replaced, in the header and the body.
    forged = client.get("/v1/nothing-here", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert forged.json["request_id"] == forged.headers["X-Request-ID"] != "<script>alert(1)</script>"


@pytest.mark.committed
def test_the_verification_endpoint_errors_carry_the_request_id_too(tenant: Tenant) -> None:
    client = tenant.client
    json_type = {"Content-Type": "application/json"}
    answers = [
        client.post("/v1/verifications", data="{}", headers=json_type),  # no key
        client.post("/v1/verifications", data="{}", headers=tenant.headers("admin", json_type)),  # wrong scope
        client.post("/v1/verifications", data="{}", headers=tenant.headers("verify", {"Content-Type": "text/plain"})),
        client.post("/v1/verifications", data="{", headers=tenant.headers("verify", json_type)),
        client.post("/v1/verifications", data='{"token": "x"}', headers=tenant.headers("verify", json_type)),
        client.post("/v1/verifications/batch", data='{"items": []}', headers=tenant.headers("verify", json_type)),
    ]
    assert [answer.status_code for answer in answers] == [401, 403, 415, 400, 422, 422]
    for answer in answers:
        _names_its_request(answer)
    allowed = tenant.verify("door_access", token="nonsense")
    assert allowed.status_code == 200 and "request_id" not in allowed.json  # decisions keep their documented shape


def test_the_spec_documents_request_id_in_the_error_shape(client: FlaskClient) -> None:
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    assert "request_id" in schemas["Error"]["required"]
    assert "request_id" in schemas["VerificationUnavailable"]["properties"]


# --- 422 messages -----------------------------------------------------------------------------------------


def test_a_422_message_names_the_field_that_is_wrong(tenant: Tenant) -> None:
    missing = tenant.post("/v1/subjects", {"external_ref": "e-1"}, scope="consents")
    assert missing.status_code == 422
    assert missing.json["message"] == "birth_date: Missing data for required field."
    assert missing.json["errors"] == {"json": {"birth_date": ["Missing data for required field."]}}  # as before
    two = tenant.post("/v1/subjects", {"birth_date": "someday"}, scope="consents")
    field, _, rest = two.json["message"].partition(": ")
    assert field in two.json["errors"]["json"] and rest.endswith("(and 1 more: see errors)"), two.json
    unknown = tenant.post(
        "/v1/subjects", {"external_ref": "e", "birth_date": "1990-01-01", "face": "AAAA"}, scope="consents"
    )
    assert unknown.status_code == 422 and unknown.json["message"] == "face: Unknown field."
    query = tenant.get("/v1/audit/events?limit=100000")
    assert query.status_code == 422 and query.json["message"].startswith("limit: ")


@pytest.mark.committed
def test_a_verification_422_names_the_field_too(tenant: Tenant) -> None:
    single = tenant.post("/v1/verifications", {"token": "x"}, scope="verify")
    assert single.status_code == 422 and single.json["message"] == "purpose: Missing data for required field."
    batch = tenant.post(
        "/v1/verifications/batch", {"items": [{"purpose": "p", "token": "t"}, {"token": "t"}]}, scope="verify"
    )
    assert batch.status_code == 422 and batch.json["message"] == "items.1.purpose: Missing data for required field."


# --- 415 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "text/json", "application/json-seq", "application/jsonx"],
)
def test_a_body_that_is_not_sent_as_json_answers_415(tenant: Tenant, content_type: str | None) -> None:
    body = json.dumps({"external_ref": "e-415", "birth_date": "1990-01-01"})
    headers = tenant.headers("consents")
    if content_type is not None:
        headers["Content-Type"] = content_type
    refused = tenant.client.post("/v1/subjects", data=body, headers=headers)
    assert refused.status_code == 415, refused.json
    assert refused.json["code"] == "unsupported_media_type"
    assert "application/json" in refused.json["message"]
    _names_its_request(refused)
    # The same body as JSON is fine (and application/*+json is JSON, as on the verification endpoint).
    accepted = tenant.client.post(
        "/v1/subjects",
        data=body,
        headers=tenant.headers("consents", {"Content-Type": "application/json; charset=utf-8"}),
    )
    assert accepted.status_code == 201, accepted.json


def test_415_everywhere_a_json_body_is_read_and_documented(tenant: Tenant) -> None:
    spec = tenant.client.get("/openapi.json").json
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                assert "415" in operation["responses"], (method, path)
    patch = tenant.client.patch("/v1/organization", data='{"contact": "x@y.example"}', headers=tenant.headers("admin"))
    assert patch.status_code == 415


def test_no_body_at_all_is_left_to_the_schema(tenant: Tenant) -> None:
    # A revoke's fields are all optional: no body and no Content-Type is a revoke, not a 415.
    tenant.purpose("door_access")
    consent = tenant.consent(tenant.subject()["id"]).json
    revoked = tenant.client.post(f"/v1/consents/{consent['id']}/revoke", headers=tenant.headers("consents"))
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    # A required body that is missing is the schema's 422, naming what is missing.
    empty = tenant.client.post("/v1/subjects", headers=tenant.headers("consents"))
    assert empty.status_code == 422 and empty.json["code"] == "validation_error"
    # A body sent in the form a revoke has no use for is still refused, not silently ignored.
    form = tenant.client.post(
        f"/v1/consents/{consent['id']}/revoke", data={"reason": "x"}, headers=tenant.headers("consents")
    )
    assert form.status_code == 415


@pytest.mark.committed
def test_the_verification_endpoint_refuses_a_non_json_body_alike(tenant: Tenant) -> None:
    body = json.dumps({"purpose": "door_access", "token": "x"})
    api = tenant.client.post(
        "/v1/subjects", data=body, headers=tenant.headers("consents", {"Content-Type": "text/plain"})
    )
    verify = tenant.client.post(
        "/v1/verifications", data=body, headers=tenant.headers("verify", {"Content-Type": "text/plain"})
    )
    assert (api.status_code, api.json["code"], api.json["message"]) == (
        verify.status_code,
        verify.json["code"],
        verify.json["message"],
    )


# --- UTF-8 ------------------------------------------------------------------------------------------------


def test_json_is_utf8_not_escaped(tenant: Tenant) -> None:
    created = tenant.purpose("door_access")
    listed = tenant.get("/v1/purposes/door_access")
    assert listed.headers["Content-Type"] == "application/json; charset=utf-8"
    name = created["name"]["zh-CN"]
    assert name.encode() in listed.data and b"\\u" not in listed.data
    unknown = tenant.post(
        "/v1/subjects", {"external_ref": "e", "birth_date": "1990-01-01", "人脸": "x"}, scope="consents"
    )
    assert "人脸".encode() in unknown.data and unknown.json["message"] == "人脸: Unknown field."


def test_a_lone_surrogate_stays_escaped_and_the_answer_valid(app: Flask, tenant: Tenant) -> None:
    # A lone surrogate cannot be written as UTF-8: it alone stays escaped, the rest is UTF-8.
    with app.test_request_context():
        answer = app.json.response({"名\ud800": "\udfff人"})
    assert answer.get_data() == '{"名\\ud800":"\\udfff人"}\n'.encode()
    assert json.loads(answer.get_data()) == {"名\ud800": "\udfff人"}
    # The API refuses such text where it would be stored, with a 422 that is itself valid JSON.
    body = '{"external_ref": "\\ud800名", "birth_date": "1990-01-01"}'
    refused = tenant.client.post(
        "/v1/subjects", data=body, headers=tenant.headers("consents", {"Content-Type": "application/json"})
    )
    assert refused.status_code == 422 and json.loads(refused.data)["code"] == "validation_error"


@pytest.mark.committed
def test_verification_answers_are_utf8_too(tenant: Tenant) -> None:
    answer = tenant.post("/v1/verifications", {"purpose": "p", "token": "t", "人脸": "x"}, scope="verify")
    assert answer.status_code == 422 and answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "人脸".encode() in answer.data and b"\\u" not in answer.data
    surrogate = tenant.client.post(
        "/v1/verifications",
        data='{"purpose": "p", "token": "t", "\\udfff": "x"}',
        headers=tenant.headers("verify", {"Content-Type": "application/json"}),
    )
    assert surrogate.status_code == 422 and json.loads(surrogate.data)["code"] == "validation_error"


# --- headers ----------------------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(tenant: Tenant, client: FlaskClient) -> None:
    for answer in (
        tenant.get("/v1/purposes"),
        client.get("/v1/purposes"),
        client.get("/v1/no-such-thing"),
        client.get("/no-such-thing"),
        client.delete("/healthz"),
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/openapi.json"),
        client.get("/.well-known/jwks.json"),
        client.get("/docs"),
        client.get("/docs/static/swagger-ui.css"),
    ):
        answer.close()  # a static file's answer holds the file open
        # Swagger UI's static files may be cached (Flask revalidates them); everything else never is.
        static = answer.request.path.startswith("/docs/static/")
        _protected(answer, cache=answer.headers["Cache-Control"] if static else "no-store")
    json_answer = client.get("/healthz")
    assert json_answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_a_405_says_which_methods_are_allowed(tenant: Tenant) -> None:
    answer = tenant.client.delete("/v1/purposes", headers=tenant.headers("admin"))
    assert answer.status_code == 405 and answer.json["code"] == "method_not_allowed"
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert "DELETE" not in answer.headers["Allow"]
    verify = tenant.client.get("/v1/verifications", headers=tenant.headers("verify"))
    assert verify.status_code == 405 and "POST" in verify.headers["Allow"]
    _protected(verify)


def test_pages_and_status_lists_keep_their_own_stricter_or_cacheable_headers(tenant: Tenant) -> None:
    page = tenant.client.get("/g/" + "x" * 43)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")
    _protected(page)


@pytest.mark.committed
def test_the_verification_endpoint_answers_carry_them_too(tenant: Tenant) -> None:
    for answer in (
        tenant.verify("door_access", token="nonsense"),
        tenant.post("/v1/verifications/batch", {"items": [{"purpose": "p", "token": "t"}]}, scope="verify"),
        tenant.client.post("/v1/verifications", data="{}", headers={"Content-Type": "application/json"}),
    ):
        _protected(answer)
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "Retry-After" not in answer.headers


# --- Strict-Transport-Security ----------------------------------------------------------------------------


@pytest.fixture()
def https_public_url(app_config: dict[str, Any]) -> None:
    """The service reached over https (ask for it before ``app``)."""
    app_config["PUBLIC_URL"] = "https://consent.example"


@pytest.mark.committed
def test_over_https_every_answer_keeps_browsers_on_https(
    https_public_url: None, tenant: Tenant, client: FlaskClient
) -> None:
    for answer in (
        client.get("/healthz"),
        client.get("/no-such-thing"),
        tenant.get("/v1/purposes"),
        tenant.client.get("/g/" + "x" * 43),
        client.get("/.well-known/jwks.json"),
        tenant.verify("door_access", token="nonsense"),  # the verification endpoint, in front of Flask
        tenant.post("/v1/verifications/batch", {"items": [{"purpose": "p", "token": "t"}]}, scope="verify"),
    ):
        assert answer.headers.get("Strict-Transport-Security") == "max-age=31536000", answer.request.path
        _protected(answer, cache=answer.headers["Cache-Control"])


@pytest.mark.committed
def test_over_plain_http_no_answer_asks_for_https(tenant: Tenant, client: FlaskClient) -> None:
    assert tenant.client.application.config["PUBLIC_URL"].startswith("http://")
    for answer in (client.get("/healthz"), tenant.get("/v1/purposes"), tenant.verify("door_access", token="x")):
        assert "Strict-Transport-Security" not in answer.headers


# --- Retry-After ------------------------------------------------------------------------------------------


@pytest.fixture()
def tight_limits(app_config: dict[str, Any]) -> None:
    app_config.update(
        RATE_LIMIT_API="3/minute", RATE_LIMIT_VERIFY="2/minute", RATE_LIMIT_PREFIX=f"cg-{uuid.uuid4().hex}"
    )


@pytest.mark.committed
def test_retry_after_only_on_429_and_503(tight_limits: None, tenant: Tenant) -> None:
    answers = [tenant.get("/v1/purposes") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    for counted in answers[:3]:
        assert "X-RateLimit-Remaining" in counted.headers and "Retry-After" not in counted.headers
    assert 0 < int(answers[3].headers["Retry-After"]) <= 60
    unauthorized = tenant.client.get("/v1/purposes", headers={"Authorization": "Bearer cg_wrong"})
    assert unauthorized.status_code == 401 and "Retry-After" not in unauthorized.headers
    verify = [tenant.verify("door_access", token="x") for _ in range(3)]
    assert [answer.status_code for answer in verify] == [200, 200, 429]
    assert all("Retry-After" not in answer.headers for answer in verify[:2])
    assert int(verify[2].headers["Retry-After"]) > 0


# --- /metrics ---------------------------------------------------------------------------------------------


def test_metrics_without_a_token_do_not_exist_outside_development(client: FlaskClient, app: Flask) -> None:
    assert app.config["ENV"] != "development" and not app.config["METRICS_TOKEN"]
    hidden = client.get("/metrics")
    assert hidden.status_code == 404 and hidden.json["code"] == "not_found"
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_are_open_in_development_without_a_token(app_config: dict[str, Any]) -> None:
    from service import create_app

    app = create_app({**app_config, "ENV": "development"})
    try:
        answer = app.test_client().get("/metrics")
        assert answer.status_code == 200 and b"consent_gate_requests_total" in answer.data
    finally:
        app.extensions["consent_gate.engine"].dispose()


def test_metrics_need_the_operator_token(metrics_token: str, tenant: Tenant) -> None:
    client = tenant.client
    for header in (
        None,
        "",
        f"Basic {metrics_token}",
        f"Bearer {metrics_token[:-1]}",
        f"Bearer {metrics_token}x",
        f"Bearer {metrics_token.upper()}",
        f"Bearer {tenant.keys['admin']}",  # an API key, even an admin's, is not the operator's token
        metrics_token,
    ):
        headers = {} if header is None else {"Authorization": header}
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, header
        assert refused.json["code"] == "unauthorized" and "METRICS_TOKEN" in refused.json["message"]
        assert b"consent_gate" not in refused.data
    allowed = client.get("/metrics", headers={"Authorization": f"bearer  {metrics_token}"})
    assert allowed.status_code == 200 and b"consent_gate_requests_total" in allowed.data
    _protected(allowed)
