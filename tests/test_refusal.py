"""Refusal is respected (Measures Art. 12, PIPL 16; R6 of REGULATION.md).

An adult's refusal is recorded like a consent, without penalty; after a guardian refuses a purpose for a
child, the organization may not ask again for that child and purpose for ``REASK_AFTER_DAYS`` days. The
tests try to ask again anyway: at once, with the purpose hidden among others, racing the refusal, and
check that the rule stops exactly there (another purpose, another child, another organization, after the
period).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service import create_app, db
from service.config import ConfigError, from_environment
from service.domain import guardian as flow
from service.domain.consents import consent_token, decline_consent, grant_consent
from service.errors import Conflict
from service.keys.data_key import protector
from service.keys.signing import key_set
from service.models import AuditEvent, Consent, GuardianLink, GuardianRequest, SmsMessage, Subject, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Race, Tenant

EVIDENCE = {"method": "button", "channel": "kiosk", "locale": "en"}
PHONE = "+8613812345678"


def _refuse(tenant: Tenant, subject_id: str, purpose: str = "door_access", **extra: Any) -> Any:
    headers = extra.pop("headers", None)
    body = {
        "subject_id": subject_id,
        "purpose": purpose,
        "notice_version": 1,
        "evidence": EVIDENCE,
        "decision": "declined",
        **extra,
    }
    return tenant.post("/v1/consents", body, scope="consents", headers=headers)


# --- An adult's refusal is recordable --------------------------------------------------------------------


def test_r6_an_adults_refusal_is_recorded_domain(tenant: Tenant, db_session: Session, app: Flask) -> None:
    tenant.purpose("door_access")
    person = tenant.subject()["id"]
    common = {"org_id": tenant.org_id, "actor": "key:test", "subject_id": person, "purpose_code": "door_access"}
    refusal = decline_consent(db_session, notice_version=1, evidence=EVIDENCE, **common)
    assert refusal.status == "declined" and refusal.end_reason == "person_declined"
    assert refusal.granted_at is None and refusal.expires_at is None and refusal.ended_at is not None
    assert refusal.evidence["method"] == "button" and refusal.evidence["decision"] == "declined"
    assert refusal.evidence["notice_digest"] == refusal.notice_digest
    token = consent_token(refusal, keys=key_set(), issuer="x", public_url=app.config["PUBLIC_URL"])
    assert token is None
    db_session.commit()
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.object_id == refusal.id)).one()
    assert event.action == "consent.declined"
    assert {k: event.data[k] for k in ("method", "channel", "notice_version", "reason", "guardian")} == {
        "method": "button",
        "channel": "kiosk",
        "notice_version": 1,
        "reason": "person_declined",
        "guardian": False,
    }
    # Without penalty: the person may still consent later, and refuse again after withdrawing.
    granted = grant_consent(db_session, notice_version=1, evidence=EVIDENCE, **common)
    assert granted.status == "active"
    # A refusal while a consent is live would hide it from verification (the newest consent decides).
    with pytest.raises(Conflict) as live:
        decline_consent(db_session, notice_version=1, evidence=EVIDENCE, **common)
    assert live.value.code == "consent_exists"
    db_session.rollback()


@pytest.mark.committed
def test_r6_an_adults_refusal_is_recorded_http(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    tenant.purpose("cloud_match", transmits_face_data=True, category="payment")
    tenant.purpose("unassessed", assess=False)
    person = tenant.subject()["id"]
    refused = _refuse(tenant, person)
    assert refused.status_code == 201, refused.json
    body = refused.json
    assert (body["status"], body["token"], body["end_reason"]) == ("declined", None, "person_declined")
    assert body["evidence"]["method"] == "button" and body["evidence"]["decision"] == "declined"
    assert body["granted_at"] is None and body["ended_at"] is not None
    denied = tenant.verify("door_access", subject_id=person).json
    assert (denied["decision"], denied["reason"]) == ("deny", "declined")
    assert tenant.get(f"/v1/consents/{body['id']}", scope="consents").json["status"] == "declined"
    assert tenant.get(f"/v1/consents/{body['id']}/receipt", scope="consents").status_code == 200
    feed = tenant.get("/v1/consent-events?after=0", scope="verify").json
    assert any(e["type"] == "declined" and e["consent_id"] == body["id"] for e in feed["events"]), feed
    # Refusing asks less than consenting: no transmission consent, no current assessment.
    assert _refuse(tenant, person, "cloud_match").status_code == 201
    assert _refuse(tenant, person, "unassessed").status_code == 201
    # Refusing twice records twice; consenting afterwards works; a refusal over a live consent does not.
    assert _refuse(tenant, person).status_code == 201
    granted = tenant.consent(person)
    assert granted.status_code == 201 and granted.json["status"] == "active"
    over = _refuse(tenant, person)
    assert (over.status_code, over.json["code"]) == (409, "consent_exists")
    assert tenant.verify("door_access", subject_id=person).json["decision"] == "allow"
    # Only the two documented values; the default is a grant.
    for wrong in ("refused", "DECLINED", "", None, True):
        odd = _refuse(tenant, person, decision=wrong)
        assert (odd.status_code, odd.json["code"]) == (422, "validation_error"), wrong


def test_r6_an_adults_refusal_keeps_the_other_rules(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    person = tenant.subject()["id"]
    stale = _refuse(tenant, person, notice_version=7)
    assert (stale.status_code, stale.json["code"]) == (409, "stale_notice")
    unknown = _refuse(tenant, person, "no_such_purpose")
    assert unknown.status_code == 404
    # Idempotent like a grant: a replay answers the same refusal, another body with the key is refused.
    once = _refuse(tenant, person, headers={"Idempotency-Key": "refuse-1"})
    again = _refuse(tenant, person, headers={"Idempotency-Key": "refuse-1"})
    assert once.status_code == 201 and again.json["id"] == once.json["id"]
    other = tenant.consent(person, headers={"Idempotency-Key": "refuse-1"})
    assert (other.status_code, other.json["code"]) == (422, "idempotency_key_reused")


def test_r6_a_minors_refusal_needs_a_guardian(tenant: Tenant) -> None:
    """A child under 14 neither consents nor refuses alone (PIPL 31): the guardian declines for them."""
    tenant.purpose("door_access")
    child = tenant.subject(age_years=9)["id"]
    refused = _refuse(tenant, child)
    assert (refused.status_code, refused.json["code"]) == (409, "guardian_required")
    erased = tenant.subject()["id"]
    assert tenant.delete(f"/v1/subjects/{erased}").status_code == 204
    assert _refuse(tenant, erased).json["code"] == "subject_erased"


# --- No asking again after a guardian's refusal -------------------------------------------------------------


def _decision_link(db_session: Session, request_id: str) -> GuardianLink:
    return db_session.scalars(
        select(GuardianLink).where(GuardianLink.request_id == request_id, GuardianLink.kind == "decision")
    ).one()


def _declined_at(db_session: Session, subject_id: str, purpose_code: str) -> datetime:
    consent = db_session.scalars(
        select(Consent).where(Consent.subject_id == subject_id, Consent.status == "declined")
    ).all()
    [match] = [c for c in consent if c.purpose.code == purpose_code]
    assert match.ended_at is not None
    return match.ended_at


def _move_refusals_back(db_session: Session, subject_id: str, by: timedelta) -> None:
    """Time passes: the child's refusals happened ``by`` earlier (rows updated; nobody sleeps)."""
    for consent in db_session.scalars(select(Consent).where(Consent.subject_id == subject_id)):
        if consent.ended_at is not None:
            db_session.execute(update(Consent).where(Consent.id == consent.id).values(ended_at=consent.ended_at - by))
    db_session.commit()


def _counts(db_session: Session) -> tuple[int, int, int]:
    counts = (
        db_session.scalar(select(func.count()).select_from(GuardianRequest)) or 0,
        db_session.scalar(select(func.count()).select_from(Consent)) or 0,
        db_session.scalar(select(func.count()).select_from(SmsMessage)) or 0,
    )
    db_session.rollback()
    return counts


def test_r6_no_reasking_after_a_guardian_refusal_domain(
    tenant: Tenant, guardian: GuardianKit, db_session: Session, app: Flask
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"]).json
    flow.decide(
        db_session,
        _decision_link(db_session, created["id"]),
        approve=False,
        ticked=[],
        attested=False,
        code=None,
        protector=protector(),
    )
    db_session.commit()
    declined_at = _declined_at(db_session, child["id"], "canteen_payment")
    ask = {
        "org_id": tenant.org_id,
        "actor": "key:test",
        "messenger": flow.Messenger.of(app),
        "subject_id": child["id"],
        "phone": "+8613812345600",
        "allowed_regions": ("CN",),
        "relationship": "parent",
        "delivery": "sms",
        "locale": "zh-CN",
        "hours": 72,
        "reask_after_days": 30,
    }
    before = _counts(db_session)
    with pytest.raises(flow.RecentlyDeclined) as refused:
        flow.create_guardian_request(db_session, purposes=["canteen_payment"], **ask)
    assert refused.value.code == "recently_declined" and refused.value.status == 409
    assert refused.value.details == {
        "purposes": ["canteen_payment"],
        "ask_again_after": {"canteen_payment": (declined_at + timedelta(days=30)).isoformat()},
    }
    db_session.rollback()
    assert _counts(db_session) == before, "a refused request creates nothing and reserves no SMS"
    # With the rule switched off (0 days), asking again is possible.
    request, _, _ = flow.create_guardian_request(
        db_session, purposes=["canteen_payment"], **{**ask, "reask_after_days": 0, "delivery": "qr"}
    )
    assert request.status == "pending"
    db_session.rollback()
    # The boundary: refused 29 days ago still blocks; 30 days and a second ago no longer does.
    _move_refusals_back(db_session, child["id"], timedelta(days=29))
    person = db_session.get(Subject, child["id"])
    assert person is not None
    purposes = [c.purpose for c in db_session.scalars(select(Consent).where(Consent.subject_id == child["id"]))]
    with pytest.raises(flow.RecentlyDeclined):
        flow.refuse_reasking(db_session, subject=person, purposes=purposes, days=30, now=utcnow())
    _move_refusals_back(db_session, child["id"], timedelta(days=1, seconds=1))
    flow.refuse_reasking(db_session, subject=person, purposes=purposes, days=30, now=utcnow())
    db_session.rollback()


def _decline_on_the_page(guardian: GuardianKit, url: str, **form: Any) -> None:
    answer = guardian.browser(url).submit(**form)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_r6_no_reasking_after_a_guardian_refusal_http(
    tenant: Tenant, make_tenant: Any, guardian: GuardianKit, outbox: Any, db_session: Session
) -> None:
    child = guardian.setup_child(tenant)
    tenant.purpose("library", name={"zh-CN": "图书借阅", "en": "Library checkout"})
    tenant.guardian_request(child["id"], ["door_access", "canteen_payment"])
    _decline_on_the_page(guardian, guardian.url_from(outbox()[0]), action="decline")
    declined_at = _declined_at(db_session, child["id"], "door_access")
    db_session.rollback()
    sent, before = len(outbox()), _counts(db_session)

    for purposes in (["door_access"], ["canteen_payment", "door_access"], ["library", "door_access"]):
        again = tenant.guardian_request(child["id"], purposes)
        assert (again.status_code, again.json["code"]) == (409, "recently_declined"), again.json
        named = sorted(set(purposes) - {"library"})
        assert again.json["errors"]["purposes"] == named
        assert set(again.json["errors"]["ask_again_after"]) == set(named)
        when = datetime.fromisoformat(again.json["errors"]["ask_again_after"]["door_access"])
        assert when == declined_at + timedelta(days=30)
    assert len(outbox()) == sent and _counts(db_session) == before, "nothing created, no SMS sent"

    # Not blocked: another purpose, another child of the same organization, the same child elsewhere.
    assert tenant.guardian_request(child["id"], ["library"], phone="+8613812345601").status_code == 202
    sibling = tenant.subject(age_years=7)["id"]
    assert tenant.guardian_request(sibling, ["door_access"], phone="+8613812345602").status_code == 202
    other = make_tenant("Other Corp")
    guardian.setup_child(other)
    same_child_elsewhere = other.subject(child["external_ref"], age_years=9)["id"]
    assert other.guardian_request(same_child_elsewhere, ["door_access"]).status_code == 202

    # Thirty days later the organization may ask again.
    _move_refusals_back(db_session, child["id"], timedelta(days=30, seconds=1))
    later = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"], phone="+8613812345603")
    assert later.status_code == 202, later.json


def test_r6_a_purpose_left_unticked_counts_as_refused(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, db_session: Session
) -> None:
    """Approving some purposes and leaving others unticked refuses those (the page says so)."""
    child = guardian.setup_child(tenant)
    tenant.guardian_request(child["id"], ["door_access", "canteen_payment"])
    _decline_on_the_page(
        guardian, guardian.url_from(outbox()[0]), action="approve", attest_guardian="yes", purpose="door_access"
    )
    reasons = {c.purpose.code: c.end_reason for c in db_session.scalars(select(Consent))}
    assert reasons == {"door_access": None, "canteen_payment": "not_selected"}
    db_session.rollback()
    again = tenant.guardian_request(child["id"], ["canteen_payment"], phone="+8613812345604")
    assert (again.status_code, again.json["code"]) == (409, "recently_declined")
    assert again.json["errors"]["purposes"] == ["canteen_payment"]


def test_r6_an_unanswered_request_is_no_refusal(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, db_session: Session
) -> None:
    """An expired request, or an adult's own refusal later given as a child, does not block asking."""
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    db_session.execute(
        update(GuardianRequest)
        .where(GuardianRequest.id == created["id"])
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    db_session.commit()
    assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["status"] == "expired"
    assert tenant.guardian_request(child["id"], ["door_access"], phone="+8613812345605").status_code == 202


@pytest.fixture()
def reask_days(app_config: dict[str, Any]) -> int:
    app_config["REASK_AFTER_DAYS"] = 3
    return 3


def test_r6_reask_after_days_is_a_setting(
    reask_days: int, tenant: Tenant, guardian: GuardianKit, outbox: Any, db_session: Session
) -> None:
    child = guardian.setup_child(tenant)
    tenant.guardian_request(child["id"], ["door_access"])
    _decline_on_the_page(guardian, guardian.url_from(outbox()[0]), action="decline")
    declined_at = _declined_at(db_session, child["id"], "door_access")
    db_session.rollback()
    again = tenant.guardian_request(child["id"], ["door_access"])
    assert datetime.fromisoformat(again.json["errors"]["ask_again_after"]["door_access"]) == declined_at + timedelta(
        days=reask_days
    )
    _move_refusals_back(db_session, child["id"], timedelta(days=reask_days, seconds=1))
    assert tenant.guardian_request(child["id"], ["door_access"], phone="+8613812345606").status_code == 202
    assert from_environment({})["REASK_AFTER_DAYS"] == 30
    assert from_environment({"CONSENT_GATE_REASK_AFTER_DAYS": "7"})["REASK_AFTER_DAYS"] == 7
    with pytest.raises(ConfigError):
        from_environment({"CONSENT_GATE_REASK_AFTER_DAYS": "a month"})


def test_r6_reask_after_days_must_be_sane(tmp_path: Any) -> None:
    for wrong in (-1, 100000):
        with pytest.raises(ConfigError, match="REASK_AFTER_DAYS"):
            create_app({"ENV": "test", "INSTANCE_PATH": str(tmp_path), "REASK_AFTER_DAYS": wrong})


def test_r6_asking_again_cannot_race_past_a_refusal(
    tenant: Tenant, app: Flask, guardian: GuardianKit, outbox: Any, race: Race
) -> None:
    """The guardian declines while the organization asks again, at the same instant, repeatedly.

    Both take the child's row lock first, so the new request either comes before the refusal (and finds
    the pending consent: 409 ``consent_exists``) or after it (409 ``recently_declined``): never a new
    pending request for a refused purpose. Then two new requests at once after a refusal: both refused.
    """
    tenant.purpose("door_access")
    for round_ in range(4):
        child = tenant.subject(age_years=8)["id"]
        phone = f"+86138123457{round_:02d}"
        assert tenant.guardian_request(child, ["door_access"], phone=phone).status_code == 202
        path = guardian.link_path(guardian.url_from(outbox()[-1]))
        browser = app.test_client()
        token = guardian.browser(path, client=browser).csrf()

        def decline(browser: Any = browser, token: str = token, path: str = path) -> int:
            return int(browser.post(path, data={"csrf_token": token, "action": "decline"}).status_code)

        def ask_again(child: str = child, round_: int = round_) -> Any:
            body = {
                "subject_id": child,
                "purposes": ["door_access"],
                "delivery": "sms",
                "locale": "zh-CN",
                "guardian": {"phone": f"+86138123458{round_:02d}", "relationship": "parent"},
            }
            # A test client of its own per call: the threads share nothing but the database.
            return app.test_client().post("/v1/guardian-requests", json=body, headers=tenant.headers("consents"))

        [[declined, asked]] = race(decline, ask_again)
        assert declined == 303, declined  # decided: sent on to the receipt
        assert not isinstance(asked, BaseException), asked
        assert asked.status_code == 409 and asked.json["code"] in {"consent_exists", "recently_declined"}, asked.json
        [twins] = race(ask_again, ask_again)
        assert [getattr(a, "status_code", a) for a in twins] == [409, 409], twins
        assert {a.json["code"] for a in twins} == {"recently_declined"}  # type: ignore[attr-defined]
    with app.app_context():
        session = db.session()
        statuses = session.scalars(select(Consent.status)).all()
        assert sorted(statuses) == ["declined"] * 4, statuses
