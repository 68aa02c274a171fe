"""How a consent's status moves, in one place: activation, ending, expiry, and the locks they take.

**A state changes once.** Every transition is a compare-and-set: ``UPDATE consents SET status = :to WHERE
id = :id AND status IN (:expected)``. Whoever changes the row first wins; the loser sees no row changed
and answers 409 ``state_changed`` (or, for a revoke that finds the consent already revoked, the same 200
as before). So a revoke that answered 200 is never undone by a racing approval, erasure, expiry or sweep.

**Locks, always in this order** (a transaction takes any subset, never in another order), so that no two
transactions wait for each other:

1. the subject row (:func:`lock_subject`) — every change to one person's consents starts here;
2. the organization row, for SMS allowances (``service.domain.guardian.messages``);
3. the guardian request row (its compare-and-set claim, the one-time-code counter), then its links and
   SMS records;
4. purpose rows, by id: ``FOR SHARE`` to grant on the current notice (:func:`take_notice`), ``FOR UPDATE``
   to publish a notice (``service.domain.purposes.publish_notice``);
5. consent rows (the compare-and-set itself);
6. the organization's status list (``service.domain.status_lists.allocate_index``);
7. the organization's audit head, taken at commit (``service.domain.audit.append_pending``).

Sweeps (``expire_overdue``, ``expire_if_due``) take no subject lock: they start at the request or the
consent rows (``SKIP LOCKED``), a later part of the same order, and change only what is still in the state
they expect.

On SQLite every write transaction holds the database's write lock from its start (``BEGIN IMMEDIATE``),
which serializes them; the row locks matter on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from service.domain.audit import record_event
from service.domain.deletions import owe_deletions_for
from service.domain.status_lists import assign_index
from service.domain.statuses import (
    ENDABLE_CONSENT,
    FINAL_CONSENT,
    LIVE_CONSENT,
    ConsentStatus,
    GuardianRequestStatus,
)
from service.errors import Conflict
from service.models import Consent, Notice, Purpose, Subject, utcnow

__all__ = [
    "ENDABLE_CONSENT",
    "FINAL_CONSENT",
    "LIVE_CONSENT",
    "ConsentStatus",
    "GuardianRequestStatus",
    "StateChanged",
    "activate",
    "effective_status",
    "end_consent",
    "expire_overdue",
    "expiry_reason",
    "lock_subject",
    "persist_expiry",
    "record_refusal",
    "take_notice",
]


class StateChanged(Conflict):
    """Another request changed the same thing first; this one changed nothing."""

    code = "state_changed"

    def __init__(self, message: str = "this changed while the request was handled; read it again", **kwargs: Any):
        super().__init__(message, **kwargs)


def lock_subject(session: Session, subject_id: str) -> Subject | None:
    """Take the person's row lock: the first lock of every change to their consents (see the module doc).

    ``FOR NO KEY UPDATE``: it serializes changes to one person without blocking inserts that merely
    reference the row. The row is read afresh, whatever the session held.
    """
    return session.scalars(
        select(Subject)
        .where(Subject.id == subject_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).first()


def lock_purpose(session: Session, purpose_id: str, *, exclusive: bool) -> Purpose:
    """The purpose read afresh under its row lock: shared to grant on its notice, exclusive to change it."""
    return session.scalars(
        select(Purpose)
        .where(Purpose.id == purpose_id)
        .with_for_update(read=not exclusive, key_share=exclusive)
        .options(selectinload(Purpose.notices))
        .execution_options(populate_existing=True)
    ).one()


def take_notice(session: Session, purpose: Purpose) -> Notice:
    """The purpose's current notice, under a shared lock that a notice change waits for (R5).

    A grant and a material notice change thus never overlap: either the grant commits first and the
    change moves it to ``reconsent_required``, or the change commits first and the grant sees the new
    version (and refuses a stale one).
    """
    return lock_purpose(session, purpose.id, exclusive=False).current_notice


def _compare_and_set(session: Session, consent: Consent, *, expected: Iterable[str], values: dict[str, Any]) -> bool:
    """Write ``values`` if the consent's status is still one of ``expected``; True if this call did."""
    now = utcnow()
    result = session.execute(
        update(Consent)
        .where(Consent.id == consent.id, Consent.status.in_([str(status) for status in expected]))
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(consent)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def activate(
    session: Session,
    consent: Consent,
    *,
    actor: str,
    notice: Notice,
    granted_at: datetime,
    expires_at: datetime,
    evidence: dict[str, Any],
) -> None:
    """Make a consent active on ``notice``: an adult's new consent, or a guardian's approval of a pending one.

    A new consent is inserted active (the unique live index refuses a second live one); a pending one
    moves from ``pending_guardian`` by compare-and-set, or :class:`StateChanged` if it moved first.
    One audit payload for both, so the trail reads the same whoever consented.
    """
    values: dict[str, Any] = {
        "status": ConsentStatus.ACTIVE.value,
        "granted_at": granted_at,
        "expires_at": expires_at,
        "notice_version": notice.version,
        "notice_digest": notice.digest,
        "guardian_authorized": consent.guardian_request_id is not None,
        "evidence": evidence,
    }
    if consent.id is None or consent not in session:
        for name, value in values.items():
            setattr(consent, name, value)
        session.add(consent)
        session.flush()
    elif not _compare_and_set(session, consent, expected=[ConsentStatus.PENDING_GUARDIAN], values=values):
        raise StateChanged(f"consent {consent.id} is {consent.status} now", details={"consent_id": consent.id})
    assign_index(session, consent)
    session.flush()
    record_event(
        session,
        org_id=consent.org_id,
        actor=actor,
        action="consent.granted",
        object_type="consent",
        object_id=consent.id,
        data={
            "subject_id": consent.subject_id,
            "purpose": consent.purpose.code,
            "notice_version": notice.version,
            "notice_digest": notice.digest,
            "method": evidence.get("method"),
            "channel": evidence.get("channel"),
            "guardian": consent.guardian_authorized,
            "guardian_request_id": consent.guardian_request_id,
            "possession": evidence.get("possession"),
            "transmission_consent": evidence.get("transmission_consent"),
        },
    )


def record_refusal(
    session: Session,
    consent: Consent,
    *,
    actor: str,
    notice: Notice,
    declined_at: datetime,
    evidence: dict[str, Any],
) -> None:
    """Insert an adult's refusal as a ``declined`` consent, recorded as carefully as a grant (PIPL 16).

    It is final from the start (``ended_at`` is the moment of the refusal, ``end_reason`` ``person_declined``)
    and never live, so the unique live index does not concern it; its audit event carries the grant's
    payload, so the trail reads a refusal as it reads a consent.
    """
    values: dict[str, Any] = {
        "status": ConsentStatus.DECLINED.value,
        "notice_version": notice.version,
        "notice_digest": notice.digest,
        "guardian_authorized": False,
        "evidence": evidence,
        "ended_at": declined_at,
        "ended_by": actor,
        "end_reason": "person_declined",
    }
    for name, value in values.items():
        setattr(consent, name, value)
    session.add(consent)
    session.flush()
    record_event(
        session,
        org_id=consent.org_id,
        actor=actor,
        action="consent.declined",
        object_type="consent",
        object_id=consent.id,
        data={
            "subject_id": consent.subject_id,
            "purpose": consent.purpose.code,
            "reason": "person_declined",
            "notice_version": notice.version,
            "notice_digest": notice.digest,
            "method": evidence.get("method"),
            "channel": evidence.get("channel"),
            "guardian": False,
            "guardian_request_id": None,
            "possession": None,
            "transmission_consent": evidence.get("transmission_consent"),
        },
    )


def end_consent(
    session: Session,
    consent: Consent,
    *,
    status: ConsentStatus,
    actor: str,
    reason: str,
    note: str | None = None,
    expected: Collection[str] = ENDABLE_CONSENT,
    evidence: dict[str, Any] | None = None,
) -> bool:
    """Move a consent to a final status if it is still in ``expected``, and record it; True if this call did.

    ``reason`` is a code and goes into the audit trail; ``note`` (a person's own words) stays on the row
    only, so that erasure can remove it. Earlier lawful processing stays recorded (R3). ``evidence``, when
    given, replaces the consent's evidence in the same compare-and-set (a refusal given on a signed form).
    Each API key that received ``allow`` for the consent owes a deletion from then on (R13).
    """
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "ended_at": now,
        "ended_by": actor,
        "end_reason": reason,
        "end_note": note,
    }
    if evidence is not None:
        values["evidence"] = evidence
    if not _compare_and_set(session, consent, expected=expected, values=values):
        return False
    # Every key that was allowed to use it now owes the deletion of its face data (R13).
    owe_deletions_for(session, consent)
    record_event(
        session,
        org_id=consent.org_id,
        actor=actor,
        action=f"consent.{status.value}",
        object_type="consent",
        object_id=consent.id,
        data={"subject_id": consent.subject_id, "purpose": consent.purpose.code, "reason": reason},
    )
    return True


def effective_status(consent: Consent, now: datetime) -> str:
    """The status as of ``now``: an active consent past its ``expires_at`` is expired (R8)."""
    if consent.status == ConsentStatus.ACTIVE and consent.expires_at is not None and consent.expires_at <= now:
        return ConsentStatus.EXPIRED.value
    return consent.status


def expiry_reason(consent: Consent) -> str:
    """Why an active consent ran out: the child reached the guardian age, or the retention period ended."""
    if consent.guardian_authorized and consent.granted_at and consent.expires_at:
        full_term = consent.granted_at + timedelta(days=consent.purpose.retention_days)
        if consent.expires_at < full_term:
            return "guardian_age_reached"
    return "retention_period_ended"


def _expire(session: Session, consent: Consent, now: datetime) -> bool:
    # Only an active consent whose end has passed: a revoke or erasure that got there first wins.
    if consent.status != ConsentStatus.ACTIVE or effective_status(consent, now) != ConsentStatus.EXPIRED:
        return False
    return end_consent(
        session,
        consent,
        status=ConsentStatus.EXPIRED,
        actor="system:sweep",
        reason=expiry_reason(consent),
        expected=[ConsentStatus.ACTIVE],
    )


def persist_expiry(session: Session, consent: Consent) -> bool:
    """Record the expiry of an overdue active consent found on a read; True if it did."""
    return _expire(session, consent, utcnow())


def expire_overdue(session: Session, *, now: datetime | None = None, limit: int = 1000) -> int:
    """End active consents past their ``expires_at`` (R8), each with its audit event; return how many.

    Rows another transaction holds are skipped (``SKIP LOCKED``) and left for the next sweep.
    """
    moment = now or utcnow()
    overdue = session.scalars(
        select(Consent)
        .where(Consent.status == ConsentStatus.ACTIVE, Consent.expires_at <= moment)
        .order_by(Consent.expires_at)
        .limit(limit)
        .with_for_update(of=Consent, skip_locked=True)
    ).all()
    return sum(_expire(session, consent, moment) for consent in overdue)
