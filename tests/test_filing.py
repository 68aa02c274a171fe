"""Filing with the cyberspace office (R12, Measures Art. 15): who counts, when it falls due, recording it,
change filings, the materials pack; one count a day however many reports run at once."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import db
from service.domain.filing import add_working_days
from service.domain.filing_counts import china_today, people_with_active_consent
from service.domain.filing_status import filing_status
from service.models import AuditEvent, Filing, FilingCount

if TYPE_CHECKING:
    from tests.support import Race, Tenant

FILING = {
    "filed_on": china_today().isoformat(),
    "authority": "上海市互联网信息办公室",
    "filing_number": "沪网信备-0001",
}


@pytest.fixture()
def low_threshold(app_config: dict[str, Any]) -> None:
    app_config["FILING_THRESHOLD"] = 3
    app_config["FILING_HOLIDAYS"] = ""
    app_config["FILING_EXTRA_WORKDAYS"] = ""


def filing_of(tenant: Tenant) -> dict[str, Any]:
    response = tenant.get("/v1/reports/compliance")
    assert response.status_code == 200, response.json
    return response.json["filing"]  # type: ignore[no-any-return]


def consented_people(tenant: Tenant, how_many: int, purpose: str = "door_access") -> list[str]:
    """``how_many`` people, each with an active consent to ``purpose``; their consent ids."""
    ids = []
    for _ in range(how_many):
        response = tenant.consent(tenant.subject()["id"], purpose)
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])
    return ids


def move_counts(session: Session, org_id: str, *, to: date | None = None, back: int = 0) -> None:
    """Move the organization's recorded counts in time, as if the days had passed."""
    rows = list(session.scalars(select(FilingCount).where(FilingCount.org_id == org_id)))
    for row in rows:
        row.day = to if to is not None else row.day - timedelta(days=back)
    session.commit()


def test_r12_filing_count_is_people_with_an_active_consent_now_domain(
    app: Flask, tenant: Tenant, db_session: Session
) -> None:
    app.config["FILING_THRESHOLD"] = 2
    tenant.purpose("door_access")
    tenant.purpose("canteen_payment", category="payment")
    both = tenant.subject()["id"]
    assert tenant.consent(both, "door_access").status_code == 201
    assert tenant.consent(both, "canteen_payment").status_code == 201  # one person, counted once
    withdrawn = tenant.consent(tenant.subject()["id"]).json["id"]
    assert tenant.post(f"/v1/consents/{withdrawn}/revoke", scope="consents").status_code == 200
    evidence = {"method": "button", "channel": "mobile_app", "locale": "zh-CN"}
    declined = tenant.post(
        "/v1/consents",
        {
            "subject_id": tenant.subject()["id"],
            "purpose": "door_access",
            "notice_version": 1,
            "evidence": evidence,
            "decision": "declined",
        },
        scope="consents",
    )
    assert declined.status_code == 201 and declined.json["status"] == "declined"

    def status() -> dict[str, Any]:
        found = filing_status(
            db_session,
            org_id=tenant.org_id,
            threshold=app.config["FILING_THRESHOLD"],
            holidays=frozenset(),
            extra_workdays=frozenset(),
            today=china_today(),
        )
        db_session.commit()
        return found

    assert people_with_active_consent(db_session, org_id=tenant.org_id) == 1
    first = status()
    assert (first["count"], first["status"], first["crossed_on"], first["deadline"]) == (1, "not_required", None, None)
    consented_people(tenant, 1)
    crossed = status()
    assert (crossed["count"], crossed["status"], crossed["crossed_on"]) == (2, "due", china_today())
    assert crossed["deadline"] == add_working_days(china_today(), 30)
    assert db_session.scalar(select(func.count()).where(FilingCount.org_id == tenant.org_id)) == 1


def test_r12_nobody_stored_means_no_filing_required(low_threshold: None, tenant: Tenant) -> None:
    tenant.purpose()
    tenant.subject()
    filing = filing_of(tenant)
    assert filing["status"] == "not_required"
    assert (filing["count"], filing["threshold"], filing["crossed_on"], filing["deadline"]) == (0, 3, None, None)
    assert filing["last_filing"] is None and filing["due_filing"] is None


def test_r12_crossing_makes_filing_due_within_30_working_days(
    low_threshold: None, app: Flask, tenant: Tenant, db_session: Session, runner: Any
) -> None:
    today = china_today()
    weekdays = [today + timedelta(days=n) for n in range(3, 30) if (today + timedelta(days=n)).weekday() < 5]
    holidays = frozenset(weekdays[:2])
    app.config["FILING_HOLIDAYS"] = ",".join(day.isoformat() for day in sorted(holidays))
    tenant.purpose()
    consented_people(tenant, 2)
    assert filing_of(tenant)["status"] == "not_required"
    consented_people(tenant, 1)
    filing = filing_of(tenant)
    assert (filing["status"], filing["count"], filing["due_filing"]) == ("due", 3, "initial")
    assert filing["crossed_on"] == today.isoformat()
    deadline = date.fromisoformat(filing["deadline"])
    assert deadline == add_working_days(today, 30, holidays=holidays)
    assert deadline > add_working_days(today, 30)  # the two holidays pushed it back
    assert deadline.weekday() < 5 and deadline not in holidays
    # The CLI and the page show it too.
    printed = json.loads(runner.invoke(args=["report", "--org", tenant.org_id]).output)
    assert printed["filing"]["status"] == "due" and printed["filing"]["deadline"] == deadline.isoformat()
    page = tenant.get("/v1/reports/compliance.html").get_data(as_text=True)
    assert 'id="filing-status" data-status="due"' in page and deadline.isoformat() in page
    # A crossing on Friday 25 September 2026, with the National Day holidays and a make-up Saturday.
    move_counts(db_session, tenant.org_id, to=date(2026, 9, 25))
    app.config["FILING_HOLIDAYS"] = "2026-10-01,2026-10-02,2026-10-05,2026-10-06,2026-10-07"
    app.config["FILING_EXTRA_WORKDAYS"] = "2026-10-10"
    filing = filing_of(tenant)
    assert (filing["crossed_on"], filing["deadline"]) == ("2026-09-25", "2026-11-12")


def test_r12_revocations_bring_the_count_back_below(low_threshold: None, tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    consents = consented_people(tenant, 3)
    assert filing_of(tenant)["status"] == "due"
    move_counts(db_session, tenant.org_id, back=3)  # crossed three days ago
    assert filing_of(tenant)["crossed_on"] == (china_today() - timedelta(days=3)).isoformat()
    assert tenant.post(f"/v1/consents/{consents[0]}/revoke", scope="consents").status_code == 200
    filing = filing_of(tenant)
    assert (filing["status"], filing["count"], filing["crossed_on"], filing["deadline"]) == (
        "not_required",
        2,
        None,
        None,
    )
    # A day's count is its last one: back above the same day, the earlier crossing stands.
    again = consented_people(tenant, 1)
    assert filing_of(tenant)["crossed_on"] == (china_today() - timedelta(days=3)).isoformat()
    # Below at the close of yesterday, above today: the crossing date is today's.
    assert tenant.post(f"/v1/consents/{again[0]}/revoke", scope="consents").status_code == 200
    assert filing_of(tenant)["status"] == "not_required"
    today = db_session.get(FilingCount, (tenant.org_id, china_today()))
    assert today is not None and today.people == 2
    today.day = china_today() - timedelta(days=1)
    db_session.commit()
    consented_people(tenant, 1)
    filing = filing_of(tenant)
    assert (filing["status"], filing["crossed_on"]) == ("due", china_today().isoformat())


def test_r12_past_the_deadline_the_filing_is_overdue(low_threshold: None, tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    consented_people(tenant, 3)
    assert filing_of(tenant)["status"] == "due"
    move_counts(db_session, tenant.org_id, back=60)
    filing = filing_of(tenant)
    crossed = china_today() - timedelta(days=60)
    assert (filing["status"], filing["crossed_on"]) == ("overdue", crossed.isoformat())
    assert filing["deadline"] == add_working_days(crossed, 30).isoformat()


def test_r12_recording_the_filing_makes_it_filed(low_threshold: None, tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    consented_people(tenant, 3)
    assert filing_of(tenant)["status"] == "due"
    move_counts(db_session, tenant.org_id, back=60)
    assert filing_of(tenant)["status"] == "overdue"
    recorded = tenant.post("/v1/filings", FILING)
    assert recorded.status_code == 201, recorded.json
    assert recorded.json["kind"] == "initial" and recorded.json["purposes"] == ["door_access"]
    assert recorded.json["filing_number"] == "沪网信备-0001"
    filing = filing_of(tenant)
    assert (filing["status"], filing["deadline"], filing["due_filing"]) == ("filed", None, None)
    assert filing["last_filing"]["filing_number"] == "沪网信备-0001"
    events = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "filing.recorded"]
    assert len(events) == 1 and events[0]["object_id"] == recorded.json["id"]
    assert events[0]["data"]["kind"] == "initial"
    # The first filing is recorded once; later ones are change filings.
    again = tenant.post("/v1/filings", FILING)
    assert (again.status_code, again.json["code"]) == (409, "already_filed")


def test_r12_material_change_to_a_filed_purpose_makes_a_change_filing_due(low_threshold: None, tenant: Tenant) -> None:
    tenant.purpose("door_access")
    consented_people(tenant, 3)
    assert tenant.post("/v1/filings", FILING).status_code == 201
    assert tenant.post("/v1/purposes/door_access/notices", {"texts": {"zh-CN": "措辞"}, "material": False})
    assert filing_of(tenant)["status"] == "filed"  # not material: nothing to file
    tenant.purpose("canteen_payment", category="payment")  # created after the filing: not a filed purpose
    changed = tenant.post("/v1/purposes/canteen_payment/notices", {"texts": {"zh-CN": "新的"}, "material": True})
    assert changed.status_code == 201, changed.json
    assert filing_of(tenant)["status"] == "filed"
    changed = tenant.post("/v1/purposes/door_access/notices", {"texts": {"zh-CN": "改为云端比对"}, "material": True})
    assert changed.status_code == 201, changed.json
    filing = filing_of(tenant)
    today = china_today()
    assert (filing["status"], filing["due_filing"], filing["changed_on"]) == ("due", "change", today.isoformat())
    assert filing["changed_purposes"] == ["door_access"]
    assert filing["deadline"] == add_working_days(today, 30).isoformat()
    change = tenant.post("/v1/filings", {**FILING, "kind": "change", "filing_number": "沪网信备-0001-变更1"})
    assert change.status_code == 201, change.json
    assert change.json["purposes"] == ["canteen_payment", "door_access"]
    filing = filing_of(tenant)
    assert (filing["status"], filing["last_filing"]["kind"]) == ("filed", "change")
    # Now canteen_payment is filed too: its next material change calls for a change filing.
    tenant.post("/v1/purposes/canteen_payment/notices", {"texts": {"zh-CN": "再改"}, "material": True})
    assert filing_of(tenant)["changed_purposes"] == ["canteen_payment"]


@pytest.mark.parametrize(
    "bad",
    [
        {"filed_on": "tomorrow"},  # computed when the test runs: collection may be on the day before
        {"authority": "   "},
        {"authority": ""},
        {"filing_number": " \t"},
        {"filing_number": None},
        {"filed_on": "not a date"},
        {"kind": "deregistration"},
        {"face_image": "base64..."},
    ],
)
def test_r12_bad_filings_are_refused_and_nothing_is_stored(
    tenant: Tenant, db_session: Session, bad: dict[str, Any]
) -> None:
    if bad.get("filed_on") == "tomorrow":
        bad = {"filed_on": (china_today() + timedelta(days=1)).isoformat()}
    response = tenant.post("/v1/filings", {**FILING, "filed_on": china_today().isoformat(), **bad})
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    missing = tenant.post("/v1/filings", {k: v for k, v in FILING.items() if k != "authority"})
    assert missing.status_code == 422
    early_change = tenant.post("/v1/filings", {**FILING, "kind": "change"})
    assert (early_change.status_code, early_change.json["code"]) == (409, "not_filed")
    assert tenant.post("/v1/filings", FILING, scope="consents").status_code == 403
    assert db_session.scalar(select(func.count()).select_from(Filing)) == 0
    assert db_session.scalar(select(func.count()).where(AuditEvent.action == "filing.recorded")) == 0
    db_session.commit()


def test_r12_another_tenant_sees_its_own_filing_status_only(
    low_threshold: None, tenant: Tenant, other_tenant: Tenant
) -> None:
    tenant.purpose()
    consented_people(tenant, 3)
    assert tenant.post("/v1/filings", FILING).status_code == 201
    assert filing_of(tenant)["status"] == "filed"
    other = filing_of(other_tenant)
    assert (other["status"], other["count"], other["last_filing"]) == ("not_required", 0, None)
    materials = other_tenant.get("/v1/filings/materials").json
    assert materials["handler"]["name"] == "Other Corp"
    assert materials["purposes"] == [] and materials["filings"] == [] and materials["count"]["people"] == 0
    # The other tenant's first filing is its own.
    assert other_tenant.post("/v1/filings", FILING).status_code == 201


def test_r12_materials_pack_holds_what_is_filed(low_threshold: None, tenant: Tenant) -> None:
    contact = {
        "pipo": {"name": "王丽", "contact": "pipo@sunrise.example"},
        "complaint_channel": "致电 010-6000 5678",
    }
    assert tenant.client.patch("/v1/organization", json=contact, headers=tenant.headers("admin")).status_code == 200
    tenant.purpose("door_access")
    consented_people(tenant, 2)
    assert tenant.post("/v1/devices", {"name": "Gate", "location_type": "school"}).status_code == 201
    tenant.post("/v1/filings", FILING)
    response = tenant.get("/v1/filings/materials")
    assert response.status_code == 200, response.json
    pack = response.json
    assert pack["handler"] == {
        "name": "Sunrise School",
        "contact": "privacy@sunrise.example",
        "pipo": {"name": "王丽", "contact": "pipo@sunrise.example"},
        "complaint_channel": "致电 010-6000 5678",
    }
    assert pack["count"] == {"people": 2, "threshold": 3}
    [purpose] = pack["purposes"]
    assert purpose["code"] == "door_access" and purpose["capture"] == "personal_device"
    assert purpose["processing_method"]["zh-CN"].startswith("闸机摄像头")
    assert [d["location_type"] for d in pack["devices"]] == ["school"]
    [assessment] = pack["assessments"]
    assert assessment["purposes"] == ["door_access"] and assessment["current"] is True
    assert set(assessment) >= {"lawfulness_necessity", "rights_impact", "security_risks", "safeguards", "conclusion"}
    assert assessment["safeguards"].startswith("On-device templates")
    assert pack["safeguards"] == [
        {
            "assessment_id": assessment["id"],
            "purposes": ["door_access"],
            "text": assessment["safeguards"],
        }
    ]
    assert [f["filing_number"] for f in pack["filings"]] == ["沪网信备-0001"]
    assert tenant.get("/v1/filings/materials", scope="verify").status_code == 403


def test_r12_reports_at_once_record_one_count_a_day(
    low_threshold: None, app: Flask, tenant: Tenant, race: Race
) -> None:
    tenant.purpose()
    consented_people(tenant, 3)

    def report() -> int:
        local = app.test_client()
        return int(local.get("/v1/reports/compliance", headers=tenant.headers("admin")).status_code)

    def sweep() -> int:
        return int(app.test_cli_runner().invoke(args=["sweep"]).exit_code)

    for results in race(report, report, sweep, report, repeat=3):
        assert results == [200, 200, 0, 200], results
    with app.app_context():
        rows = db.session().scalars(select(FilingCount).where(FilingCount.org_id == tenant.org_id))
        assert [(row.day, row.people) for row in rows] == [(china_today(), 3)]
