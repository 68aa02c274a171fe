"""The guardian's decision, purpose by purpose, and later withdrawal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.consent_states import effective_status, end_consent
from service.domain.guardian.common import audit_step, claim_request, new_link
from service.domain.guardian.links import LinkGone
from service.domain.purposes import assessment_is_current
from service.domain.status_lists import assign_index
from service.domain.subjects import get_subject, guardian_age_moment
from service.errors import NotFound
from service.models import Consent, GuardianLink, GuardianRequest, utcnow

WITHDRAWABLE = ("active", "pending_guardian", "reconsent_required")


@dataclass(frozen=True)
class Decision:
    status: str
    approved: list[str]
    declined: list[str]
    withdrawal_token: str | None


def decide(session: Session, link: GuardianLink, *, approve: bool, ticked: list[str]) -> Decision:
    """Record the guardian's decision, purpose by purpose; only one decision per request ever counts."""
    request = link.request
    now = utcnow()
    pending = [c for c in request.consents if c.status == "pending_guardian"]
    chosen = set(ticked) if approve else set()
    grantable = {c.purpose.code for c in pending if assessment_is_current(c.purpose, now.date())}
    approved = sorted(c.purpose.code for c in pending if c.purpose.code in chosen and c.purpose.code in grantable)
    declined = sorted(c.purpose.code for c in pending if c.purpose.code not in approved)
    status = "approved" if approved and not declined else "partially_approved" if approved else "declined"
    if not claim_request(session, request, status, now):
        raise LinkGone("a decision was already made with this link", code="link_used")
    link.used_at = now
    subject = (
        request.consents[0].subject
        if request.consents
        else get_subject(session, org_id=request.org_id, subject_id=request.subject_id)
    )
    age_end = guardian_age_moment(subject.guardian_required_until) if subject.guardian_required_until else None
    verification = "sms_code" if request.delivery == "qr" else "sms_link"
    actor = f"guardian:{request.id}"
    for consent in pending:
        if consent.purpose.code in approved:
            notice = consent.purpose.current_notice
            end = now + timedelta(days=consent.purpose.retention_days)
            consent.status = "active"
            consent.guardian_authorized = True
            consent.granted_at = now
            # Guardian consent ends when the child reaches the guardian age (see README, "Turning 14").
            consent.expires_at = min(end, age_end) if age_end else end
            consent.notice_version, consent.notice_digest = notice.version, notice.digest
            assign_index(session, consent)
            consent.evidence = {
                "method": "checkbox",
                "channel": "sms_link" if request.delivery == "sms" else "qr_code",
                "locale": request.locale,
                "relationship": request.guardian_relationship,
                "guardian_verification": verification,
                "recorded_at": now.isoformat(),
                "notice_digest": notice.digest,
                "transmits_face_data": consent.purpose.transmits_face_data,
            }
            session.flush()
            record_event(
                session,
                org_id=request.org_id,
                actor=actor,
                action="consent.granted",
                object_type="consent",
                object_id=consent.id,
                data={
                    "subject_id": consent.subject_id,
                    "purpose": consent.purpose.code,
                    "guardian": True,
                    "guardian_request_id": request.id,
                    "notice_digest": notice.digest,
                    "verification": verification,
                },
            )
        else:
            reason = "guardian_declined" if consent.purpose.code in chosen or not approve else "not_selected"
            if consent.purpose.code in chosen and consent.purpose.code not in grantable:
                reason = "assessment_required"
            end_consent(session, consent, status="declined", actor=actor, reason=reason)
    audit_step(
        session,
        request,
        actor,
        f"guardian_request.{status}",
        approved=approved,
        declined=declined,
        verification=verification,
    )
    withdrawal_token = None
    if approved:
        last_end = max(c.expires_at for c in pending if c.expires_at is not None)
        withdrawal_token = new_link(session, request, kind="withdrawal", expires_at=last_end)
    session.flush()
    return Decision(status=status, approved=approved, declined=declined, withdrawal_token=withdrawal_token)


def consents_of_child(session: Session, request: GuardianRequest) -> list[Consent]:
    """Every consent the organization holds for the child of this request, newest first."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.org_id == request.org_id, Consent.subject_id == request.subject_id)
            .order_by(Consent.created_at.desc())
        )
    )


def withdraw(session: Session, link: GuardianLink, consent_id: str) -> Consent:
    """The guardian withdraws one of the child's consents; effective at once (R3)."""
    request = link.request
    consent = session.get(Consent, consent_id)
    if consent is None or consent.org_id != request.org_id or consent.subject_id != request.subject_id:
        raise NotFound("no such consent")
    if consent.status in WITHDRAWABLE and effective_status(consent, utcnow()) != "expired":
        end_consent(session, consent, status="revoked", actor=f"guardian:{request.id}", reason="guardian_withdrawal")
        audit_step(
            session,
            request,
            f"guardian:{request.id}",
            "guardian.withdrew",
            consent_id=consent.id,
            purpose=consent.purpose.code,
        )
    return consent
