"""R9: face data leaving the device needs its own act of consent, for adults and for guardians.

A purpose with ``transmits_face_data: true`` is granted only with a second, separate act: an adult's
``evidence.transmission_consent: true``, a guardian's second box ``input[name="transmit"]``. Each test tries
to get the purpose granted without that act.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import guardian as flow
from service.domain.consents import TransmissionConsentRequired, grant_consent
from service.keys.data_key import protector
from service.models import AuditEvent, Consent, GuardianLink, GuardianRequest

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

EVIDENCE = {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN"}


def _cloud_purpose(tenant: Tenant) -> None:
    tenant.purpose("door_access")
    tenant.purpose(
        "cloud_match", transmits_face_data=True, name={"zh-CN": "云端比对", "en": "Cloud match"}, category="payment"
    )


def _post_consent(tenant: Tenant, subject_id: str, purpose: str, **evidence: Any) -> Any:
    body = {"subject_id": subject_id, "purpose": purpose, "notice_version": 1, "evidence": {**EVIDENCE, **evidence}}
    return tenant.post("/v1/consents", body, scope="consents")


def _consents_of(db_session: Session, subject_id: str) -> list[Consent]:
    return list(db_session.scalars(select(Consent).where(Consent.subject_id == subject_id)))


# --- Adults -------------------------------------------------------------------------------------------------


def test_r9_transmission_needs_its_own_consent_domain(tenant: Tenant, db_session: Session) -> None:
    """``grant_consent`` itself refuses a transmitting purpose without ``transmission_consent: true``."""
    _cloud_purpose(tenant)
    person = tenant.subject()["id"]
    grant = {"org_id": tenant.org_id, "actor": "test", "subject_id": person, "notice_version": 1}
    for missing in ({}, {"transmission_consent": False}, {"transmission_consent": "true"}, {"transmission_consent": 1}):
        with pytest.raises(TransmissionConsentRequired) as refused:
            grant_consent(db_session, purpose_code="cloud_match", evidence={**EVIDENCE, **missing}, **grant)
        assert refused.value.code == "transmission_consent_required" and refused.value.status == 422
        assert refused.value.details == {"purpose": "cloud_match"}
        db_session.rollback()
    assert _consents_of(db_session, person) == []
    consent = grant_consent(
        db_session, purpose_code="cloud_match", evidence={**EVIDENCE, "transmission_consent": True}, **grant
    )
    assert consent.status == "active"
    assert consent.evidence["transmission_consent"] is True and consent.evidence["transmits_face_data"] is True
    # A purpose that keeps face data on the device asks no second act.
    local = grant_consent(db_session, purpose_code="door_access", evidence=EVIDENCE, **grant)
    assert local.status == "active" and "transmission_consent" not in local.evidence
    db_session.commit()


@pytest.mark.committed
def test_r9_transmission_needs_its_own_consent_http(tenant: Tenant, db_session: Session) -> None:
    _cloud_purpose(tenant)
    person = tenant.subject()["id"]
    for evidence in ({}, {"transmission_consent": False}):
        refused = _post_consent(tenant, person, "cloud_match", **evidence)
        assert (refused.status_code, refused.json["code"]) == (422, "transmission_consent_required"), refused.json
        assert refused.json["errors"] == {"purpose": "cloud_match"}
    # Something that merely reads as true is not an act of consent.
    for almost in ("true", "yes", 1, "1"):
        wrong = _post_consent(tenant, person, "cloud_match", transmission_consent=almost)
        assert (wrong.status_code, wrong.json.get("code")) == (422, "validation_error"), (almost, wrong.json)
    assert _consents_of(db_session, person) == []
    db_session.rollback()
    denied = tenant.verify("cloud_match", subject_id=person).json
    assert (denied["decision"], denied["reason"]) == ("deny", "no_consent")

    granted = _post_consent(tenant, person, "cloud_match", transmission_consent=True)
    assert granted.status_code == 201, granted.json
    assert granted.json["status"] == "active" and granted.json["token"]
    assert granted.json["evidence"]["transmission_consent"] is True
    assert tenant.verify("cloud_match", token=granted.json["token"]).json["decision"] == "allow"
    event = db_session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == granted.json["id"], AuditEvent.action == "consent.granted")
    ).one()
    assert event.data["transmission_consent"] is True
    db_session.rollback()
    # The receipt carries it too, as part of the recorded evidence.
    assert tenant.get(f"/v1/consents/{granted.json['id']}", scope="consents").json["evidence"]["transmission_consent"]
    local = _post_consent(tenant, person, "door_access")
    assert local.status_code == 201, local.json


# --- Guardians: the rule in the domain ----------------------------------------------------------------------


def _decision_link(db_session: Session, request_id: str) -> GuardianLink:
    return db_session.scalars(
        select(GuardianLink).where(GuardianLink.request_id == request_id, GuardianLink.kind == "decision")
    ).one()


def test_r9_guardian_transmission_needs_its_own_box_domain(
    tenant: Tenant, guardian: GuardianKit, db_session: Session
) -> None:
    """``decide`` approves a transmitting purpose only when it is in both ``ticked`` and ``transmit``."""
    child = guardian.setup_child(tenant)  # door_access stays on the device; canteen_payment transmits
    created = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"]).json
    both = ["door_access", "canteen_payment"]
    attempts: list[tuple[list[str], list[str]]] = [
        (both, []),  # the purpose without its transmission box
        (both, ["door_access"]),  # a transmission box of a purpose that transmits nothing
        (both, ["unknown_code", "CANTEEN_PAYMENT", " canteen_payment"]),  # look-alikes
        (["door_access"], ["canteen_payment"]),  # the transmission box alone
        (["canteen_payment"], ["door_access"]),  # crossed
    ]
    for ticked, transmit in attempts:
        with pytest.raises(flow.TransmissionRefused) as refused:
            flow.decide(
                db_session,
                _decision_link(db_session, created["id"]),
                approve=True,
                ticked=ticked,
                attested=True,
                code=None,
                protector=protector(),
                transmit=transmit,
            )
        assert refused.value.details == {"purposes": ["canteen_payment"]}, (ticked, transmit)
        db_session.rollback()
        request = db_session.get(GuardianRequest, created["id"])
        assert request is not None and request.status == "pending", (ticked, transmit)
        assert {c.status for c in request.consents} == {"pending_guardian"}
    decision = flow.decide(
        db_session,
        _decision_link(db_session, created["id"]),
        approve=True,
        ticked=both,
        attested=True,
        code=None,
        protector=protector(),
        transmit=["canteen_payment", "door_access"],  # the extra one grants nothing and harms nothing
    )
    assert decision.approved == sorted(both) and decision.declined == []
    evidence = {c.purpose.code: c.evidence for c in _consents_of(db_session, child["id"])}
    assert evidence["canteen_payment"]["transmission_consent"] is True
    assert evidence["canteen_payment"]["transmits_face_data"] is True
    assert "transmission_consent" not in evidence["door_access"]
    db_session.commit()


def test_r9_declining_needs_no_transmission_box_domain(
    tenant: Tenant, guardian: GuardianKit, db_session: Session
) -> None:
    """Declining never asks for the second box, and a stray transmission box approves nothing."""
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"]).json
    decision = flow.decide(
        db_session,
        _decision_link(db_session, created["id"]),
        approve=False,
        ticked=["canteen_payment"],
        attested=False,
        code=None,
        protector=protector(),
        transmit=["canteen_payment"],
    )
    assert decision.approved == [] and decision.declined == ["canteen_payment", "door_access"]
    assert {c.status for c in _consents_of(db_session, child["id"])} == {"declined"}
    db_session.commit()


# --- Guardians: the page -------------------------------------------------------------------------------------


def _checked(html: str, name: str, value: str) -> bool:
    found = re.search(rf'<input type="checkbox" name="{name}" value="{value}"[^>]*>', html)
    assert found, (name, value)
    return " checked" in found.group(0)


@pytest.mark.committed
def test_r9_guardian_transmission_needs_its_own_box_http(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, db_session: Session
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access", "canteen_payment"]).json
    parent = guardian.browser(guardian.url_from(outbox()[0]))
    page = parent.open().get_data(as_text=True)
    # One transmission box, for the purpose that transmits, unticked, with its own label.
    assert page.count('name="transmit"') == 1
    assert not _checked(page, "transmit", "canteen_payment")
    assert '<label for="transmit-canteen_payment">' in page
    assert "单独同意" in page and "you consent to that separately here" not in page
    english = parent.open("?lang=en").get_data(as_text=True)
    assert "you consent to that separately here" not in english
    assert "face data may be transmitted off the device" in english

    both = ["door_access", "canteen_payment"]
    for form in (
        {"purpose": both},
        {"purpose": both, "transmit": "door_access"},
        {"purpose": "door_access", "transmit": "canteen_payment"},
        {"purpose": both, "transmit": "canteen_payment\x00"},
    ):
        refused = parent.submit(action="approve", attest_guardian="yes", **form)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 400, form
        assert 'data-error="purposes"' in html and "您的选择未提交" in html, form
        # The error stands next to the box, and the guardian's ticks are kept.
        assert 'data-transmit-error="canteen_payment"' in html, form
        assert _checked(html, "purpose", "door_access"), form
        assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["status"] == "pending"
    decisions = db_session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.object_id == created["id"], AuditEvent.action.like("guardian_request.%")
        )
    ).all()
    assert list(decisions) == ["guardian_request.created"], "nothing recorded for a refused form"
    db_session.rollback()

    receipt = parent.submit(action="approve", attest_guardian="yes", purpose=both, transmit="canteen_payment")
    assert receipt.status_code == 200, receipt.get_data(as_text=True)
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "approved"
    allowed = tenant.verify("canteen_payment", subject_id=child["id"]).json
    assert allowed["decision"] == "allow"
    consent = tenant.get(f"/v1/consents/{allowed['consent_id']}", scope="consents").json
    assert consent["evidence"]["transmission_consent"] is True and consent["guardian_authorized"] is True
