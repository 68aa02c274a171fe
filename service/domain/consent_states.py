"""How a consent's status moves over time and ends, shared by withdrawal, erasure and expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.models import Consent, utcnow

#: Statuses a consent can still leave by withdrawal or erasure.
ENDABLE_STATUSES = ("active", "pending_guardian", "reconsent_required")


def effective_status(consent: Consent, now: datetime) -> str:
    """The status as of ``now``: an active consent past its ``expires_at`` is expired (R8)."""
    if consent.status == "active" and consent.expires_at is not None and consent.expires_at <= now:
        return "expired"
    return consent.status


def end_consent(session: Session, consent: Consent, *, status: str, actor: str, reason: str | None) -> None:
    """Move a consent to a final status and record it; earlier lawful processing stays recorded (R3)."""
    now = utcnow()
    consent.status = status
    consent.ended_at = now
    consent.ended_by = actor
    consent.end_reason = reason
    session.flush()
    record_event(
        session,
        org_id=consent.org_id,
        actor=actor,
        action=f"consent.{status}",
        object_type="consent",
        object_id=consent.id,
        data={"subject_id": consent.subject_id, "purpose": consent.purpose.code, "reason": reason},
    )


def expiry_reason(consent: Consent) -> str:
    """Why an active consent ran out: the child reached the guardian age, or the retention period ended."""
    if consent.guardian_authorized and consent.granted_at and consent.expires_at:
        full_term = consent.granted_at + timedelta(days=consent.purpose.retention_days)
        if consent.expires_at < full_term:
            return "guardian_age_reached"
    return "retention_period_ended"


def persist_expiry(session: Session, consent: Consent) -> bool:
    """Record the expiry of an overdue active consent found on a read; True if it did."""
    if consent.status == "active" and effective_status(consent, utcnow()) == "expired":
        end_consent(session, consent, status="expired", actor="system:sweep", reason=expiry_reason(consent))
        return True
    return False


def expire_overdue(session: Session, *, now: datetime | None = None, limit: int = 1000) -> int:
    """End active consents past their ``expires_at`` (R8), each with its audit event; return how many."""
    moment = now or utcnow()
    overdue = session.scalars(
        select(Consent)
        .where(Consent.status == "active", Consent.expires_at <= moment)
        .order_by(Consent.expires_at)
        .limit(limit)
        .with_for_update(of=Consent, skip_locked=True)
    ).all()
    for consent in overdue:
        end_consent(session, consent, status="expired", actor="system:sweep", reason=expiry_reason(consent))
    return len(overdue)
