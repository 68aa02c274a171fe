"""Impact assessments before processing (R10)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select

from service import db
from service.models import Purpose

if TYPE_CHECKING:
    from tests.support import Tenant


def test_r10_no_consent_without_a_current_assessment(tenant: Tenant) -> None:
    tenant.purpose(assess=False)
    person = tenant.subject()
    response = tenant.consent(person["id"])
    assert response.status_code == 409
    assert response.json["code"] == "assessment_required"
    tenant.assess(["door_access"])
    assert tenant.consent(person["id"]).status_code == 201


def test_r10_assessment_is_valid_365_days_from_when_it_was_conducted(tenant: Tenant) -> None:
    tenant.purpose(assess=False)
    conducted = date.today() - timedelta(days=10)
    assessment = tenant.assess(["door_access"], conducted_at=conducted)
    assert assessment["valid_until"] == (conducted + timedelta(days=365)).isoformat()
    assert assessment["purposes"] == ["door_access"]
    assert tenant.get("/v1/purposes/door_access").json["assessed_until"] == assessment["valid_until"]


def test_r10_an_outdated_assessment_does_not_count(tenant: Tenant) -> None:
    tenant.purpose(assess=False)
    tenant.assess(["door_access"], conducted_at=date.today() - timedelta(days=400))
    response = tenant.consent(tenant.subject()["id"])
    assert response.json["code"] == "assessment_required"


@pytest.mark.committed
def test_r10_verification_denies_when_the_assessment_lapses(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    with app.app_context():
        session = db.session()
        purpose = session.scalars(select(Purpose).where(Purpose.code == "door_access")).one()
        purpose.assessed_until = date.today() - timedelta(days=1)
        session.commit()
    denied = tenant.verify("door_access", token=consent["token"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "assessment_required")


def test_assessment_of_unknown_purposes_is_refused(tenant: Tenant, assessment_body: Any) -> None:
    tenant.purpose(assess=False)
    response = tenant.post(
        "/v1/assessments",
        assessment_body(["door_access", "nope"]),
    )
    assert response.status_code == 422
    assert response.json["code"] == "unknown_purpose"
    assert response.json["errors"] == {"purposes": ["nope"]}
    assert tenant.get("/v1/purposes/door_access").json["assessed_until"] is None


def test_assessment_cannot_be_dated_in_the_future(tenant: Tenant, assessment_body: Any) -> None:
    tenant.purpose(assess=False)
    future = date.today() + timedelta(days=2)
    response = tenant.post("/v1/assessments", assessment_body(["door_access"], future))
    assert response.status_code == 422
