"""The verify path: closed reasons, durable records, failing closed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from schemas.verifications import REASONS
from service import db
from service.models import Verification

if TYPE_CHECKING:
    from tests.support import Tenant


@pytest.mark.committed
def test_every_decision_is_recorded_before_the_answer(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    gate = tenant.post("/v1/devices", {"name": "Gate 3", "location_type": "school"}).json["id"]
    allow = tenant.verify("door_access", token=consent["token"], device_id=gate).json
    deny = tenant.verify("door_access", token="not-a-token").json
    with app.app_context():
        session = db.session()
        rows = {v.id: v for v in session.scalars(select(Verification))}
    recorded = rows[allow["verification_id"]]
    assert (recorded.decision, recorded.reason, recorded.consent_id) == ("allow", "consent_active", consent["id"])
    assert recorded.device_id == gate and recorded.purpose == "door_access"
    assert recorded.subject_id == person["id"] and recorded.org_id == tenant.org_id
    assert rows[deny["verification_id"]].reason == "invalid_token"


@pytest.mark.committed
def test_reasons_for_unknown_things(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    unknown_purpose = tenant.verify("nope", subject_id=person["id"]).json
    assert (unknown_purpose["decision"], unknown_purpose["reason"]) == ("deny", "unknown_purpose")
    unknown_subject = tenant.verify("door_access", subject_id="00000000-0000-0000-0000-000000000000").json
    assert unknown_subject["reason"] == "no_consent"
    assert tenant.verify("door_access", subject_id=person["id"]).json["reason"] == "no_consent"


@pytest.mark.committed  # the endpoint reads an uncached key on a connection of its own
def test_verify_needs_exactly_one_of_token_or_subject(tenant: Tenant) -> None:
    both = tenant.post("/v1/verifications", {"purpose": "door_access", "token": "x", "subject_id": "y"}, scope="verify")
    neither = tenant.post("/v1/verifications", {"purpose": "door_access"}, scope="verify")
    no_purpose = tenant.post("/v1/verifications", {"token": "x"}, scope="verify")
    assert both.status_code == neither.status_code == no_purpose.status_code == 422


@pytest.mark.committed  # the endpoint reads an uncached key on a connection of its own
def test_verify_requires_the_verify_scope(tenant: Tenant) -> None:
    response = tenant.post("/v1/verifications", {"purpose": "door_access", "token": "x"}, scope="consents")
    assert response.status_code == 403
    assert response.json["code"] == "forbidden"


@pytest.mark.committed
def test_verify_fails_closed_when_the_database_fails(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    # Point the verifier at a database that does not exist: every query now raises.
    from service.db import HeldConnections, make_engine

    verifier = app.extensions["consent_gate.verifier"]
    working = verifier.held
    broken = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    verifier.held = HeldConnections(broken)
    try:
        response = tenant.verify("door_access", token=consent["token"])
    finally:
        verifier.held = working
        broken.dispose()
    assert response.status_code == 503
    assert response.json["decision"] == "deny"
    assert response.json["reason"] == "unavailable"
    assert response.json["code"] == "service_unavailable"
    # And it recovers without a restart.
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"


@pytest.mark.committed
def test_verify_fails_closed_on_any_internal_error(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("service.verification.store._item", explode)
    response = tenant.verify("door_access", token=consent["token"])
    assert response.status_code == 503
    assert response.json["decision"] == "deny"


def test_reason_set_is_closed_and_documented(app: Flask) -> None:
    from service.verification.rules import Reason

    assert {r.value for r in Reason} == set(REASONS)
    spec = app.extensions["consent_gate.api"].spec.to_dict()
    documented = spec["components"]["schemas"]["Verification"]["properties"]["reason"]["enum"]
    assert set(documented) == set(REASONS)


@pytest.mark.committed
def test_revoke_is_seen_by_the_very_next_verification(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    for _ in range(3):
        assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    for _ in range(3):
        assert tenant.verify("door_access", token=consent["token"]).json["reason"] == "revoked"
        assert tenant.verify("door_access", subject_id=person["id"]).json["reason"] == "revoked"
