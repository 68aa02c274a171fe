"""People: age computed on the server (R4) and erasure (R13)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlalchemy import select

from service import db
from service.domain.subjects import add_years
from service.models import AuditEvent, Subject

if TYPE_CHECKING:
    from tests.support import Tenant


def register(tenant: Tenant, ref: str, birth: date) -> dict:  # type: ignore[type-arg]
    response = tenant.post("/v1/subjects", {"external_ref": ref, "birth_date": birth.isoformat()}, scope="consents")
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def test_r4_server_computes_minority_from_birth_date(tenant: Tenant) -> None:
    today = date.today()
    child = register(tenant, "child", add_years(today, -14) + timedelta(days=1))
    assert child["is_minor"] is True
    assert child["guardian_required_until"] == (today + timedelta(days=1)).isoformat()
    adult = register(tenant, "adult", add_years(today, -14))
    assert adult["is_minor"] is False
    assert adult["guardian_required_until"] == today.isoformat()


@pytest.mark.committed
def test_r4_minor_cannot_consent_alone(tenant: Tenant) -> None:
    tenant.purpose()
    child = tenant.subject(age_years=9)
    response = tenant.consent(child["id"])
    assert response.status_code == 409
    assert response.json["code"] == "guardian_required"
    denied = tenant.verify("door_access", subject_id=child["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "no_consent")


def test_r4_leap_day_birthdays_reach_the_age_on_first_of_march() -> None:
    assert add_years(date(2012, 2, 29), 14) == date(2026, 3, 1)
    assert add_years(date(2012, 2, 28), 14) == date(2026, 2, 28)
    assert add_years(date(2000, 2, 29), 16) == date(2016, 2, 29)


def test_birth_date_in_the_future_is_refused(tenant: Tenant) -> None:
    response = tenant.post(
        "/v1/subjects",
        {"external_ref": "x", "birth_date": (date.today() + timedelta(days=1)).isoformat()},
        scope="consents",
    )
    assert response.status_code == 422
    assert "birth_date" in response.json["errors"]["json"]


def test_external_ref_is_unique_within_an_organization_only(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.subject("same-ref")
    again = tenant.post("/v1/subjects", {"external_ref": "same-ref", "birth_date": "1990-01-01"}, scope="consents")
    assert again.status_code == 409
    assert again.json["code"] == "subject_exists"
    other_tenant.subject("same-ref")


@pytest.mark.committed
def test_r13_erasure_removes_personal_data_and_ends_consents(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    person = tenant.subject("student-erase-me")
    consent = tenant.consent(person["id"]).json
    response = tenant.delete(f"/v1/subjects/{person['id']}")
    assert response.status_code == 204

    read = tenant.get(f"/v1/subjects/{person['id']}", scope="consents").json
    assert read["external_ref"] is None and read["birth_date"] is None and read["erased_at"]
    status = tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json
    assert status["status"] == "revoked" and status["end_reason"] == "subject_erased"
    by_token = tenant.verify("door_access", token=consent["token"]).json
    assert (by_token["decision"], by_token["reason"]) == ("deny", "subject_erased")
    by_subject = tenant.verify("door_access", subject_id=person["id"]).json
    assert by_subject["reason"] == "subject_erased"
    # Erasing twice changes nothing.
    assert tenant.delete(f"/v1/subjects/{person['id']}").status_code == 204

    with app.app_context():
        session = db.session()
        row = session.get(Subject, person["id"])
        assert row is not None and row.external_ref is None and row.birth_date is None
        events = session.scalars(select(AuditEvent).where(AuditEvent.org_id == tenant.org_id)).all()
        actions = [e.action for e in events]
        assert "subject.erased" in actions and "consent.revoked" in actions
        # The audit trail stays, pseudonymous: no reference, no birth date.
        for event in events:
            dumped = repr(event.data)
            assert "student-erase-me" not in dumped
            assert "birth" not in dumped


def test_r13_erased_subject_cannot_consent_again(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    tenant.delete(f"/v1/subjects/{person['id']}")
    response = tenant.consent(person["id"])
    assert response.status_code == 409
    assert response.json["code"] == "subject_erased"


def test_unknown_subject_is_404(tenant: Tenant) -> None:
    assert tenant.get("/v1/subjects/00000000-0000-0000-0000-000000000000", scope="consents").status_code == 404
    assert tenant.delete("/v1/subjects/00000000-0000-0000-0000-000000000000").status_code == 404
