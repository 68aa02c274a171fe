"""API keys, scopes, and the wall between organizations."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import db
from service.domain.organizations import create_api_key, hash_api_key
from service.models import ApiKey

if TYPE_CHECKING:
    from tests.support import Tenant


def secured_operations(app: Flask) -> list[tuple[str, str]]:
    spec = app.extensions["consent_gate.api"].spec.to_dict()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and operation.get("security"):
                found.append((method, re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)))
    return found


@pytest.mark.committed  # the verification endpoint reads keys on a connection of its own
def test_every_secured_operation_needs_a_valid_key(app: Flask, client: FlaskClient) -> None:
    operations = secured_operations(app)
    assert len(operations) >= 12
    for method, path in operations:
        for headers in ({}, {"Authorization": "Bearer cg_nonsense"}, {"Authorization": "Basic abc"}):
            response = client.open(path, method=method.upper(), json={}, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/v1/purposes", {"admin"}),
        ("get", "/v1/purposes", {"admin", "consents"}),
        ("post", "/v1/assessments", {"admin"}),
        ("post", "/v1/subjects", {"consents"}),
        ("post", "/v1/consents", {"consents"}),
        # The verification endpoint reads a key it has not cached on a connection of its own.
        pytest.param("post", "/v1/verifications", {"verify"}, marks=pytest.mark.committed),
        ("get", "/v1/audit/events", {"admin"}),
    ],
)
def test_scopes(tenant: Tenant, method: str, path: str, allowed: set[str]) -> None:
    for scope in ("admin", "consents", "verify"):
        response = tenant.client.open(path, method=method.upper(), json={}, headers=tenant.headers(scope))
        if scope in allowed:
            assert response.status_code != 403, (scope, path)
        else:
            assert response.status_code == 403, (scope, path)
            assert response.json["code"] == "forbidden"


def test_keys_are_stored_hashed_and_shown_once(app: Flask, tenant: Tenant) -> None:
    with app.app_context():
        session = db.session()
        stored = session.scalars(select(ApiKey).where(ApiKey.org_id == tenant.org_id)).all()
        assert len(stored) == 3
        for key in tenant.keys.values():
            assert key.startswith("cg_") and len(key) > 40
            assert all(key not in (row.key_hash, row.prefix) for row in stored)
            assert hash_api_key(key) in {row.key_hash for row in stored}


def test_revoked_key_is_refused(app: Flask, tenant: Tenant) -> None:
    from service.models import utcnow

    with app.app_context():
        session = db.session()
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(tenant.keys["admin"]))).one()
        row.revoked_at = utcnow()
        session.commit()
    assert tenant.get("/v1/purposes").status_code == 401


def test_unknown_scope_is_refused(app: Flask, tenant: Tenant) -> None:
    from service.errors import DomainError

    with app.app_context(), pytest.raises(DomainError):
        create_api_key(db.session(), org_id=tenant.org_id, scopes=["root"])


def _first_org_objects(tenant: Tenant) -> dict[str, Any]:
    tenant.purpose()
    person = tenant.subject("shared-ref")
    consent = tenant.consent(person["id"]).json
    return {"subject": person, "consent": consent}


@pytest.mark.committed
def test_another_organization_sees_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    ours = _first_org_objects(tenant)
    subject_id, consent_id = ours["subject"]["id"], ours["consent"]["id"]
    intruder = other_tenant
    checks = [
        intruder.get("/v1/purposes/door_access"),
        intruder.post(
            "/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新版告知", "en": "x"}, "material": True}
        ),
        intruder.get(f"/v1/subjects/{subject_id}", scope="consents"),
        intruder.delete(f"/v1/subjects/{subject_id}"),
        intruder.get(f"/v1/consents/{consent_id}", scope="consents"),
        intruder.post(f"/v1/consents/{consent_id}/revoke", scope="consents"),
        intruder.consent(subject_id),
    ]
    for response in checks:
        assert response.status_code == 404, response.json
        assert response.json["code"] == "not_found"
    assessment = intruder.post(
        "/v1/assessments",
        {
            "purposes": ["door_access"],
            "conducted_at": "2026-01-01",
            "lawfulness_necessity": "Door access by face is lawful with separate consent; a card is offered.",
            "rights_impact": "A face template is processed; anyone may refuse and use the card instead.",
            "security_risks": "Templates could leak from terminals or be matched against other databases.",
            "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
            "conclusion": "Proceed: the risks are low and the safeguards fit them.",
        },
    )
    assert assessment.status_code == 422 and assessment.json["code"] == "unknown_purpose"
    assert intruder.get("/v1/purposes").json == {"items": [], "next_cursor": None}
    assert all(e["object_id"] not in (subject_id, consent_id) for e in intruder.get("/v1/audit/events").json["events"])
    # Their verification of our token or our subject denies, and our consent is untouched.
    intruder.purpose()
    by_token = intruder.verify("door_access", token=ours["consent"]["token"]).json
    assert (by_token["decision"], by_token["reason"]) == ("deny", "invalid_token")
    by_subject = intruder.verify("door_access", subject_id=subject_id).json
    assert (by_subject["decision"], by_subject["reason"]) == ("deny", "no_consent")
    assert tenant.get(f"/v1/consents/{consent_id}", scope="consents").json["status"] == "active"
    assert tenant.get(f"/v1/subjects/{subject_id}", scope="consents").json["external_ref"] == "shared-ref"


def test_filtering_consents_by_another_organizations_subject_or_purpose_finds_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """The filters narrow the caller's own consents; they never reach into another organization's."""
    tenant.purpose()
    subject_id = tenant.subject()["id"]
    assert tenant.consent(subject_id).status_code == 201
    other_tenant.purpose("door_access")  # the same purpose code, in their own catalog
    theirs = other_tenant.subject()["id"]
    assert other_tenant.consent(theirs).status_code == 201
    for query in (
        f"subject_id={subject_id}",
        f"subject_id={subject_id}&purpose=door_access",
        f"subject_id={subject_id}&status=active",
    ):
        answer = other_tenant.get(f"/v1/consents?{query}", scope="consents")
        assert answer.status_code == 200 and answer.json == {"items": [], "next_cursor": None}, query
    by_purpose = other_tenant.get("/v1/consents?purpose=door_access", scope="consents").json["items"]
    assert [c["subject_id"] for c in by_purpose] == [theirs]
    assert [
        c["subject_id"] for c in tenant.get("/v1/consents?purpose=door_access", scope="consents").json["items"]
    ] == [subject_id]
