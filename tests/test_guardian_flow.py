"""The guardian flow for children under 14 (R4): requests, links, codes, decisions, withdrawal."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from service import db
from service.domain.subjects import add_years, guardian_age_moment
from service.models import AuditEvent, Consent, GuardianRequest, SmsMessage, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Race, Tenant

PHONE = "+8613812345678"


def start(tenant: Tenant, guardian: GuardianKit, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    child = guardian.setup_child(tenant)
    response = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"], **kwargs)
    assert response.status_code == 202, response.json
    return child, response.json


@pytest.mark.committed
def test_r4_request_opens_one_pending_consent_per_purpose(tenant: Tenant, outbox: Any, guardian: GuardianKit) -> None:
    child, created = start(tenant, guardian)
    assert created["status"] == "pending"
    assert [(c["purpose"], c["status"]) for c in created["consents"]] == [
        ("door_access", "pending_guardian"),
        ("canteen_payment", "pending_guardian"),
    ]
    assert created["guardian"] == {"phone_masked": "+86 138****5678", "relationship": "parent"}
    # Only the guardian decides: the link of an SMS request is in the SMS, in no answer and no QR code.
    assert not {"approve_url", "qr_png_url", "qr_svg_url"} & set(created)
    assert created["poll_interval"] == 5
    assert created["delivery_status"] == "queued"  # sent after the commit, by the dispatcher
    denied = tenant.verify("door_access", subject_id=child["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "pending_guardian")
    messages = outbox()
    assert len(messages) == 1 and messages[0]["to"] == PHONE
    assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["delivery_status"] == "sent"
    body = messages[0]["body"]
    assert "Sunrise School" in body and "http://consent-gate.test/g/" in body and "（北京时间）前打开" in body
    assert "确认" not in body  # the message does not presume the answer
    assert child["external_ref"] not in body


def test_r4_request_expiry_is_72_hours_by_default(tenant: Tenant, guardian: GuardianKit) -> None:
    from datetime import datetime

    _, created = start(tenant, guardian)
    created_at = datetime.fromisoformat(created["created_at"])
    assert datetime.fromisoformat(created["expires_at"]) - created_at == pytest.approx(
        timedelta(hours=72), abs=timedelta(seconds=5)
    )


def test_adults_and_bad_input_are_refused(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    adult = tenant.subject(age_years=30)
    refused = tenant.guardian_request(adult["id"], ["door_access"])
    assert refused.status_code == 409 and refused.json["code"] == "not_a_minor"
    child = tenant.subject(age_years=8)
    for phone in ("13812345678", "+86138", "+861381234567a", "+1 415 555 2671"):
        bad = tenant.guardian_request(child["id"], ["door_access"], phone=phone)
        assert bad.status_code == 422, phone
    assert tenant.guardian_request(child["id"], ["door_access"], phone="13812345678").json["code"] == "invalid_phone"
    unknown = tenant.guardian_request(child["id"], ["nope"])
    assert unknown.status_code == 422 and unknown.json["code"] == "unknown_purpose"
    tenant.purpose("unassessed", assess=False)
    unassessed = tenant.guardian_request(child["id"], ["unassessed"])
    assert unassessed.status_code == 409 and unassessed.json["code"] == "assessment_required"
    wrong_relationship = tenant.guardian_request(child["id"], ["door_access"], relationship="neighbour")
    assert wrong_relationship.status_code == 422
    assert tenant.get("/v1/audit/events").json["events"][-1]["action"] != "guardian_request.created"


def test_r14_phone_is_encrypted_at_rest(tenant: Tenant, app: Flask, guardian: GuardianKit) -> None:
    start(tenant, guardian)
    with app.app_context():
        session = db.session()
        row = session.scalars(select(GuardianRequest)).one()
        assert row.phone_ciphertext and PHONE not in row.phone_ciphertext
        assert row.phone_hash and PHONE not in row.phone_hash
        dump = " ".join(str(v) for v in session.execute(text("SELECT * FROM guardian_requests")).one())
        assert PHONE not in dump and "13812345678" not in dump
        for event in session.scalars(select(AuditEvent)):
            assert "13812345678" not in repr(event.data)


@pytest.mark.committed
def test_r4_sms_link_tick_one_of_two_then_approve(
    tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit
) -> None:
    child, created = start(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    page = parent.open()
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="purpose" value="door_access"' in html and "checked" not in html
    receipt = parent.submit(action="approve", attest_guardian="yes", purpose="door_access")
    assert receipt.status_code == 200
    assert 'data-purpose="door_access" data-status="active"' in receipt.get_data(as_text=True)
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "partially_approved"
    assert {c["purpose"]: c["status"] for c in polled["consents"]} == {
        "door_access": "active",
        "canteen_payment": "declined",
    }
    assert "approve_url" not in polled
    allowed = tenant.verify("door_access", subject_id=child["id"]).json
    assert allowed["decision"] == "allow"
    consent = tenant.get(f"/v1/consents/{allowed['consent_id']}", scope="consents").json
    import jwt

    assert jwt.decode(consent["token"], options={"verify_signature": False})["grd"] is True
    assert consent["evidence"]["relationship"] == "parent"
    assert consent["evidence"]["guardian_verification"] == "sms_link"
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["reason"] == "declined"
    # The withdrawal link arrives by SMS after the decision.
    assert len(outbox()) == 2 and "/g/" in outbox()[1]["body"]
    # The decision link cannot be used again.
    again = parent.open()
    assert again.status_code == 410


def test_r4_decline_declines_every_purpose(tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit) -> None:
    _, created = start(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    response = parent.submit(action="decline", purpose="door_access")
    assert response.status_code == 200
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "declined"
    assert {c["status"] for c in polled["consents"]} == {"declined"}
    assert len(outbox()) == 1  # no withdrawal link: there is nothing to withdraw


def test_approve_without_a_ticked_purpose_asks_again(
    tenant: Tenant, client: Any, guardian: GuardianKit, outbox: Any
) -> None:
    _, created = start(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    response = parent.submit(action="approve")
    assert response.status_code == 400
    assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["status"] == "pending"


def test_forms_need_the_csrf_token(tenant: Tenant, client: Any, guardian: GuardianKit, outbox: Any) -> None:
    _, created = start(tenant, guardian)
    path = guardian.link_path(guardian.url_from(outbox()[0]))
    client.get(path)
    forged = client.post(path, data={"action": "approve", "purpose": "door_access", "csrf_token": "0" * 64})
    assert forged.status_code == 403
    other = tenant.client.application.test_client()
    no_cookie = other.post(path, data={"action": "approve", "purpose": "door_access", "csrf_token": "x"})
    assert no_cookie.status_code == 403
    assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["status"] == "pending"


def test_wrong_and_expired_links(tenant: Tenant, client: Any, app: Flask, guardian: GuardianKit, outbox: Any) -> None:
    assert client.get("/g/not-a-real-link-token-at-all-xxxxx").status_code == 404
    assert client.get("/g/short").status_code == 404
    child, created = start(tenant, guardian)
    with app.app_context():
        session = db.session()
        row = session.get(GuardianRequest, created["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        for message in session.scalars(select(SmsMessage)):  # and its SMS long enough ago for another
            message.created_at = utcnow() - timedelta(minutes=2)
        session.commit()
    response = client.get(guardian.link_path(guardian.url_from(outbox()[0])))
    assert response.status_code == 410
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "expired"
    assert {c["status"] for c in polled["consents"]} == {"expired"}
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"]]
    assert "guardian_request.expired" in actions
    # The child can get a new request once the old one has expired.
    assert tenant.guardian_request(child["id"], ["door_access"]).status_code == 202


@pytest.mark.committed
def test_qr_delivery_needs_the_sms_code(tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit) -> None:
    child, created = start(tenant, guardian, delivery="qr")
    assert created["delivery_status"] == "not_required" and outbox() == []
    parent = guardian.browser(created["approve_url"])
    assert 'name="otp"' in parent.open().get_data(as_text=True)
    missing = parent.submit(action="approve", attest_guardian="yes", purpose="door_access", otp="")
    assert missing.status_code == 400
    sent = parent.submit(action="send_code", purpose="door_access")
    assert sent.status_code == 200
    code = guardian.code_from(outbox()[-1])
    assert outbox()[-1]["to"] == PHONE
    receipt = parent.submit(
        action="approve",
        attest_guardian="yes",
        purpose=["door_access", "canteen_payment"],
        transmit="canteen_payment",
        otp=code,
    )
    assert receipt.status_code == 200
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "approved"
    allowed = tenant.verify("canteen_payment", subject_id=child["id"]).json
    consent = tenant.get(f"/v1/consents/{allowed['consent_id']}", scope="consents").json
    assert consent["evidence"]["guardian_verification"] == "sms_code"
    assert consent["evidence"]["transmits_face_data"] is True


def test_five_wrong_codes_lock_the_request(tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit) -> None:
    _, created = start(tenant, guardian, delivery="qr")
    parent = guardian.browser(created["approve_url"])
    parent.submit(action="send_code")
    code = guardian.code_from(outbox()[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for attempt in range(4):
        response = parent.submit(action="approve", attest_guardian="yes", purpose="door_access", otp=wrong)
        assert response.status_code == 400, attempt
    locked = parent.submit(action="approve", attest_guardian="yes", purpose="door_access", otp=wrong)
    assert locked.status_code == 410
    # Even the right code no longer works.
    assert parent.open().status_code == 410
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "locked"
    assert {c["status"] for c in polled["consents"]} == {"expired"}
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"]]
    assert actions.count("code.failed") == 5 and "guardian_request.locked" in actions


def test_codes_are_rate_limited_per_phone(
    tenant: Tenant, outbox: Any, client: Any, app: Flask, guardian: GuardianKit
) -> None:
    _, created = start(tenant, guardian, delivery="qr")
    parent = guardian.browser(created["approve_url"])
    assert parent.submit(action="send_code").status_code == 200
    again = parent.submit(action="send_code")
    assert again.status_code == 429
    assert len(outbox()) == 1
    # Five in the last hour, each more than a minute apart: the sixth is refused.
    with app.app_context():
        session = db.session()
        rows = session.scalars(select(SmsMessage)).all()
        for index, row in enumerate(rows):
            row.created_at = utcnow() - timedelta(minutes=50 - index)
        for minutes in (40, 30, 20, 10):
            session.add(
                SmsMessage(
                    org_id=rows[0].org_id,
                    request_id=rows[0].request_id,
                    phone_hash=rows[0].phone_hash,
                    kind="code",
                    status="sent",
                    created_at=utcnow() - timedelta(minutes=minutes),
                )
            )
        session.commit()
    assert parent.submit(action="send_code").status_code == 429


def test_resend_is_rate_limited_and_reports_failures(
    tenant: Tenant, outbox: Any, app: Flask, guardian: GuardianKit
) -> None:
    _, created = start(tenant, guardian)
    path = f"/v1/guardian-requests/{created['id']}/resend"
    limited = tenant.post(path, scope="consents")
    assert limited.status_code == 429 and limited.json["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    with app.app_context():
        session = db.session()
        for row in session.scalars(select(SmsMessage)):
            row.created_at = utcnow() - timedelta(minutes=2)
        session.commit()
    resent = tenant.post(path, scope="consents")
    assert resent.status_code == 200 and resent.json["delivery_status"] == "queued"
    assert len(outbox()) == 2


@pytest.fixture()
def failing_outbox(app_config: dict[str, Any], tmp_path: Any) -> None:
    # A folder where the outbox file should be: every send fails like a provider that is down.
    (tmp_path / "blocked").mkdir()
    app_config["SMS_OUTBOX"] = str(tmp_path / "blocked")


def test_provider_failure_keeps_the_request(
    failing_outbox: None, tenant: Tenant, app: Flask, guardian: GuardianKit, drain: Any
) -> None:
    _, created = start(tenant, guardian)
    assert created["status"] == "pending"
    assert created["delivery_status"] == "queued"
    drain()  # every attempt fails (OUTBOX_MAX_ATTEMPTS): the message is dead
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["delivery_error"] == "sms_provider_unavailable"
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["delivery_status"] == "failed" and "approve_url" not in polled
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"]]
    assert "sms.failed" in actions


@pytest.mark.committed
def test_withdrawal_page_revokes_at_once(tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit) -> None:
    child, created = start(tenant, guardian)
    guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose=["door_access", "canteen_payment"], transmit="canteen_payment"
    )
    withdrawal = guardian.browser(guardian.url_from(outbox()[-1]))
    page = withdrawal.open().get_data(as_text=True)
    consent_ids = [c["id"] for c in created["consents"]]
    for consent_id in consent_ids:
        assert f'name="withdraw" value="{consent_id}"' in page
    # The first press asks to confirm and withdraws nothing (one tap never withdraws).
    asked = withdrawal.submit(withdraw=consent_ids[0])
    assert asked.status_code == 200 and f'name="confirm" value="{consent_ids[0]}"' in asked.get_data(as_text=True)
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"
    response = withdrawal.submit(confirm=consent_ids[0])
    assert response.status_code == 200
    denied = tenant.verify("door_access", subject_id=child["id"]).json
    assert (denied["decision"], denied["reason"]) == ("deny", "revoked")
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["decision"] == "allow"
    assert f'name="withdraw" value="{consent_ids[0]}"' not in response.get_data(as_text=True)
    # The link stays usable for the other consent, and withdrawing twice changes nothing.
    assert withdrawal.submit(confirm=consent_ids[0]).status_code == 200
    assert withdrawal.submit(withdraw=consent_ids[0]).status_code == 409  # nothing left to confirm
    assert withdrawal.submit(confirm=consent_ids[1]).status_code == 200
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["reason"] == "revoked"


def test_two_decisions_racing_produce_one_outcome(
    tenant: Tenant, app: Flask, guardian: GuardianKit, race: Race, outbox: Any
) -> None:
    _, created = start(tenant, guardian)
    path = guardian.link_path(guardian.url_from(outbox()[0]))
    browsers = [app.test_client() for _ in range(2)]
    tokens = [guardian.browser(path, client=b).csrf() for b in browsers]

    def decide(index: int) -> int:
        form = {"csrf_token": tokens[index], "action": "approve" if index == 0 else "decline", "purpose": "door_access"}
        form["attest_guardian"] = "yes"
        return int(browsers[index].post(path, data=form).status_code)

    [results] = race(lambda: decide(0), lambda: decide(1))
    assert sorted(results, key=str) == [303, 410], results  # the winner is sent to its receipt
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] in {"partially_approved", "declined"}
    with app.app_context():
        events = db.session().scalars(select(AuditEvent.action).where(AuditEvent.object_id == created["id"])).all()
    assert sum(a in {"guardian_request.partially_approved", "guardian_request.declined"} for a in events) == 1


@pytest.mark.committed
def test_r4_turning_14_ends_guardian_consent(
    tenant: Tenant, app: Flask, client: Any, runner: Any, guardian: GuardianKit, outbox: Any
) -> None:
    """Decision: a guardian's consent ends when the child reaches GUARDIAN_AGE; the person then decides."""
    tenant.purpose("door_access", retention_days=3650)
    birth = add_years(date.today(), -14) + timedelta(days=10)
    child = tenant.post(
        "/v1/subjects", {"external_ref": "almost-14", "birth_date": birth.isoformat()}, scope="consents"
    ).json
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    consent = tenant.get(f"/v1/consents/{created['consents'][0]['id']}", scope="consents").json
    from datetime import datetime

    assert datetime.fromisoformat(consent["expires_at"]) == guardian_age_moment(add_years(birth, 14))
    # The birthday comes: verification denies, the sweep records why, and the teenager consents alone.
    with app.app_context():
        session = db.session()
        row = session.get(Consent, consent["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        subject = row.subject
        subject.birth_date = add_years(date.today(), -14)
        subject.guardian_required_until = date.today()
        session.commit()
    assert tenant.verify("door_access", subject_id=child["id"]).json["reason"] == "expired"
    assert "expired 1 consents" in runner.invoke(args=["sweep"]).output
    assert tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json["end_reason"] == "guardian_age_reached"
    assert tenant.consent(child["id"]).status_code == 201


def test_guardian_steps_are_audited_with_the_phone_masked(
    tenant: Tenant, outbox: Any, client: Any, guardian: GuardianKit
) -> None:
    _, created = start(tenant, guardian)
    guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    events = [e for e in tenant.get("/v1/audit/events").json["events"] if e["object_id"] == created["id"]]
    actions = [e["action"] for e in events]
    assert actions[:2] == ["guardian_request.created", "sms.sent"]
    assert "guardian_request.partially_approved" in actions
    for event in events:
        assert event["data"]["phone"] == "+86 ***********"
        assert "guardian_ref" not in event["data"]  # no lookup of the phone in the trail erasure cannot touch


def test_other_organizations_cannot_see_guardian_requests(
    tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit
) -> None:
    _, created = start(tenant, guardian)
    for path in ("", "/qr.png", "/qr.svg"):
        assert other_tenant.get(f"/v1/guardian-requests/{created['id']}{path}", scope="consents").status_code == 404
    assert other_tenant.post(f"/v1/guardian-requests/{created['id']}/resend", scope="consents").status_code == 404
