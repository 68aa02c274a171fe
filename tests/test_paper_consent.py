"""Written consent (R2, R4; PIPL Art. 29, the draft's 书面同意): a guardian decides on a signed paper form.

``delivery: paper`` opens a guardian request that sends nothing and has no link; the organization records
the signed form with ``POST /v1/guardian-requests/{id}/paper-decision``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import db
from service.domain import guardian as flow
from service.domain.guardian.common import new_link
from service.domain.subjects import CHINA_TIME
from service.errors import Conflict, NotFound, Unprocessable
from service.models import AuditEvent, Consent, GuardianLink, GuardianRequest

if TYPE_CHECKING:
    from tests.support import GuardianKit, MakeTenant, Race, Tenant

PHONE = "+8613812345678"
FORM = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
BOTH = ["door_access", "canteen_payment"]


def china_today() -> date:
    return datetime.now(CHINA_TIME).date()


#: The purposes of ``setup_child`` that send face data off the device (R9): their form has a second box.
TRANSMITTING = {"canteen_payment"}


def body(decisions: dict[str, str], *, form: str = FORM, signed_on: date | None = None) -> dict[str, Any]:
    """The form as recorded, with the transmission box ticked for each transmitting purpose it approves."""
    transmission = sorted(code for code, answer in decisions.items() if answer == "approve" and code in TRANSMITTING)
    return {
        "decisions": decisions,
        "transmission_consent": transmission,
        "form_sha256": form,
        "signed_on": (signed_on or china_today()).isoformat(),
    }


def open_request(tenant: Tenant, guardian: GuardianKit, *, delivery: str = "paper", setup: bool = True) -> Any:
    """A child with two assessed purposes (``setup``) and a guardian request for both."""
    child = guardian.setup_child(tenant) if setup else tenant.subject(age_years=9)
    response = tenant.guardian_request(child["id"], BOTH, delivery=delivery)
    assert response.status_code == 202, response.json
    return child, response.json


def paper_decision(tenant: Tenant, request_id: str, payload: dict[str, Any]) -> Any:
    return tenant.post(f"/v1/guardian-requests/{request_id}/paper-decision", payload, scope="consents")


def statuses(tenant: Tenant, request_id: str) -> tuple[str, dict[str, str]]:
    polled = tenant.get(f"/v1/guardian-requests/{request_id}", scope="consents").json
    return polled["status"], {c["purpose"]: c["status"] for c in polled["consents"]}


def request_events(tenant: Tenant, request_id: str) -> list[dict[str, Any]]:
    return [e for e in tenant.get("/v1/audit/events").json["events"] if e["object_id"] == request_id]


# --- the domain ---------------------------------------------------------------------------------------------


def test_pipl29_written_consent_domain(tenant: Tenant, guardian: GuardianKit, db_session: Session) -> None:
    """record_paper_decision: a complete form decides once, with written evidence; anything else changes nothing."""
    _, created = open_request(tenant, guardian)
    sms = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"]).json
    request = db_session.get(GuardianRequest, created["id"])
    assert request is not None
    record = flow.record_paper_decision

    with pytest.raises(flow.NotPaperRequest) as not_paper:
        sms_request = db_session.get(GuardianRequest, sms["id"])
        assert sms_request is not None
        record(
            db_session,
            sms_request,
            actor="test",
            decisions={"door_access": "approve"},
            form_sha256=FORM,
            signed_on=china_today(),
        )
    assert not_paper.value.code == "not_paper_request" and not_paper.value.status == 409
    refused = [
        ({"door_access": "approve"}, FORM, china_today(), "decisions"),  # a purpose missing
        ({**dict.fromkeys(BOTH, "approve"), "other": "approve"}, FORM, china_today(), "decisions"),  # unknown
        (dict.fromkeys(BOTH, "yes"), FORM, china_today(), "decisions"),  # neither approve nor decline
        (dict.fromkeys(BOTH, "approve"), FORM.upper(), china_today(), "form_sha256"),
        (dict.fromkeys(BOTH, "approve"), FORM[:-1], china_today(), "form_sha256"),
        (dict.fromkeys(BOTH, "approve"), FORM, china_today() + timedelta(days=1), "signed_on"),
        (dict.fromkeys(BOTH, "approve"), FORM, china_today() - timedelta(days=1), "signed_on"),
    ]
    for decisions, form, signed_on, field in refused:
        with pytest.raises(Unprocessable) as bad:
            record(db_session, request, actor="test", decisions=decisions, form_sha256=form, signed_on=signed_on)
        assert bad.value.code == "validation_error" and field in bad.value.details["json"], (field, bad.value.details)
    assert request.status == "pending"

    decision = record(
        db_session,
        request,
        actor="api_key:test",
        decisions={"door_access": "approve", "canteen_payment": "decline"},
        form_sha256=FORM,
        signed_on=china_today(),
    )
    assert (decision.status, decision.approved, decision.declined) == (
        "partially_approved",
        ["door_access"],
        ["canteen_payment"],
    )
    assert decision.withdrawal_token and decision.possession == "signed_form"
    consents = {
        c.purpose.code: c for c in db_session.scalars(select(Consent).where(Consent.guardian_request_id == request.id))
    }
    door, canteen = consents["door_access"], consents["canteen_payment"]
    assert door.status == "active" and door.guardian_authorized
    assert door.evidence["method"] == "written" and door.evidence["channel"] == "paper"
    assert door.evidence["form_sha256"] == FORM and door.evidence["signed_on"] == china_today().isoformat()
    assert door.evidence["recorded_by"] == "api_key:test" and door.evidence["notice_digest"] == door.notice_digest
    assert canteen.status == "declined" and canteen.end_reason == "guardian_declined"
    assert canteen.evidence["method"] == "written" and canteen.evidence["form_sha256"] == FORM
    # The states change once: a second form for the same request is refused and changes nothing.
    with pytest.raises(Conflict) as twice:
        record(
            db_session,
            request,
            actor="test",
            decisions=dict.fromkeys(BOTH, "approve"),
            form_sha256=FORM,
            signed_on=china_today(),
        )
    assert twice.value.code == "request_not_pending"
    assert (door.status, canteen.status) == ("active", "declined")
    db_session.rollback()


def test_pipl29_no_link_can_decide_a_paper_request(tenant: Tenant, guardian: GuardianKit, db_session: Session) -> None:
    """A paper request has no decision link; a link made for it anyway still cannot decide it."""
    _, created = open_request(tenant, guardian)
    assert (
        db_session.scalar(
            select(func.count()).select_from(GuardianLink).where(GuardianLink.request_id == created["id"])
        )
        == 0
    )
    request = db_session.get(GuardianRequest, created["id"])
    assert request is not None
    token = new_link(db_session, request, kind="decision", expires_at=request.expires_at)
    db_session.flush()
    link = flow.resolve_link(db_session, token)
    with pytest.raises(NotFound):
        flow.decide(db_session, link, approve=True, ticked=BOTH, attested=True, code=None, protector=None)
    db_session.refresh(request)
    assert request.status == "pending"
    db_session.rollback()


# --- the API ------------------------------------------------------------------------------------------------


def test_pipl29_paper_request_sends_nothing_and_shows_no_link(
    tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    _, created = open_request(tenant, guardian)
    assert (created["delivery"], created["status"], created["delivery_status"]) == ("paper", "pending", "not_required")
    assert not {"approve_url", "qr_png_url", "qr_svg_url"} & set(created)
    assert [c["status"] for c in created["consents"]] == ["pending_guardian", "pending_guardian"]
    assert created["guardian"]["phone_masked"] == "+86 138****5678"
    assert outbox() == []
    for path in ("qr.png", "qr.svg"):
        assert tenant.get(f"/v1/guardian-requests/{created['id']}/{path}", scope="consents").status_code == 404
    resend = tenant.post(f"/v1/guardian-requests/{created['id']}/resend", scope="consents")
    assert resend.status_code == 409 and resend.json["code"] == "request_not_pending"
    assert outbox() == []
    created_event = request_events(tenant, created["id"])[0]
    assert (created_event["action"], created_event["data"]["delivery"]) == ("guardian_request.created", "paper")


def test_pipl29_paper_request_still_needs_the_guardians_phone(tenant: Tenant, guardian: GuardianKit) -> None:
    """Decision: the phone stays required for paper: the withdrawal link is texted to it after the form."""
    child = guardian.setup_child(tenant)
    response = tenant.post(
        "/v1/guardian-requests",
        {
            "subject_id": child["id"],
            "purposes": ["door_access"],
            "delivery": "paper",
            "guardian": {"relationship": "parent"},
        },
        scope="consents",
    )
    assert response.status_code == 422 and "phone" in response.json["errors"]["json"]["guardian"]


@pytest.mark.committed
def test_pipl29_paper_approval_gives_tokens_that_verify(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    child, created = open_request(tenant, guardian)
    answer = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "approved" and answer.json["withdrawal_sms"] == "queued"
    assert answer.json["decided_at"] is not None
    assert {c["status"] for c in answer.json["consents"]} == {"active"}
    for item in answer.json["consents"]:
        consent = tenant.get(f"/v1/consents/{item['id']}", scope="consents").json
        assert consent["guardian_authorized"] is True
        evidence = consent["evidence"]
        assert (evidence["method"], evidence["channel"], evidence["form_sha256"]) == ("written", "paper", FORM)
        assert evidence["signed_on"] == china_today().isoformat()
        assert jwt.decode(consent["token"], options={"verify_signature": False})["grd"] is True
        allowed = tenant.verify(item["purpose"], token=consent["token"]).json
        assert (allowed["decision"], allowed["reason"]) == ("allow", "consent_active")
    # After the decision the guardian gets the withdrawal link by SMS, as after a decision online.
    [message] = outbox()
    assert message["to"] == PHONE and "/g/" in message["body"] and "撤回" in message["body"]
    assert guardian.browser(guardian.url_from(message)).open().status_code == 200
    # Audited: the request's decision with the form's digest, each grant as written.
    actions = {e["action"]: e for e in request_events(tenant, created["id"])}
    decided = actions["guardian_request.approved"]["data"]
    assert (decided["method"], decided["form_sha256"], decided["signed_on"]) == (
        "written",
        FORM,
        china_today().isoformat(),
    )
    granted = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "consent.granted"]
    assert len(granted) == 2 and {
        (e["data"]["method"], e["data"]["channel"], e["data"]["guardian"]) for e in granted
    } == {("written", "paper", True)}
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"


def test_pipl29_paper_decline_declines_every_purpose(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, created = open_request(tenant, guardian)
    answer = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "decline")))
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "declined" and answer.json["withdrawal_sms"] == "not_required"
    assert statuses(tenant, created["id"]) == ("declined", dict.fromkeys(BOTH, "declined"))
    for item in answer.json["consents"]:
        consent = tenant.get(f"/v1/consents/{item['id']}", scope="consents").json
        assert consent["token"] is None and consent["end_reason"] == "guardian_declined"
        assert (consent["evidence"]["method"], consent["evidence"]["form_sha256"]) == ("written", FORM)
    assert outbox() == []  # nothing to withdraw: no withdrawal link


def test_pipl29_paper_partial_approval(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, created = open_request(tenant, guardian)
    answer = paper_decision(tenant, created["id"], body({"door_access": "approve", "canteen_payment": "decline"}))
    assert answer.status_code == 200, answer.json
    assert statuses(tenant, created["id"]) == (
        "partially_approved",
        {"door_access": "active", "canteen_payment": "declined"},
    )
    assert len(outbox()) == 1
    door = next(c for c in answer.json["consents"] if c["purpose"] == "door_access")
    receipt = tenant.get(f"/v1/consents/{door['id']}/receipt", scope="consents").json["receipt"]
    assert receipt["consent"]["type"] == "explicit, separate, written"
    assert receipt["collection"] == {
        "method": "written",
        "channel": "paper",
        "recorded_at": receipt["collection"]["recorded_at"],
        "form_sha256": FORM,
        "signed_on": china_today().isoformat(),
    }


def test_pipl29_a_paper_decision_is_recorded_once(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, created = open_request(tenant, guardian)
    assert paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "decline"))).status_code == 200
    events = len(tenant.get("/v1/audit/events").json["events"])
    again = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert again.status_code == 409 and again.json["code"] == "request_not_pending"
    assert statuses(tenant, created["id"]) == ("declined", dict.fromkeys(BOTH, "declined"))
    assert len(tenant.get("/v1/audit/events").json["events"]) == events
    assert outbox() == []


@pytest.mark.parametrize("delivery", ["sms", "qr"])
def test_pipl29_only_paper_requests_take_a_paper_decision(tenant: Tenant, guardian: GuardianKit, delivery: str) -> None:
    _, created = open_request(tenant, guardian, delivery=delivery)
    refused = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert refused.status_code == 409 and refused.json["code"] == "not_paper_request"
    assert statuses(tenant, created["id"]) == ("pending", dict.fromkeys(BOTH, "pending_guardian"))


def test_pipl29_a_form_that_does_not_fit_changes_nothing(tenant: Tenant, guardian: GuardianKit, outbox: Any) -> None:
    _, created = open_request(tenant, guardian)
    events = len(tenant.get("/v1/audit/events").json["events"])
    approve_both = dict.fromkeys(BOTH, "approve")
    cases = {
        "bad digest": (body(approve_both, form="not-a-digest"), "form_sha256"),
        "uppercase digest": (body(approve_both, form=FORM.upper()), "form_sha256"),
        "short digest": (body(approve_both, form=FORM[:63]), "form_sha256"),
        "future date": (body(approve_both, signed_on=china_today() + timedelta(days=1)), "signed_on"),
        "before the request": (body(approve_both, signed_on=china_today() - timedelta(days=1)), "signed_on"),
        "missing purpose": (body({"door_access": "approve"}), "decisions"),
        "unknown purpose": (body({**approve_both, "payroll": "approve"}), "decisions"),
        "neither approve nor decline": (body({"door_access": "approve", "canteen_payment": "maybe"}), "decisions"),
        "no decisions": (body({}), "decisions"),
    }
    for name, (payload, field) in cases.items():
        refused = paper_decision(tenant, created["id"], payload)
        assert refused.status_code == 422, (name, refused.json)
        assert refused.json["code"] == "validation_error" and field in refused.json["errors"]["json"], (
            name,
            refused.json,
        )
    missing = paper_decision(tenant, created["id"], body({"door_access": "approve"})).json
    assert list(missing["errors"]["json"]["decisions"]) == ["canteen_payment"]
    unknown = paper_decision(tenant, created["id"], body({**approve_both, "payroll": "approve"})).json
    assert list(unknown["errors"]["json"]["decisions"]) == ["payroll"]
    no_date = paper_decision(tenant, created["id"], {"decisions": approve_both, "form_sha256": FORM})
    assert no_date.status_code == 422 and "signed_on" in no_date.json["errors"]["json"]
    assert statuses(tenant, created["id"]) == ("pending", dict.fromkeys(BOTH, "pending_guardian"))
    assert len(tenant.get("/v1/audit/events").json["events"]) == events
    assert outbox() == []


def test_pipl29_other_organizations_cannot_record_a_form(
    tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit
) -> None:
    _, created = open_request(tenant, guardian)
    other_tenant.purpose("door_access")
    other_tenant.purpose("canteen_payment")
    refused = paper_decision(other_tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert refused.status_code == 404
    assert paper_decision(tenant, "no-such-request", body(dict.fromkeys(BOTH, "approve"))).status_code == 404
    verify_key = tenant.post(
        f"/v1/guardian-requests/{created['id']}/paper-decision", body(dict.fromkeys(BOTH, "approve")), scope="verify"
    )
    assert verify_key.status_code == 403
    assert statuses(tenant, created["id"]) == ("pending", dict.fromkeys(BOTH, "pending_guardian"))


@pytest.mark.committed
def test_pipl29_a_revoked_consent_is_never_reactivated_by_a_form(
    tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    child, created = open_request(tenant, guardian)
    door = next(c for c in created["consents"] if c["purpose"] == "door_access")
    assert tenant.post(f"/v1/consents/{door['id']}/revoke", scope="consents").status_code == 200
    # The form approves the revoked purpose: nothing is recorded, the revoke stands.
    refused = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert refused.status_code == 409 and refused.json["code"] == "state_changed"
    assert statuses(tenant, created["id"]) == (
        "pending",
        {"door_access": "revoked", "canteen_payment": "pending_guardian"},
    )
    # A form that declines it records the rest; the revoked consent stays revoked.
    answer = paper_decision(tenant, created["id"], body({"door_access": "decline", "canteen_payment": "approve"}))
    assert answer.status_code == 200, answer.json
    assert statuses(tenant, created["id"])[1] == {"door_access": "revoked", "canteen_payment": "active"}
    assert tenant.verify("door_access", subject_id=child["id"]).json["reason"] == "revoked"
    assert tenant.verify("canteen_payment", subject_id=child["id"]).json["decision"] == "allow"


def test_pipl29_a_changed_notice_refuses_the_older_form(tenant: Tenant, guardian: GuardianKit) -> None:
    """Decision: the form shows the notice the request offered; after a notice change it cannot approve."""
    _, created = open_request(tenant, guardian)
    changed = tenant.post(
        "/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新的告知。", "en": "A new notice."}, "material": True}
    )
    assert changed.status_code == 201, changed.json
    refused = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert refused.status_code == 409 and refused.json["code"] == "stale_notice"
    assert statuses(tenant, created["id"]) == ("pending", dict.fromkeys(BOTH, "pending_guardian"))


def test_pipl29_withdrawal_sms_stays_within_the_phones_allowance(
    tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    """Two children, one guardian: the second withdrawal SMS within a minute is not sent; the decision stands."""
    _, first = open_request(tenant, guardian)
    _, second = open_request(tenant, guardian, setup=False)
    assert paper_decision(tenant, first["id"], body(dict.fromkeys(BOTH, "approve"))).json["withdrawal_sms"] == "queued"
    answer = paper_decision(tenant, second["id"], body(dict.fromkeys(BOTH, "approve")))
    assert answer.status_code == 200 and answer.json["status"] == "approved"
    assert answer.json["withdrawal_sms"] == "not_sent"
    assert len(outbox()) == 1


def test_pipl29_report_counts_written_consents_apart(
    tenant: Tenant, guardian: GuardianKit, runner: Any, app: Flask
) -> None:
    _, created = open_request(tenant, guardian)
    paper_decision(tenant, created["id"], body({"door_access": "approve", "canteen_payment": "decline"}))
    open_request(tenant, guardian, setup=False)  # its two consents wait for a form: written, pending
    assert tenant.consent(tenant.subject(age_years=30)["id"]).status_code == 201
    report = tenant.get("/v1/reports/compliance").json
    assert report["consents_by_form"] == {
        "written": {"active": 1, "declined": 1, "pending_guardian": 2},
        "online": {"active": 1},
    }
    page = tenant.get("/v1/reports/compliance.html?lang=en").get_data(as_text=True)
    assert 'id="consents-by-form"' in page and "written (signed paper form" in page
    assert "书面（签字的纸质同意书" in tenant.get("/v1/reports/compliance.html").get_data(as_text=True)
    printed = runner.invoke(args=["report", "--org", tenant.org_id])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["consents_by_form"]["written"]["active"] == 1


# --- races --------------------------------------------------------------------------------------------------


def poster(app: Flask, tenant: Tenant, request_id: str, payload: dict[str, Any]) -> Callable[[], tuple[int, str]]:
    """A paper decision with a test client of its own, to run in a thread: its status and code (or outcome)."""
    client = app.test_client()
    headers = tenant.headers("consents")

    def post() -> tuple[int, str]:
        answer = client.post(f"/v1/guardian-requests/{request_id}/paper-decision", json=payload, headers=headers)
        data = answer.get_json()
        return answer.status_code, data.get("code") or data["status"]

    return post


def test_pipl29_two_paper_decisions_racing_record_one(
    app: Flask, make_tenant: MakeTenant, guardian: GuardianKit, race: Race
) -> None:
    """Two forms for one request at the same instant (threads behind a barrier): exactly one is recorded."""
    tenant = make_tenant()
    guardian.setup_child(tenant)
    for _ in range(5):
        child = tenant.subject(age_years=9)
        created = tenant.guardian_request(child["id"], BOTH, delivery="paper").json
        approve = poster(app, tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
        decline = poster(app, tenant, created["id"], body(dict.fromkeys(BOTH, "decline")))
        [results] = race(approve, decline)
        for result in results:
            assert not isinstance(result, BaseException), result
        codes = sorted(status for status, _ in results)
        assert codes == [200, 409], results
        loser = next(code for status, code in results if status == 409)
        assert loser in {"request_not_pending", "state_changed"}, results
        winner = next(code for status, code in results if status == 200)
        status, consents = statuses(tenant, created["id"])
        assert status == winner and set(consents.values()) == ({"active"} if winner == "approved" else {"declined"})
        with app.app_context():
            session = db.session()
            decided = session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.object_id == created["id"], AuditEvent.action.like("guardian_request.%")
                )
            ).all()
            granted_or_declined = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action.in_(["consent.granted", "consent.declined"]), AuditEvent.data.is_not(None))
                .where(AuditEvent.object_id.in_([c["id"] for c in created["consents"]]))
            )
        assert sorted(decided) == sorted(["guardian_request.created", f"guardian_request.{winner}"])
        assert granted_or_declined == 2


def test_pipl29_revoke_racing_a_form_is_never_undone(
    app: Flask, make_tenant: MakeTenant, guardian: GuardianKit, race: Race
) -> None:
    """The organization revokes a pending consent while its approving form is recorded: it ends revoked."""
    tenant = make_tenant()
    guardian.setup_child(tenant)
    outcomes: set[int] = set()
    client, headers = app.test_client(), tenant.headers("consents")  # the revoking side's
    for _ in range(5):
        child = tenant.subject(age_years=9)
        created = tenant.guardian_request(child["id"], BOTH, delivery="paper").json
        door = next(c for c in created["consents"] if c["purpose"] == "door_access")
        approve = poster(app, tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))

        def revoke(consent_id: str = door["id"]) -> int:
            return int(client.post(f"/v1/consents/{consent_id}/revoke", json={}, headers=headers).status_code)

        [[recorded, revoked]] = race(approve, revoke)
        assert not isinstance(recorded, BaseException) and revoked == 200, (recorded, revoked)
        status, consents = statuses(tenant, created["id"])
        assert consents["door_access"] == "revoked"
        if recorded[0] == 200:  # the form first: approved, then withdrawn
            assert status == "approved" and consents["canteen_payment"] == "active"
        else:  # the revoke first: the form is refused whole
            assert recorded[1] == "state_changed", recorded
            assert status == "pending" and consents["canteen_payment"] == "pending_guardian"
        outcomes.add(recorded[0])
        assert tenant.verify("door_access", subject_id=child["id"]).json["reason"] == "revoked"
    assert outcomes <= {200, 409}


def test_r9_a_written_form_needs_the_transmission_box(tenant: Tenant, guardian: GuardianKit) -> None:
    """Approving a purpose that sends face data off the device needs the form's separate box for it (R9)."""
    _, created = open_request(tenant, guardian)
    for transmission in ([], ["door_access"], ["other"]):
        refused = paper_decision(
            tenant, created["id"], {**body(dict.fromkeys(BOTH, "approve")), "transmission_consent": transmission}
        )
        assert (refused.status_code, refused.json["code"]) == (422, "transmission_consent_required"), transmission
        assert statuses(tenant, created["id"]) == (
            "pending",
            {"door_access": "pending_guardian", "canteen_payment": "pending_guardian"},
        )
    # Declining needs no second box; approving with it records it as its own act.
    recorded = paper_decision(tenant, created["id"], body(dict.fromkeys(BOTH, "approve")))
    assert recorded.status_code == 200, recorded.json
    consents = {c["purpose"]: c["id"] for c in recorded.json["consents"]}
    canteen = tenant.get(f"/v1/consents/{consents['canteen_payment']}", scope="consents").json
    assert canteen["evidence"]["transmission_consent"] is True and canteen["evidence"]["method"] == "written"
