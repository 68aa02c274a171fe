"""People: registration with server-side age (R4) and erasure (R13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.consent_lifecycle import ENDABLE_CONSENT, ConsentStatus, end_consent, lock_subject
from service.domain.pages import Page, page
from service.domain.statuses import GuardianRequestStatus
from service.errors import Conflict, NotFound, Unprocessable
from service.keys.crypto import DataProtector
from service.models import Consent, GuardianLink, GuardianRequest, Subject, utcnow
from service.outbox import erase_queued_to_subject


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


def reference_hash(protector: DataProtector, *, org_id: str, external_ref: str) -> str:
    """The keyed hash that finds a person by reference within one organization (R14).

    The organization is hashed with the reference: the same reference in two organizations gives two
    unrelated hashes, so the database does not tell that two organizations know one reference.
    """
    return protector.lookup_hash(f"subject-ref\x1f{org_id}\x1f{external_ref}")


def find_subjects_by_reference(
    session: Session, *, org_id: str, external_ref: str, protector: DataProtector
) -> list[Subject]:
    """The organization's people with this reference: none or one (the reference is unique per organization)."""
    digest = reference_hash(protector, org_id=org_id, external_ref=external_ref)
    return list(
        session.scalars(select(Subject).where(Subject.org_id == org_id, Subject.external_ref_hash == digest)).all()
    )


def list_subjects(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[Subject]:
    """The organization's people, oldest first, erased ones included."""
    query = select(Subject).where(Subject.org_id == org_id)
    return page(session, query, Subject, kind="subjects", cursor=cursor, limit=limit)


def register_subject(
    session: Session,
    *,
    org_id: str,
    actor: str,
    external_ref: str,
    birth_date: date,
    guardian_age: int,
    protector: DataProtector,
) -> Subject:
    """Register a person; their reference, birth date and guardian age day are stored encrypted (R4, R14).

    The reference is unique per organization through its keyed hash (a unique index: of two registrations
    racing with one reference, the second fails at flush and the view answers 409 ``subject_exists``).
    """
    today = utcnow().date()
    if birth_date > today:
        raise Unprocessable("birth_date is in the future", details={"json": {"birth_date": ["is in the future"]}})
    digest = reference_hash(protector, org_id=org_id, external_ref=external_ref)
    if session.scalars(select(Subject.id).where(Subject.org_id == org_id, Subject.external_ref_hash == digest)).first():
        raise Conflict("a subject with this external_ref already exists", code="subject_exists")
    subject = Subject(
        org_id=org_id,
        external_ref=external_ref,
        external_ref_hash=digest,
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
    """Erasure closes pending guardian requests and removes what reaches the guardian (R13).

    Numbers, their lookup hashes, the child's display name, the link tokens and the links themselves:
    nothing left opens a page or finds the phone. The SMS records of the last hour keep the phone's
    keyed hash until ``consent-gate sweep`` clears it, an hour later (see ``forget_phone_lookups``).
    """
    now = utcnow()
    requests = session.scalars(
        select(GuardianRequest).where(GuardianRequest.subject_id == subject.id).order_by(GuardianRequest.id)
    ).all()
    for request in requests:
        closed = session.execute(
            update(GuardianRequest)
            .where(GuardianRequest.id == request.id, GuardianRequest.status == GuardianRequestStatus.PENDING)
            .values(status=GuardianRequestStatus.EXPIRED.value, decided_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if closed:
            record_event(
                session,
                org_id=request.org_id,
                actor=actor,
                action="guardian_request.expired",
                object_type="guardian_request",
                object_id=request.id,
                data={"reason": "subject_erased"},
            )
        session.refresh(request)
        request.phone_ciphertext = None
        request.phone_hash = None
        request.phone_masked = "+** ****"
        request.link_ciphertext = None
        request.child_name_ciphertext = None
        request.otp_hash = None
        if request.delivery_status == "queued":  # its link SMS is not sent now (below)
            request.delivery_status, request.delivery_error = "failed", "phone_erased"
    ids = [request.id for request in requests]
    if ids:
        # Imported here: the guardian flow imports this module (a child's age, erasure's checks).
        from service.domain.guardian.messages import forget_phone_lookups

        session.execute(delete(GuardianLink).where(GuardianLink.request_id.in_(ids)))
        forget_phone_lookups(session, request_ids=ids)
    # What is still queued to the guardian goes unsent, its body (number, link, code) erased.
    erase_queued_to_subject(session, subject_id=subject.id)


def erase_subject(session: Session, *, org_id: str, actor: str, subject_id: str) -> Subject:
    """Erase the person's personal data and end their consents; audit records stay pseudonymous (R13).

    Locks in the lifecycle's order: the subject, its guardian requests, then its consents.
    """
    get_subject(session, org_id=org_id, subject_id=subject_id)
    subject = lock_subject(session, subject_id)
    assert subject is not None
    if subject.erased_at is not None:
        return subject
    _close_guardian_requests(session, subject, actor)
    # Imported here: the rights flow imports this module (a person's age, their subject).
    from service.domain.rights import forget_rights_of_subject

    forget_rights_of_subject(session, subject.id)  # page links, the words of requests and their answers
    consents = session.scalars(select(Consent).where(Consent.subject_id == subject.id).order_by(Consent.id)).all()
    for consent in consents:
        if consent.status in ENDABLE_CONSENT:
            end_consent(session, consent, status=ConsentStatus.REVOKED, actor=actor, reason="subject_erased")
        consent.end_note = None
    subject.external_ref = None
    subject.external_ref_hash = None
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
