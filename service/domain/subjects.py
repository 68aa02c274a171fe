"""People: registration with server-side age (R4) and erasure (R13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.consent_states import ENDABLE_STATUSES, end_consent
from service.errors import Conflict, NotFound, Unprocessable
from service.models import Consent, GuardianRequest, Subject, utcnow


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 1 March in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


#: Ages turn at midnight in China Standard Time, where the people this service serves live.
CHINA_TIME = timezone(timedelta(hours=8), "CST")


def guardian_age_moment(day: date) -> datetime:
    """The instant the person reaches the guardian age: midnight of that birthday, China time."""
    return datetime.combine(day, time(0), tzinfo=CHINA_TIME).astimezone(UTC)


def is_minor(subject: Subject, today: date) -> bool:
    return subject.guardian_required_until is not None and today < subject.guardian_required_until


def get_subject(session: Session, *, org_id: str, subject_id: str) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None or subject.org_id != org_id:
        raise NotFound(f"subject {subject_id} does not exist")
    return subject


def register_subject(
    session: Session, *, org_id: str, actor: str, external_ref: str, birth_date: date, guardian_age: int
) -> Subject:
    today = utcnow().date()
    if birth_date > today:
        raise Unprocessable("birth_date is in the future", details={"json": {"birth_date": ["is in the future"]}})
    if session.scalars(
        select(Subject.id).where(Subject.org_id == org_id, Subject.external_ref == external_ref)
    ).first():
        raise Conflict("a subject with this external_ref already exists", code="subject_exists")
    subject = Subject(
        org_id=org_id,
        external_ref=external_ref,
        birth_date=birth_date,
        guardian_required_until=add_years(birth_date, guardian_age),
    )
    session.add(subject)
    session.flush()
    # Pseudonymous: the audit trail names the subject by id only, never by reference or birth date.
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="subject.registered",
        object_type="subject",
        object_id=subject.id,
        data={"minor": is_minor(subject, today)},
    )
    return subject


def _close_guardian_requests(session: Session, subject: Subject, actor: str) -> None:
    """Erasure closes pending guardian requests and removes the guardians' numbers and links (R13)."""
    requests = session.scalars(select(GuardianRequest).where(GuardianRequest.subject_id == subject.id)).all()
    for request in requests:
        if request.status == "pending":
            request.status = "expired"
            request.decided_at = utcnow()
            record_event(
                session,
                org_id=request.org_id,
                actor=actor,
                action="guardian_request.expired",
                object_type="guardian_request",
                object_id=request.id,
                data={"reason": "subject_erased"},
            )
        request.phone_ciphertext = None
        request.phone_hash = None
        request.phone_masked = "+** ****"
        request.link_ciphertext = None
        request.otp_hash = None


def erase_subject(session: Session, *, org_id: str, actor: str, subject_id: str) -> Subject:
    """Erase the person's personal data and end their consents; audit records stay pseudonymous (R13)."""
    subject = get_subject(session, org_id=org_id, subject_id=subject_id)
    if subject.erased_at is not None:
        return subject
    consents = session.scalars(
        select(Consent).where(Consent.subject_id == subject.id, Consent.status.in_(ENDABLE_STATUSES))
    )
    for consent in consents:
        end_consent(session, consent, status="revoked", actor=actor, reason="subject_erased")
    _close_guardian_requests(session, subject, actor)
    subject.external_ref = None
    subject.birth_date = None
    subject.guardian_required_until = None
    subject.erased_at = utcnow()
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="subject.erased",
        object_type="subject",
        object_id=subject.id,
        data={},
    )
    return subject
