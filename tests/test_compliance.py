"""Compliance: transmission (R9), reassessment (R10), receipts, erasure (R13), working days, records (R15).

Filing (R12) is tested in ``test_filing.py``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from flask import Flask
from sqlalchemy import select, text, update

from service import db
from service.db import Base
from service.domain.audit import GENESIS, event_hash
from service.domain.filing import add_working_days, parse_dates
from service.models import AuditEvent, AuditHead

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant


def test_r9_transmission_is_declared_shown_and_recorded(tenant: Tenant) -> None:
    local = tenant.purpose("door_access")
    sent = tenant.purpose("cloud_match", transmits_face_data=True)
    assert local["transmits_face_data"] is False and sent["transmits_face_data"] is True
    evidence = {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN", "transmission_consent": True}
    body = {"subject_id": tenant.subject()["id"], "purpose": "cloud_match", "notice_version": 1, "evidence": evidence}
    consent = tenant.post("/v1/consents", body, scope="consents").json
    assert consent["evidence"]["transmits_face_data"] is True
    assert consent["evidence"]["transmission_consent"] is True
    receipt = tenant.get(f"/v1/consents/{consent['id']}/receipt", scope="consents").json["receipt"]
    assert receipt["purpose"]["transmits_face_data"] is True


def test_r10_material_change_outdates_the_assessment_and_the_report_lists_it(tenant: Tenant) -> None:
    tenant.purpose()
    tenant.post(
        "/v1/purposes/door_access/notices",
        {"texts": {"zh-CN": "新版告知", "en": "Now also for attendance"}, "material": True},
    )
    assert tenant.get("/v1/purposes/door_access").json["assessed_until"] is None
    report = tenant.get("/v1/reports/compliance").json
    [due] = report["assessments_due"]
    assert due["outdated"] is True and "material notice change" in due["reason"]
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"]]
    assert "assessment.outdated" in actions


def test_r10_report_lists_assessments_due_within_30_days(tenant: Tenant) -> None:
    tenant.purpose("door_access", assess=False)
    tenant.purpose("payment", assess=False, category="payment")
    tenant.assess(["door_access"], conducted_at=date.today() - timedelta(days=350))
    tenant.assess(["payment"])
    due = tenant.get("/v1/reports/compliance").json["assessments_due"]
    assert [d["purposes"] for d in due] == [["door_access"]]
    assert due[0]["reason"] == "due within 30 days"


def test_receipt_has_the_27560_fields_and_a_valid_signature(tenant: Tenant) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    body = tenant.get(f"/v1/consents/{consent['id']}/receipt", scope="consents").json
    receipt = body["receipt"]
    for name in (
        "record_id",
        "subject",
        "controller",
        "purpose",
        "notice",
        "retention",
        "jurisdiction",
        "collection",
        "withdrawal",
        "events",
        "consent",
    ):
        assert name in receipt, name
    assert receipt["record_id"] == consent["id"]
    assert receipt["controller"]["name"] == "Sunrise School"
    assert receipt["notice"] == {"version": 1, "digest": consent["notice_digest"], "language": "zh-CN"}
    assert receipt["retention"]["days"] == 90 and receipt["jurisdiction"] == "CN"
    assert receipt["collection"]["method"] == "checkbox"
    assert [e["type"] for e in receipt["events"]] == ["consent.granted"]
    header = jwt.get_unverified_header(body["jws"])
    assert header["typ"] == "consent-receipt+jws" and header["alg"] == "ES256"
    jwk = next(k for k in tenant.client.get("/.well-known/jwks.json").json["keys"] if k["kid"] == header["kid"])
    payload = jwt.api_jws.PyJWS().decode(body["jws"], jwt.PyJWK(jwk).key, algorithms=["ES256"])
    assert json.loads(payload) == receipt


def test_guardian_receipt_names_the_guardian_masked(
    tenant: Tenant, client: Any, guardian: GuardianKit, outbox: Any
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    receipt = tenant.get(f"/v1/consents/{created['consents'][0]['id']}/receipt", scope="consents").json["receipt"]
    assert receipt["subject"]["guardian"]["relationship"] == "parent"
    assert receipt["subject"]["guardian"]["phone_masked"] == "+86 138****5678"
    assert "guardian consent" in receipt["legal_basis"]


def _database_text(app: Flask) -> str:
    with app.app_context():
        session = db.session()
        dump = []
        for table in Base.metadata.sorted_tables:
            for row in session.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608 (our own table names)
                dump.append(" ".join(str(value) for value in row))
        return "\n".join(dump)


def test_r13_erasure_leaves_no_trace_of_the_erased_values(
    tenant: Tenant, app: Flask, client: Any, guardian: GuardianKit, outbox: Any
) -> None:
    birth = date.today() - timedelta(days=9 * 365 + 17)
    tenant.purpose("door_access")
    child = tenant.post(
        "/v1/subjects", {"external_ref": "pupil-erase-7731", "birth_date": birth.isoformat()}, scope="consents"
    ).json
    tenant.guardian_request(child["id"], ["door_access"], phone="+8613955501234")
    guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    before = _database_text(app)
    # Encrypted at rest (R14): not in the database in clear even before erasure, but found by the API.
    assert child["id"] in before and "pupil-erase-7731" not in before and birth.isoformat() not in before
    assert tenant.get("/v1/subjects?external_ref=pupil-erase-7731", scope="consents").json["items"] == [child]
    assert tenant.delete(f"/v1/subjects/{child['id']}").status_code == 204
    after = _database_text(app)
    for value in ("pupil-erase-7731", birth.isoformat(), "+8613955501234", "13955501234", "5501234", "139****1234"):
        assert value not in after, value
    # The audit trail remains, with pseudonymous ids, and still verifies.
    assert child["id"] in after


def test_working_days_skip_weekends_and_holidays() -> None:
    # 2026-09-25 is a Friday. With the National Day holidays (1-7 Oct) and the make-up workday on Sat 10 Oct:
    holidays = parse_dates("2026-10-01,2026-10-02,2026-10-05,2026-10-06,2026-10-07")
    extra = parse_dates("2026-10-10")
    assert add_working_days(date(2026, 9, 25), 1) == date(2026, 9, 28)
    assert add_working_days(date(2026, 9, 25), 30) == date(2026, 11, 6)
    assert add_working_days(date(2026, 9, 25), 30, holidays=holidays, extra_workdays=extra) == date(2026, 11, 12)
    assert parse_dates(" ") == frozenset()


@pytest.mark.committed
def test_report_counts_devices_minors_and_decisions(
    tenant: Tenant, client: Any, guardian: GuardianKit, outbox: Any
) -> None:
    child = guardian.setup_child(tenant)
    tenant.guardian_request(child["id"], ["door_access", "canteen_payment"])
    guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    tenant.post("/v1/devices", {"name": "Gate", "location_type": "school"})
    tenant.post("/v1/devices", {"name": "Gate 2", "location_type": "school"})
    tenant.verify("door_access", subject_id=child["id"])
    tenant.verify("door_access", token="nonsense")
    report = tenant.get("/v1/reports/compliance").json
    assert report["minors_with_guardian_consent"] == 1
    assert report["devices_by_location_type"] == {"school": 2}
    decisions = {(v["decision"], v["reason"]): v["count"] for v in report["verifications"]}
    assert decisions == {("allow", "consent_active"): 1, ("deny", "invalid_token"): 1}
    today = [d for d in report["consents_over_time"] if d["date"] == date.today().isoformat()]
    assert today[0]["granted"] == 1 and today[0]["declined"] == 1
    assert len(report["consents_over_time"]) == 30


def _journey(tenant: Tenant) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")


def test_r15_audit_export_jsonl_and_csv(tenant: Tenant, other_tenant: Tenant, runner: Any) -> None:
    _journey(tenant)
    _journey(other_tenant)
    api = tenant.get("/v1/audit/export")
    assert api.status_code == 200 and api.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in api.get_data(as_text=True).splitlines()]
    assert {line["org_id"] for line in lines} == {tenant.org_id}
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    paged = tenant.get("/v1/audit/events?limit=1000").json["events"]
    assert [line["hash"] for line in lines] == [event["hash"] for event in paged]
    as_csv = tenant.get("/v1/audit/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert [r["hash"] for r in rows] == [line["hash"] for line in lines]
    assert json.loads(rows[0]["data"]) == lines[0]["data"]
    future = tenant.get("/v1/audit/export?since=2999-01-01T00:00:00")
    assert future.get_data(as_text=True) == ""
    cli = runner.invoke(args=["audit", "export", "--format", "jsonl"])
    assert cli.exit_code == 0
    orgs = {json.loads(line)["org_id"] for line in cli.output.splitlines()}
    assert orgs == {tenant.org_id, other_tenant.org_id}
    cli_csv = runner.invoke(
        args=["audit", "export", "--format", "csv", "--org", other_tenant.org_id, "--since", "2000-01-01"]
    )
    assert cli_csv.output.splitlines()[0].startswith("org_id,seq,occurred_at")


def test_r15_signed_checkpoint_proves_the_past_was_not_rewritten(tenant: Tenant, app: Flask, runner: Any) -> None:
    _journey(tenant)
    made = runner.invoke(args=["audit", "checkpoint"])
    assert made.exit_code == 0 and tenant.org_id in made.output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    # Rewrite event 3 and recompute the whole chain and its head: the chain alone now looks intact ...
    with app.app_context():
        session = db.session()
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.org_id == tenant.org_id, AuditEvent.seq == 3)
            .values(data={"forged": True})
        )
        prev = GENESIS
        for event in session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == tenant.org_id).order_by(AuditEvent.seq)
        ):
            event.prev_hash = prev
            event.hash = prev = event_hash(event)
        head = session.get(AuditHead, tenant.org_id)
        assert head is not None
        head.hash = prev
        session.commit()
        from service.domain.audit import verify_chain

        assert verify_chain(db.session(), tenant.org_id) is None
    # ... but the signed checkpoint does not match it any more.
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "checkpoint" in result.output and tenant.org_id in result.output
