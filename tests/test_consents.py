"""Separate consent (R2) and withdrawal at any time (R3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from service import db
from service.models import AuditEvent, Consent

if TYPE_CHECKING:
    from tests.support import ForceExpiry, Tenant


@pytest.mark.committed
def test_r2_consent_is_separate_for_each_purpose(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    tenant.purpose("canteen_payment", category="payment")
    person = tenant.subject()
    door = tenant.consent(person["id"], "door_access").json

    mismatch = tenant.verify("canteen_payment", token=door["token"]).json
    assert (mismatch["decision"], mismatch["reason"]) == ("deny", "purpose_mismatch")
    unconsented = tenant.verify("canteen_payment", subject_id=person["id"]).json
    assert (unconsented["decision"], unconsented["reason"]) == ("deny", "no_consent")
    assert tenant.verify("door_access", subject_id=person["id"]).json["decision"] == "allow"


def test_r2_consent_stores_evidence_and_binds_the_notice(tenant: Tenant) -> None:
    purpose = tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    assert consent["notice_version"] == 1
    assert consent["notice_digest"] == purpose["notice"]["digest"]
    evidence = consent["evidence"]
    assert evidence["method"] == "checkbox" and evidence["channel"] == "mobile_app" and evidence["locale"] == "zh-CN"
    assert evidence["notice_digest"] == purpose["notice"]["digest"]
    assert datetime.fromisoformat(evidence["recorded_at"])
    assert consent["guardian_authorized"] is False


def test_r2_one_live_consent_per_person_and_purpose(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    first = tenant.consent(person["id"]).json
    second = tenant.consent(person["id"])
    assert second.status_code == 409
    assert second.json["code"] == "consent_exists"
    assert second.json["errors"] == {"consent_id": first["id"]}


def test_r2_idempotency_key_returns_the_same_consent(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    person = tenant.subject()
    key = {"Idempotency-Key": "enroll-42"}
    first = tenant.consent(person["id"], headers=key)
    again = tenant.consent(person["id"], headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json["id"] == first.json["id"]
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Consent)) == 1
    changed = tenant.post(
        "/v1/consents",
        {
            "subject_id": person["id"],
            "purpose": "door_access",
            "notice_version": 1,
            "evidence": {"method": "button", "channel": "kiosk", "locale": "en"},
        },
        scope="consents",
        headers=key,
    )
    assert changed.status_code == 422
    assert changed.json["code"] == "idempotency_key_reused"


def test_consent_expires_no_later_than_the_retention_period(tenant: Tenant) -> None:
    tenant.purpose(retention_days=30)
    consent = tenant.consent(tenant.subject()["id"]).json
    granted = datetime.fromisoformat(consent["granted_at"])
    expires = datetime.fromisoformat(consent["expires_at"])
    assert expires - granted == timedelta(days=30)


def test_consent_for_unknown_purpose_or_subject_is_404(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    assert tenant.consent(person["id"], purpose="nope").status_code == 404
    assert tenant.consent("00000000-0000-0000-0000-000000000000").status_code == 404


@pytest.mark.committed
def test_r3_withdrawal_is_immediate_idempotent_and_records_who_and_why(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    path = f"/v1/consents/{consent['id']}/revoke"
    first = tenant.post(path, {"reason": "parent asked"}, scope="consents")
    second = tenant.post(path, scope="consents")
    assert first.status_code == second.status_code == 200
    assert first.json["status"] == second.json["status"] == "revoked"
    assert first.json["ended_at"] == second.json["ended_at"]
    assert (first.json["end_reason"], first.json["end_note"]) == ("withdrawn", "parent asked")
    denied = tenant.verify("door_access", token=consent["token"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "revoked")
    with app.app_context():
        session = db.session()
        row = session.get(Consent, consent["id"])
        assert row is not None and row.ended_by and row.ended_by.startswith("api_key:")
        revocations = session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == consent["id"], AuditEvent.action == "consent.revoked")
        ).all()
        assert len(revocations) == 1
        # The person's words stay on the consent (and go with erasure), never in the hash-chained trail.
        assert revocations[0].data["reason"] == "withdrawn" and "parent asked" not in repr(revocations[0].data)


@pytest.mark.committed
def test_r3_withdrawal_keeps_the_history(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    tenant.verify("door_access", token=consent["token"])
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    events = tenant.get("/v1/audit/events").json["events"]
    actions = [e["action"] for e in events if e["object_id"] == consent["id"]]
    assert actions == ["consent.granted", "consent.revoked"]
    # A new consent after withdrawal is a new record; the old one stays revoked.
    renewed = tenant.consent(person["id"])
    assert renewed.status_code == 201 and renewed.json["id"] != consent["id"]
    assert tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json["status"] == "revoked"


def test_token_is_shown_only_while_active(tenant: Tenant) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    read = tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json
    assert read["status"] == "active" and read["token"]
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    assert tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json["token"] is None


def test_revoking_an_unknown_consent_is_404(tenant: Tenant) -> None:
    response = tenant.post("/v1/consents/00000000-0000-0000-0000-000000000000/revoke", scope="consents")
    assert response.status_code == 404
    assert response.json["code"] == "not_found"


@pytest.mark.committed
def test_r8_sweep_expires_overdue_consents_with_an_audit_event(
    tenant: Tenant, app: Flask, runner: Any, force_expiry: ForceExpiry
) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    force_expiry(consent["id"])
    # Verification denies before the sweep runs.
    assert tenant.verify("door_access", subject_id=person["id"]).json["reason"] == "expired"
    result = runner.invoke(args=["sweep"])
    assert result.exit_code == 0 and "expired 1 consents" in result.output
    with app.app_context():
        row = db.session().get(Consent, consent["id"])
        assert row is not None and row.status == "expired" and row.end_reason == "retention_period_ended"
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"] if e["object_id"] == consent["id"]]
    assert actions == ["consent.granted", "consent.expired"]
    assert runner.invoke(args=["sweep"]).output.splitlines()[0] == "expired 0 consents, 0 guardian requests"
    # An expired consent cannot be withdrawn any more, and a new consent can be given.
    assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").json["code"] == "consent_ended"
    assert tenant.consent(person["id"]).status_code == 201


@pytest.mark.committed
def test_r8_granting_again_after_expiry_needs_no_sweep(tenant: Tenant, app: Flask, force_expiry: ForceExpiry) -> None:
    tenant.purpose()
    person = tenant.subject()
    old = tenant.consent(person["id"]).json
    force_expiry(old["id"])
    renewed = tenant.consent(person["id"])
    assert renewed.status_code == 201
    assert tenant.get(f"/v1/consents/{old['id']}", scope="consents").json["status"] == "expired"
    assert tenant.verify("door_access", subject_id=person["id"]).json["decision"] == "allow"


def test_r8_reading_an_overdue_consent_records_its_expiry(
    tenant: Tenant, app: Flask, force_expiry: ForceExpiry
) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    force_expiry(consent["id"])
    read = tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json
    assert (read["status"], read["end_reason"], read["token"]) == ("expired", "retention_period_ended", None)
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"] if e["object_id"] == consent["id"]]
    assert actions == ["consent.granted", "consent.expired"]
