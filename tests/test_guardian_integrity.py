"""Only the guardian decides (R4), SMS cannot be abused, erasure leaves nothing behind (R13).

Each promise is tried as an attacker would: the organization with its own key, another organization,
numbers that cost money, a reused or late link.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from service import db
from service.domain import guardian as flow
from service.domain.guardian.codes import OTP_MAX_FAILURES
from service.keys.data_key import protector
from service.models import AuditEvent, Consent, GuardianLink, GuardianRequest, SmsMessage, Subject, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

PHONE = "+8613812345678"


def _request(tenant: Tenant, guardian: GuardianKit, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    child = guardian.setup_child(tenant)
    response = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"], **kwargs)
    assert response.status_code == 202, response.json
    return child, response.json


def _status(tenant: Tenant, request_id: str) -> str:
    return str(tenant.get(f"/v1/guardian-requests/{request_id}", scope="consents").json["status"])


def test_r4_an_sms_request_carries_its_link_in_the_sms_only(tenant: Tenant, outbox: Any, guardian: GuardianKit) -> None:
    _, created = _request(tenant, guardian)
    for answer in (created, tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json):
        assert not {"approve_url", "qr_png_url", "qr_svg_url"} & set(answer)
        assert "/g/" not in repr(answer)
    for kind in ("png", "svg"):
        refused = tenant.get(f"/v1/guardian-requests/{created['id']}/qr.{kind}", scope="consents")
        assert refused.status_code == 404 and refused.json["code"] == "not_found"
    [message] = outbox()
    assert message["to"] == PHONE and "/g/" in message["body"]


def test_r4_the_organization_cannot_decide_a_qr_request_without_the_guardians_code(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian, delivery="qr")
    # The organization holds the QR link; without the code sent to the guardian's phone, no path decides.
    org_as_guardian = guardian.browser(created["approve_url"])
    for form in (
        {"action": "approve", "attest_guardian": "yes", "purpose": "door_access"},
        {"action": "approve", "attest_guardian": "yes", "purpose": "door_access", "otp": "123456"},
        {"action": "decline"},
        {"action": "decline", "otp": "000000"},
    ):
        assert org_as_guardian.submit(**form).status_code == 400, form
        assert _status(tenant, created["id"]) == "pending"
    assert outbox() == []  # and no code was ever sent to the organization


def test_r4_decide_refuses_a_qr_decision_without_a_verified_code(
    tenant: Tenant, app: Flask, guardian: GuardianKit
) -> None:
    """The rule lives in the domain: calling ``decide`` directly without the code decides nothing."""
    _, created = _request(tenant, guardian, delivery="qr")
    with app.app_context():
        session = db.session()
        link = session.scalars(
            select(GuardianLink).where(GuardianLink.request_id == created["id"], GuardianLink.kind == "decision")
        ).one()
        for approve in (True, False):
            with pytest.raises(flow.CodeRejected):
                flow.decide(
                    session,
                    link,
                    approve=approve,
                    ticked=["door_access"],
                    attested=True,
                    code=None,
                    protector=protector(),
                )
            session.rollback()
        request = session.get(GuardianRequest, created["id"])
        assert request is not None and request.status == "pending" and request.otp_verified_at is None


def test_r4_one_time_code_tries_are_paid_before_the_comparison(
    tenant: Tenant, app: Flask, outbox: Any, guardian: GuardianKit
) -> None:
    """Five tries per request, counted by one atomic update: a sixth is not even compared."""
    _, created = _request(tenant, guardian, delivery="qr")
    with app.app_context():
        session = db.session()
        request = session.get(GuardianRequest, created["id"])
        assert request is not None
        code = flow.issue_code(session, request, protector())
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        results = [flow.check_code(session, request, wrong, protector()) for _ in range(OTP_MAX_FAILURES + 2)]
        session.commit()
        assert results[: OTP_MAX_FAILURES - 1] == [flow.CodeCheck.WRONG] * (OTP_MAX_FAILURES - 1)
        assert set(results[OTP_MAX_FAILURES - 1 :]) == {flow.CodeCheck.LOCKED}
        assert request.otp_failures == OTP_MAX_FAILURES and request.status == "locked"
        # Even the right code is refused now.
        assert flow.check_code(session, request, code, protector()) is flow.CodeCheck.LOCKED


@pytest.mark.committed
def test_r4_approval_needs_the_guardian_to_confirm_the_relationship(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    page = parent.open().get_data(as_text=True)
    assert 'name="attest_guardian"' in page and "法定监护人" in page
    refused = parent.submit(action="approve", purpose="door_access")
    assert refused.status_code == 400 and _status(tenant, created["id"]) == "pending"
    assert parent.submit(action="approve", purpose="door_access", attest_guardian="yes").status_code == 200
    allowed = tenant.verify("door_access", subject_id=child["id"]).json
    evidence = tenant.get(f"/v1/consents/{allowed['consent_id']}", scope="consents").json["evidence"]
    assert evidence["guardian_attested"] is True and evidence["relationship"] == "parent"
    assert evidence["possession"] == "sms_link"


def test_r4_only_a_parent_or_legal_guardian_may_be_asked(tenant: Tenant, guardian: GuardianKit) -> None:
    child = guardian.setup_child(tenant)
    for relationship in ("other", "grandparent", "teacher", "", "PARENT"):
        refused = tenant.guardian_request(child["id"], ["door_access"], relationship=relationship)
        assert refused.status_code == 422, relationship
    accepted = tenant.guardian_request(child["id"], ["door_access"], relationship="legal_guardian")
    assert accepted.status_code == 202 and accepted.json["guardian"]["relationship"] == "legal_guardian"


def test_r4_child_display_name_is_shown_to_the_guardian_only(
    tenant: Tenant, client: Any, outbox: Any, app: Flask, guardian: GuardianKit
) -> None:
    child = guardian.setup_child(tenant)
    name = "张*明"
    created = tenant.post(
        "/v1/guardian-requests",
        {
            "subject_id": child["id"],
            "purposes": ["door_access"],
            "delivery": "sms",
            "guardian": {"phone": PHONE, "relationship": "parent"},
            "child_display_name": name,
        },
        scope="consents",
    )
    assert created.status_code == 202 and name not in repr(created.json)
    assert name not in outbox()[0]["body"]
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    assert name in parent.open().get_data(as_text=True)
    too_long = tenant.post(
        "/v1/guardian-requests",
        {
            "subject_id": tenant.subject(age_years=6)["id"],
            "purposes": ["door_access"],
            "delivery": "qr",
            "guardian": {"phone": "+8613912345678", "relationship": "parent"},
            "child_display_name": "x" * 33,
        },
        scope="consents",
    )
    assert too_long.status_code == 422
    with app.app_context():
        dump = " ".join(str(v) for v in db.session().execute(text("SELECT * FROM guardian_requests")).all())
        assert name not in dump  # encrypted at rest
    assert tenant.delete(f"/v1/subjects/{child['id']}").status_code == 204
    with app.app_context():
        request = db.session().get(GuardianRequest, created.json["id"])
        assert request is not None and request.child_name_ciphertext is None


def test_sms_allowance_is_per_phone_and_organization(
    tenant: Tenant, other_tenant: Tenant, outbox: Any, guardian: GuardianKit
) -> None:
    _request(tenant, guardian)
    second = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"])
    assert second.status_code == 429 and second.json["code"] == "rate_limited"
    assert 0 < int(second.headers["Retry-After"]) <= 60
    assert "Other Corp" not in repr(second.json) and "Sunrise" not in second.json["message"]
    # Nothing was created for the refused request.
    assert len(outbox()) == 1
    # Another organization's traffic to the same phone neither blocks this one nor shows in it.
    other_child = guardian.setup_child(other_tenant)
    other = other_tenant.guardian_request(other_child["id"], ["door_access"])
    assert other.status_code == 202 and other.json["delivery_status"] == "queued"
    assert len(outbox()) == 2


@pytest.fixture()
def small_sms_budget(app_config: dict[str, Any]) -> None:
    app_config["SMS_DAILY_LIMIT"] = 2


def test_sms_daily_budget_per_organization(
    small_sms_budget: None, tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit
) -> None:
    guardian.setup_child(tenant)
    for index in range(2):
        ok = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"], phone=f"+861381234560{index}")
        assert ok.status_code == 202, ok.json
    spent = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"], phone="+8613812345609")
    assert spent.status_code == 429 and spent.json["code"] == "sms_budget_exhausted"
    assert int(spent.headers["Retry-After"]) > 3600
    # A QR request sends nothing until the guardian asks for a code; the other organization has its own budget.
    assert tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"], delivery="qr").status_code == 202
    other_child = guardian.setup_child(other_tenant)
    assert other_tenant.guardian_request(other_child["id"], ["door_access"]).status_code == 202


@pytest.mark.parametrize(
    "phone",
    [
        "+14155552671",  # abroad
        "+447911123456",  # a mobile abroad
        "+861012345678",  # a Beijing landline: no SMS reaches it
        "+8640012345678",  # not a valid number
        "13812345678",  # not E.164
    ],
)
def test_sms_only_mobile_numbers_of_the_allowed_regions(
    tenant: Tenant, outbox: Any, phone: str, guardian: GuardianKit
) -> None:
    tenant.purpose("door_access")
    refused = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"], phone=phone)
    assert refused.status_code == 422 and refused.json["code"] == "invalid_phone"
    assert outbox() == []


@pytest.fixture()
def failing_outbox(app_config: dict[str, Any], tmp_path: Any) -> Any:
    # A folder where the outbox file should be: every send fails like a provider that is down.
    (tmp_path / "blocked").mkdir()
    app_config["SMS_OUTBOX"] = str(tmp_path / "blocked")
    return tmp_path / "blocked"


def test_a_failed_sms_does_not_hold_back_the_resend(
    failing_outbox: Any, tenant: Tenant, app: Flask, guardian: GuardianKit, drain: Any
) -> None:
    _, created = _request(tenant, guardian)
    drain()
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["delivery_status"] == "failed"
    failing_outbox.rmdir()  # the provider is back
    app.config["SMS_OUTBOX"] = str(failing_outbox)
    app.extensions["consent_gate.sms"].outbox = str(failing_outbox)
    resent = tenant.post(f"/v1/guardian-requests/{created['id']}/resend", scope="consents")
    assert resent.status_code == 200 and resent.json["delivery_status"] == "queued"
    drain()
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["delivery_status"] == "sent"
    # ...but a successful one does: a second resend at once waits.
    again = tenant.post(f"/v1/guardian-requests/{created['id']}/resend", scope="consents")
    assert again.status_code == 429 and again.json["code"] == "rate_limited"


def test_r13_erasure_removes_links_phone_lookups_and_withdrawal_notes(
    tenant: Tenant, client: Any, outbox: Any, app: Flask, runner: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    decision_link = guardian.url_from(outbox()[0])
    guardian.browser(decision_link).submit(
        action="approve", attest_guardian="yes", purpose=["door_access", "canteen_payment"], transmit="canteen_payment"
    )
    withdrawal_link = guardian.url_from(outbox()[-1])
    door = next(c["id"] for c in created["consents"] if c["purpose"] == "door_access")
    revoked = tenant.post(f"/v1/consents/{door}/revoke", {"reason": "张先生 called: his son moved"}, scope="consents")
    assert revoked.json["end_note"] == "张先生 called: his son moved"
    assert tenant.delete(f"/v1/subjects/{child['id']}").status_code == 204
    for link in (decision_link, withdrawal_link):
        assert client.get(guardian.link_path(link)).status_code == 404
    with app.app_context():
        session = db.session()
        assert session.scalars(select(GuardianLink).where(GuardianLink.request_id == created["id"])).all() == []
        messages = session.scalars(select(SmsMessage)).all()
        assert {m.provider_message_id for m in messages} == {None}
        # The last hour's SMS records keep the phone's keyed hash for the allowance (erasing a child and
        # asking again must not dodge it); the sweep clears it once that hour has passed.
        for message in messages:
            message.created_at = utcnow() - timedelta(minutes=61)
        session.commit()
        assert runner.invoke(args=["sweep"]).exit_code == 0
        session.expire_all()
        assert {m.phone_hash for m in session.scalars(select(SmsMessage))} == {None}
        request = session.get(GuardianRequest, created["id"])
        assert request is not None and request.phone_hash is None and request.link_ciphertext is None
        for consent in session.scalars(select(Consent).where(Consent.subject_id == child["id"])):
            assert consent.end_note is None
        trail = " ".join(repr(e.data) for e in session.scalars(select(AuditEvent)))
        assert "张先生" not in trail
        # No lookup of the phone in the hash chain, which erasure cannot touch.
        assert "guardian_ref" not in trail
    assert tenant.get(f"/v1/consents/{door}", scope="consents").json["end_note"] is None


@pytest.mark.committed
def test_r3_a_revoke_is_not_undone_by_a_later_approval(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    door = next(c["id"] for c in created["consents"] if c["purpose"] == "door_access")
    assert tenant.post(f"/v1/consents/{door}/revoke", scope="consents").status_code == 200
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    # The page the guardian had open still offered both: the approval changes nothing, and says so.
    both = ["door_access", "canteen_payment"]
    late = parent.submit(action="approve", attest_guardian="yes", purpose=both, transmit="canteen_payment")
    assert late.status_code == 409 and "text/html" in late.content_type
    assert _status(tenant, created["id"]) == "pending"
    assert tenant.get(f"/v1/consents/{door}", scope="consents").json["status"] == "revoked"
    # Reloaded, the page offers what is left.
    page = parent.open().get_data(as_text=True)
    assert 'value="door_access"' not in page and 'value="canteen_payment"' in page
    receipt = parent.submit(
        action="approve", attest_guardian="yes", purpose="canteen_payment", transmit="canteen_payment"
    )
    assert receipt.status_code == 200
    assert tenant.get(f"/v1/consents/{door}", scope="consents").json["status"] == "revoked"
    assert tenant.verify("door_access", subject_id=child["id"]).json["reason"] == "revoked"
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["decision"] == "allow"


@pytest.mark.committed
def test_r5_a_notice_changed_after_the_page_was_shown_is_not_approved(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    token = parent.csrf()  # the page, and its notice version 1, as the guardian saw them
    published = tenant.post(
        "/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新的告知。", "en": "New notice."}, "material": False}
    )
    assert published.status_code == 201, published.json
    form = {
        "csrf_token": token,
        "action": "approve",
        "attest_guardian": "yes",
        "purpose": "door_access",
        "notice_version_door_access": "1",
    }
    stale = client.post(guardian.link_path(guardian.url_from(outbox()[0])), data=form)
    assert stale.status_code == 409 and "新的告知" in stale.get_data(as_text=True)
    assert _status(tenant, created["id"]) == "pending"
    form["notice_version_door_access"] = "2"
    assert client.post(guardian.link_path(guardian.url_from(outbox()[0])), data=form).status_code == 303
    consent = tenant.verify("door_access", subject_id=child["id"]).json
    assert consent["decision"] == "allow"


def test_codes_and_links_share_the_allowance_of_the_phone(
    tenant: Tenant, client: Any, outbox: Any, app: Flask, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian, delivery="qr")
    parent = guardian.browser(created["approve_url"])
    assert parent.submit(action="send_code").status_code == 200
    guardian.code_from(outbox()[-1])
    with app.app_context():
        session = db.session()
        rows = session.scalars(select(SmsMessage)).all()
        for row in rows:
            row.created_at = utcnow() - timedelta(minutes=55)
        for minutes in (50, 40, 30, 20):
            session.add(
                SmsMessage(
                    org_id=rows[0].org_id,
                    request_id=rows[0].request_id,
                    phone_hash=rows[0].phone_hash,
                    kind="link",
                    status="sent",
                    created_at=utcnow() - timedelta(minutes=minutes),
                )
            )
        session.commit()
    limited = parent.submit(action="send_code")
    assert limited.status_code == 429


def test_r13_erasing_a_child_does_not_reset_the_phones_allowance(
    tenant: Tenant, outbox: Any, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian)
    assert tenant.delete(f"/v1/subjects/{created['subject_id']}").status_code == 204
    again = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"])
    assert again.status_code == 429 and again.json["code"] == "rate_limited"
    # The link SMS was still queued: the erasure removed it (R13), nothing reaches the guardian any more.
    assert len(outbox()) == 0


def test_r4_a_resend_replaces_the_link(
    tenant: Tenant, client: Any, outbox: Any, app: Flask, guardian: GuardianKit
) -> None:
    """The SMS link is kept nowhere readable: a resend sends a new one and the old one stops working."""
    _, created = _request(tenant, guardian)
    with app.app_context():
        session = db.session()
        request = session.get(GuardianRequest, created["id"])
        assert request is not None and request.link_ciphertext is None
        for message in session.scalars(select(SmsMessage)):
            message.created_at = utcnow() - timedelta(minutes=2)
        session.commit()
    first = guardian.url_from(outbox()[0])
    assert tenant.post(f"/v1/guardian-requests/{created['id']}/resend", scope="consents").status_code == 200
    second = guardian.url_from(outbox()[-1])
    assert second != first
    assert client.get(guardian.link_path(first)).status_code == 404
    assert client.get(guardian.link_path(second)).status_code == 200


def test_r4_no_guardian_decision_once_the_child_reached_the_guardian_age(
    tenant: Tenant, client: Any, outbox: Any, app: Flask, guardian: GuardianKit
) -> None:
    child, created = _request(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    token = parent.csrf()
    with app.app_context():
        session = db.session()
        subject = session.get(Subject, child["id"])
        assert subject is not None
        subject.guardian_required_until = utcnow().date()  # the 14th birthday is today
        session.commit()
    form = {"csrf_token": token, "action": "approve", "attest_guardian": "yes", "purpose": "door_access"}
    late = client.post(guardian.link_path(guardian.url_from(outbox()[0])), data=form)
    assert late.status_code == 410
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert "active" not in {c["status"] for c in polled["consents"]}


@pytest.fixture()
def one_sms_a_day(app_config: dict[str, Any]) -> None:
    app_config["SMS_DAILY_LIMIT"] = 1


@pytest.mark.committed
def test_the_withdrawal_link_is_shown_when_its_sms_cannot_be_sent(
    one_sms_a_day: None, tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    """The budget allows the request's SMS but not the withdrawal link's: the receipt shows the link."""
    child, _ = _request(tenant, guardian)
    receipt = guardian.browser(guardian.url_from(outbox()[0])).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    assert receipt.status_code == 200 and len(outbox()) == 1
    html = receipt.get_data(as_text=True)
    assert 'id="withdrawal-link"' in html
    shown = re.search(r'href="(http://consent-gate.test/g/[A-Za-z0-9_-]+)"', html)
    assert shown is not None
    withdrawal = guardian.browser(shown.group(1))
    assert 'name="withdraw"' in withdrawal.open().get_data(as_text=True)
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"


@pytest.mark.committed
def test_odd_form_values_on_the_guardian_pages_answer_4xx(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    child, _ = _request(tenant, guardian)
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    both = ["door_access", "canteen_payment"]
    odd = parent.submit(
        action="approve",
        attest_guardian="yes",
        purpose=both,
        transmit="canteen_payment",
        notice_version_door_access="²",
    )
    assert odd.status_code == 200  # a version that is no number is ignored, not a crash
    withdrawal = guardian.browser(guardian.url_from(outbox()[-1]))
    for value in ("abc\x00def", "x" * 500, "", "ü" * 36):
        assert withdrawal.submit(withdraw=value).status_code < 500, repr(value)
        assert withdrawal.submit(confirm=value).status_code < 500, repr(value)
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"


def test_r4_a_request_with_nothing_left_to_decide_says_so(
    tenant: Tenant, client: Any, outbox: Any, guardian: GuardianKit
) -> None:
    _, created = _request(tenant, guardian)
    for consent in created["consents"]:
        assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").status_code == 200
    page = client.get(guardian.link_path(guardian.url_from(outbox()[0])))
    assert page.status_code == 410 and "没有需要您决定" in page.get_data(as_text=True)
