"""Bad input answers a clear 4xx with a stable code and writes nothing."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import func, select

from service import db
from service.models import AuditEvent, Consent, Purpose, Subject

if TYPE_CHECKING:
    from tests.support import PurposeBody, Tenant


def counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        session = db.session()
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Purpose, Subject, Consent, AuditEvent)
        )


FAKE_JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 64).decode()


@pytest.mark.committed  # the verification endpoint reads keys on a connection of its own
def test_unknown_fields_including_face_data_are_refused(tenant: Tenant, app: Flask, purpose_body: PurposeBody) -> None:
    tenant.purpose()
    person = tenant.subject()
    before = counts(app)
    cases = [
        ("/v1/purposes", {**purpose_body("p2"), "template": "abc"}, "admin"),
        ("/v1/subjects", {"external_ref": "r", "birth_date": "1990-01-01", "face_image": FAKE_JPEG}, "consents"),
        (
            "/v1/consents",
            {
                "subject_id": person["id"],
                "purpose": "door_access",
                "notice_version": 1,
                "evidence": {"method": "checkbox", "channel": "web", "locale": "en", "photo": FAKE_JPEG},
            },
            "consents",
        ),
        ("/v1/verifications", {"purpose": "door_access", "subject_id": person["id"], "image": FAKE_JPEG}, "verify"),
    ]
    for path, body, scope in cases:
        response = tenant.post(path, body, scope=scope)
        assert response.status_code == 422, path
        assert response.json["code"] == "validation_error"
    assert counts(app) == before


def test_malformed_json_is_400(tenant: Tenant, app: Flask) -> None:
    before = counts(app)
    response = tenant.client.post(
        "/v1/subjects",
        data=b'{"external_ref": "x",',
        headers=tenant.headers("consents", {"Content-Type": "application/json"}),
    )
    assert response.status_code == 400
    assert response.json["code"] == "malformed_json"
    assert counts(app) == before


@pytest.mark.parametrize(
    "body",
    [
        {"external_ref": 12, "birth_date": "1990-01-01"},
        {"external_ref": "x" * 129, "birth_date": "1990-01-01"},
        {"external_ref": "", "birth_date": "1990-01-01"},
        {"external_ref": "x", "birth_date": "not a date"},
        {"external_ref": "x", "birth_date": "1990-13-01"},
        {"external_ref": "x"},
        [],
        "a string",
    ],
)
def test_wrong_types_and_lengths_are_422(tenant: Tenant, app: Flask, body: object) -> None:
    before = counts(app)
    response = tenant.post("/v1/subjects", body, scope="consents")
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    assert counts(app) == before


def test_wrong_types_in_purposes(tenant: Tenant, purpose_body: PurposeBody) -> None:
    for override in (
        {"retention_days": "ninety"},
        {"retention_days": 0},
        {"retention_days": 99999},
        {"category": "marketing"},
        {"code": "Bad Code!"},
        {"analyses": "race"},
        {"name": "x" * 201},
    ):
        response = tenant.post("/v1/purposes", purpose_body(**override))
        assert response.status_code == 422, override
        assert next(iter(override)) in response.json["errors"]["json"]


def test_bodies_over_the_size_limit_are_413(tenant: Tenant, app: Flask, purpose_body: PurposeBody) -> None:
    before = counts(app)
    huge = purpose_body(description={"zh-CN": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    response = tenant.post("/v1/purposes", huge)
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"
    assert counts(app) == before


def test_unknown_route_and_method_use_the_error_shape(tenant: Tenant) -> None:
    missing = tenant.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json["code"] == "not_found"
    wrong = tenant.client.put("/v1/purposes", headers=tenant.headers("admin"))
    assert wrong.status_code == 405 and wrong.json["code"] == "method_not_allowed"


def test_text_that_cannot_be_stored_is_refused(tenant: Tenant, app: Flask) -> None:
    before = counts(app)
    for escaped in ("nul\\u0000inside", "lone \\ud800 surrogate"):
        body = '{"external_ref": "' + escaped + '", "birth_date": "1990-01-01"}'
        response = tenant.client.post(
            "/v1/subjects", data=body, headers=tenant.headers("consents", {"Content-Type": "application/json"})
        )
        assert response.status_code == 422, escaped
    assert tenant.get("/v1/subjects/abc%00def", scope="consents").status_code == 404
    assert tenant.get("/v1/audit/events?after=6492890312").status_code == 422
    assert counts(app) == before


@pytest.mark.parametrize("path", ["/v1/deletions", "/v1/rights-requests", "/v1/assessments", "/v1/incidents"])
def test_query_strings_with_nul_are_refused(tenant: Tenant, path: str) -> None:
    """A NUL in a query parameter is a 422, on every list and both databases (PostgreSQL cannot store it)."""
    for query in ("?cursor=%00", "?cursor=abc%00def", "?limit=1&cursor=x&cursor=%00"):
        response = tenant.get(path + query)
        assert (response.status_code, response.json["code"]) == (422, "validation_error"), (path, query)
