"""How a consent's status moves over time and ends, shared by withdrawal, erasure and expiry."""

from __future__ import annotations

from datetime import datetime

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
