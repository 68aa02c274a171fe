"""Assessments with the contents of Measures Art. 9, and incidents that call for a reassessment (R10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service import db
from service.domain import assessments
from service.domain.filing_counts import china_today
from service.errors import Unprocessable
from service.models import Assessment, Incident, Purpose

if TYPE_CHECKING:
    from tests.support import Tenant

FILLER = (
    "aaaaaaaaaaaaaaaaaaaaaaaaa",
    "。。。。。。。。。。。。。。。。。。。。。。",
    "                         ",
    "测试测试测试测试测试测试测试测试测试测试",
    "abcabcabcabcabcabcabcabc",
    "N/A",
    "-- -- -- -- -- -- -- -- --",
)


def _purpose_row(session: Session, code: str = "door_access") -> Purpose:
    return session.scalars(select(Purpose).where(Purpose.code == code)).one()


def test_r10_assessment_needs_the_four_contents_domain(
    tenant: Tenant, db_session: Session, assessment_body: Any
) -> None:
    tenant.purpose(assess=False)
    body = assessment_body(["door_access"])
    body["conducted_at"] = date.today()
    for name in assessments.ART9_CONTENTS:
        for filler in FILLER:
            with pytest.raises(Unprocessable) as refused:
                assessments.record_assessment(
                    db_session, org_id=tenant.org_id, actor="test", valid_days=365, fields={**body, name: filler}
                )
            assert refused.value.code == "assessment_incomplete"
            assert refused.value.details is not None and list(refused.value.details) == [name]
    with pytest.raises(Unprocessable) as no_conclusion:
        assessments.record_assessment(
            db_session, org_id=tenant.org_id, actor="test", valid_days=365, fields={**body, "conclusion": "。。"}
        )
    assert no_conclusion.value.details == {"conclusion": ["state the conclusion in real text"]}
    assert db_session.scalars(select(Assessment)).all() == []
    # Twenty characters of real words, in either language, are enough.
    chinese = {
        "lawfulness_necessity": "经单独同意刷脸开门，合法正当，并提供刷卡方式替代人脸识别。",
        "rights_impact": "处理人脸模板，个人可以拒绝并改用门卡，可随时撤回同意，不受影响。",
        "security_risks": "终端上的人脸模板可能泄露，或被与其他数据库比对，造成身份冒用。",
        "safeguards": "模板仅存于终端并加密，传输加密，保存九十天后删除，不向外传输。",
        "conclusion": "可以处理",
    }
    recorded = assessments.record_assessment(
        db_session, org_id=tenant.org_id, actor="test", valid_days=365, fields={**body, **chinese}
    )
    assert recorded.safeguards == chinese["safeguards"]
    assert _purpose_row(db_session).assessed_until == date.today() + timedelta(days=365)


def test_r10_conducted_at_in_the_future_is_judged_by_the_day_in_china(
    tenant: Tenant, db_session: Session, assessment_body: Any
) -> None:
    tenant.purpose(assess=False)
    day = date(2026, 3, 2)
    body = {**assessment_body(["door_access"]), "conducted_at": day}

    def record(today: date | None) -> Assessment:
        return assessments.record_assessment(
            db_session, org_id=tenant.org_id, actor="test", valid_days=365, fields=body, today=today
        )

    with pytest.raises(Unprocessable) as future:
        record(day - timedelta(days=1))
    assert future.value.details == {"json": {"conducted_at": ["must not be in the future"]}}
    assert record(day).conducted_at == day
    # Without one, today is China's: from 16:00 UTC on, already the next day there, and not in the future.
    body["conducted_at"] = china_today()
    assert record(None).conducted_at == china_today()


def test_r10_major_incident_sets_reassess_by_domain(tenant: Tenant, db_session: Session, assessment_body: Any) -> None:
    tenant.purpose()
    tenant.purpose("canteen_payment")
    purpose = _purpose_row(db_session)
    now = datetime.now(UTC)
    minor = assessments.record_incident(
        db_session,
        org_id=tenant.org_id,
        actor="test",
        fields={"occurred_at": now, "description": "a camera was knocked over", "purposes": ["door_access"],
                "severity": "minor"},
    )  # fmt: skip
    assert minor.purpose_codes == ["door_access"] and purpose.reassess_by is None
    earlier = now - timedelta(days=3)
    for occurred_at in (earlier, now - timedelta(days=1)):  # a later incident keeps the earlier deadline
        assessments.record_incident(
            db_session,
            org_id=tenant.org_id,
            actor="test",
            fields={"occurred_at": occurred_at, "description": "templates copied", "purposes": ["door_access"],
                    "severity": "major"},
        )  # fmt: skip
        assert purpose.reassess_by == earlier + timedelta(days=30)
    assert _purpose_row(db_session, "canteen_payment").reassess_by is None
    assert assessments.assessment_is_current(purpose, now)
    assert not assessments.assessment_is_current(purpose, earlier + timedelta(days=30))
    # An assessment conducted before the incident does not address it; one conducted on its day or later does.
    backdated = {**assessment_body(["door_access"]), "conducted_at": (earlier - timedelta(days=1)).date()}
    assessments.record_assessment(db_session, org_id=tenant.org_id, actor="test", valid_days=365, fields=backdated)
    assert purpose.reassess_by == earlier + timedelta(days=30)
    fresh = {**assessment_body(["door_access"]), "conducted_at": date.today()}
    assessments.record_assessment(db_session, org_id=tenant.org_id, actor="test", valid_days=365, fields=fresh)
    assert purpose.reassess_by is None


@pytest.mark.parametrize("filler", FILLER)
def test_r10_filler_assessment_is_refused_and_nothing_stored(tenant: Tenant, assessment_body: Any, filler: str) -> None:
    tenant.purpose(assess=False)
    response = tenant.post("/v1/assessments", assessment_body(["door_access"], security_risks=filler))
    assert response.status_code == 422, response.json
    assert response.json["code"] == "assessment_incomplete"
    assert list(response.json["errors"]) == ["security_risks"]
    assert tenant.get("/v1/assessments").json == {"items": [], "next_cursor": None}
    assert tenant.get("/v1/purposes/door_access").json["assessed_until"] is None


def test_r10_the_old_shape_is_refused(tenant: Tenant) -> None:
    tenant.purpose(assess=False)
    old = {"purposes": ["door_access"], "conducted_at": date.today().isoformat(), "summary": "PIA of door access",
           "risk_level": "low", "measures": "on-device templates"}  # fmt: skip
    response = tenant.post("/v1/assessments", old)
    assert response.status_code == 422
    assert {"summary", "risk_level", "measures", "lawfulness_necessity"} <= set(response.json["errors"]["json"])


def test_r10_assessments_are_listed_read_and_kept_from_other_tenants(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.purpose(assess=False)
    made = [tenant.assess(["door_access"], conducted_at=date.today() - timedelta(days=n)) for n in (2, 1, 0)]
    first = tenant.get("/v1/assessments?limit=2").json
    assert [a["id"] for a in first["items"]] == [made[0]["id"], made[1]["id"]]  # oldest first, as every list
    assert first["next_cursor"]
    second = tenant.get(f"/v1/assessments?limit=2&cursor={first['next_cursor']}").json
    assert [a["id"] for a in second["items"]] == [made[2]["id"]] and second["next_cursor"] is None
    one = tenant.get(f"/v1/assessments/{made[0]['id']}").json
    assert one == made[0]
    assert set(assessments.ART9_CONTENTS) <= set(one) and one["conclusion"]
    assert "summary" not in one and "risk_level" not in one
    assert tenant.get("/v1/assessments?cursor=nonsense").status_code == 422
    # Another organization's key sees none of it.
    theirs = other_tenant.get(f"/v1/assessments/{made[0]['id']}")
    assert theirs.status_code == 404 and theirs.json["code"] == "not_found"
    assert other_tenant.get("/v1/assessments").json == {"items": [], "next_cursor": None}
    assert tenant.get("/v1/assessments/no-such-id").status_code == 404


def test_r10_assessments_and_incidents_are_never_deleted(tenant: Tenant) -> None:
    tenant.purpose()
    [assessment] = tenant.get("/v1/assessments").json["items"]
    incident = tenant.incident(["door_access"], severity="minor").json
    for path in (f"/v1/assessments/{assessment['id']}", f"/v1/incidents/{incident['id']}"):
        response = tenant.delete(path, scope="admin")
        assert response.status_code == 405 and response.json["code"] == "method_not_allowed"
    assert tenant.get(f"/v1/assessments/{assessment['id']}").status_code == 200
    assert tenant.get(f"/v1/incidents/{incident['id']}").status_code == 200


def test_r10_assessments_export_as_json_lines(tenant: Tenant) -> None:
    tenant.purpose("canteen_payment", assess=False)
    tenant.purpose()
    tenant.assess(["canteen_payment"])
    response = tenant.get("/v1/assessments/export")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["purposes"] for line in lines] == [["door_access"], ["canteen_payment"]]  # oldest first
    assert all(line["safeguards"] and line["conclusion"] for line in lines)
    assert tenant.get("/v1/assessments/export", scope="consents").status_code == 403


def test_incidents_of_unknown_purposes_or_in_the_future_are_refused(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.purpose()
    other_tenant.purpose("canteen_payment")
    unknown = tenant.incident(["door_access", "canteen_payment"])
    assert unknown.status_code == 422 and unknown.json["code"] == "unknown_purpose"
    assert unknown.json["errors"] == {"purposes": ["canteen_payment"]}
    future = tenant.incident(["door_access"], occurred_at=datetime.now(UTC) + timedelta(days=1))
    assert future.status_code == 422
    naive = tenant.incident(["door_access"], occurred_at=datetime.now() - timedelta(hours=2))
    assert naive.status_code == 422
    assert tenant.incident(["door_access"], severity="catastrophic").status_code == 422
    assert tenant.get("/v1/incidents").json == {"items": [], "next_cursor": None}
    assert tenant.get("/v1/purposes/door_access").json["reassess_by"] is None
    assert tenant.incident(["door_access"], scope_note="x").status_code == 422  # unknown fields


def test_r10_incidents_are_listed_audited_and_reported(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.purpose()
    occurred = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    major = tenant.incident(["door_access"], occurred_at=occurred)
    assert major.status_code == 201, major.json
    assert major.json["severity"] == "major" and major.json["purposes"] == ["door_access"]
    minor = tenant.incident(["door_access"], severity="minor").json
    listed = tenant.get("/v1/incidents").json
    assert [i["id"] for i in listed["items"]] == [major.json["id"], minor["id"]]  # oldest first
    assert other_tenant.get(f"/v1/incidents/{minor['id']}").status_code == 404
    assert tenant.post("/v1/incidents", {}, scope="consents").status_code == 403
    reassess_by = tenant.get("/v1/purposes/door_access").json["reassess_by"]
    assert datetime.fromisoformat(reassess_by) == occurred + timedelta(days=30)
    events = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "incident.recorded"]
    assert [e["data"]["severity"] for e in events] == ["major", "minor"]
    assert "description" not in events[0]["data"]
    report = tenant.get("/v1/reports/compliance").json
    assert report["reassessment_due"] == [{"purpose": "door_access", "reassess_by": reassess_by, "overdue": False}]
    assert [i["severity"] for i in report["incidents"]] == ["minor", "major"]
    page = tenant.get("/v1/reports/compliance.html").get_data(as_text=True)
    assert 'id="incidents"' in page and "template store was copied" in page and 'id="reassessment-due"' in page


@pytest.mark.committed
def test_r10_past_reassess_by_verification_denies_until_a_new_assessment(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    # A minor incident changes nothing.
    assert tenant.incident(["door_access"], severity="minor").status_code == 201
    assert tenant.get("/v1/purposes/door_access").json["reassess_by"] is None
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    # A major one leaves 30 days; within them verification still allows.
    assert tenant.incident(["door_access"]).status_code == 201
    assert tenant.get("/v1/purposes/door_access").json["reassess_by"] is not None
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    # Past the deadline (the row moved, not the clock): verification denies, no consent is granted.
    with app.app_context():
        session = db.session()
        session.execute(update(Purpose).values(reassess_by=datetime.now(UTC) - timedelta(minutes=1)))
        session.commit()
    denied = tenant.verify("door_access", token=consent["token"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "assessment_required")
    refused = tenant.consent(tenant.subject()["id"])
    assert refused.status_code == 409 and refused.json["code"] == "assessment_required"
    report = tenant.get("/v1/reports/compliance").json
    assert report["reassessment_due"][0]["overdue"] is True
    # A new assessment covering the purpose restores it.
    tenant.assess(["door_access"])
    assert tenant.get("/v1/purposes/door_access").json["reassess_by"] is None
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    assert tenant.consent(tenant.subject()["id"]).status_code == 201


@pytest.mark.committed
def test_r10_an_incident_racing_an_assessment_ends_consistent(
    tenant: Tenant, app: Flask, race: Callable[..., list[list[object]]], database_url: str
) -> None:
    """Each takes the purpose's row lock and reads what the other committed: an assessment conducted before
    the incident's day never clears the deadline it sets, whichever commits first (no lost update); one
    conducted on its day clears it when it was recorded after the incident."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks and concurrent writers: PostgreSQL (SQLite runs one writer at a time)")
    yesterday = date.today() - timedelta(days=1)
    for round_, conducted_at in enumerate([yesterday] * 4 + [date.today()] * 2):
        code = f"door_{round_}"
        tenant.purpose(code, assess=False)
        tenant.assess([code], conducted_at=date.today() - timedelta(days=2))

        def incident(code: str = code) -> object:
            return tenant.incident([code]).status_code

        def assessment(code: str = code, conducted_at: date = conducted_at) -> object:
            return tenant.assess([code], conducted_at=conducted_at)["id"]

        [(status, assessment_id)] = race(incident, assessment)
        assert status == 201 and isinstance(assessment_id, str), (status, assessment_id)
        with app.app_context():
            session = db.session()
            purpose = _purpose_row(session, code)
            assert purpose.reassess_by == assessments.reassessment_deadline(session, purpose), round_
            if conducted_at == yesterday:  # before the incident's day: it never addresses it
                assert purpose.reassess_by is not None, round_
            else:  # on its day: it addresses the incident if it was recorded after it
                recorded = session.get(Assessment, assessment_id)
                assert recorded is not None
                later = recorded.created_at > session.scalars(select(Incident.created_at)).all()[-1]
                assert (purpose.reassess_by is None) == later, round_
