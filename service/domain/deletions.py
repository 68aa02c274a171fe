"""Deletion confirmations (R13, PIPL 47): who owes the deletion of a consent's face data once it ended.

When a consent ends (revoked, expired, declined, erased, moved to ``reconsent_required``), every API key
that received ``allow`` for it owes a deletion, due ``DELETION_HOURS`` after the end. The owed rows are
made in the transaction that ends the consent (:func:`owe_deletions`), from the verification records
(``INSERT`` of the distinct allowed keys, read through a partial index of allows); the verify path itself
writes nothing more.

**A verification racing the end.** On PostgreSQL a verification that read the consent as active just
before the end committed may commit its ``allow`` after the end's transaction read the records: that key
would owe nothing. The sweep closes the gap (:func:`owe_late_allows`): it looks again at every consent
that ended within the last ``DELETION_HOURS`` and owes what is missing, with the same end and due time.
(On SQLite every write transaction holds the one writer lock, so the two never overlap.) Rows are unique
per consent and key and inserted with ``ON CONFLICT DO NOTHING``, so doing it twice is harmless.

Once due and still unconfirmed, a deletion is overdue; the sweep records ``deletion.overdue`` once for each
(:func:`record_overdue`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, exists, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.pages import Page, page
from service.domain.statuses import ConsentStatus
from service.errors import NotFound
from service.models import Consent, Deletion, Verification, new_sequential_id, utcnow

#: Statuses in which a consent no longer permits processing: its allowed keys owe a deletion.
ENDED_FOR_DELETION = (
    ConsentStatus.REVOKED,
    ConsentStatus.EXPIRED,
    ConsentStatus.DECLINED,
    ConsentStatus.RECONSENT_REQUIRED,
)
#: Allowed verifications, as the partial index ``ix_verifications_allowed_consent`` says it: a literal, not a
#: parameter, so that PostgreSQL's generic plans may use that index too.
ALLOWED = Verification.decision == literal_column("'allow'")
#: Consent ids read per statement (an ``IN`` list).
CHUNK = 500


class DeletionStatus(StrEnum):
    PENDING = "pending"  # not confirmed yet, overdue or not
    OVERDUE = "overdue"  # not confirmed, past its due time
    CONFIRMED = "confirmed"


@dataclass(frozen=True)
class OwedDeletion:
    """A deletion as the API shows it: the row, with its due time and status as of now."""

    id: str
    consent_id: str
    subject_id: str
    purpose: str
    api_key_id: str
    status: str
    ended_at: datetime
    due_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str | None

    @classmethod
    def of(cls, row: Deletion, *, hours: int, now: datetime) -> OwedDeletion:
        due_at = row.ended_at + timedelta(hours=hours)
        if row.confirmed_at is not None:
            status = DeletionStatus.CONFIRMED
        elif due_at <= now:
            status = DeletionStatus.OVERDUE
        else:
            status = DeletionStatus.PENDING
        return cls(
            id=row.id,
            consent_id=row.consent_id,
            subject_id=row.consent.subject_id,
            purpose=row.consent.purpose.code,
            api_key_id=row.api_key_id,
            status=status.value,
            ended_at=row.ended_at,
            due_at=due_at,
            confirmed_at=row.confirmed_at,
            confirmed_by=row.confirmed_by,
        )


def end_moment(consent: Consent, now: datetime) -> datetime:
    """When the consent stopped permitting processing: its ``ended_at`` (``now`` if it has none, paused by a
    notice change), an expiry at its ``expires_at`` even when the sweep recorded it later."""
    end = consent.ended_at or now
    if consent.status == ConsentStatus.EXPIRED and consent.expires_at is not None:
        return min(consent.expires_at, end)
    return end


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Deletion).values(rows).on_conflict_do_nothing(index_elements=["consent_id", "api_key_id"])
    session.execute(statement)


def _already_owed() -> Any:
    """Whether the verification's key already owes its consent's deletion (correlated to ``verifications``)."""
    return exists().where(
        Deletion.consent_id == Verification.consent_id, Deletion.api_key_id == Verification.api_key_id
    )


def _allowed_keys(session: Session, consent_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(consent id, API key id) of every key that received ``allow`` for these consents and owes nothing yet."""
    owed = _already_owed()
    rows = session.execute(
        select(Verification.consent_id, Verification.api_key_id)
        .where(Verification.consent_id.in_(consent_ids), ALLOWED, ~owed)
        .distinct()
    )
    return [(str(consent_id), str(key_id)) for consent_id, key_id in rows]


def owe_deletions(session: Session, ended: Iterable[tuple[str, str, datetime]]) -> int:
    """Owe a deletion for each key allowed to use each ended consent, given as (consent id, org id, end).

    Idempotent: a key already owing a consent's deletion keeps the row it has. Returns the rows added.
    """
    by_consent = {consent_id: (org_id, ended_at) for consent_id, org_id, ended_at in ended}
    ids = list(by_consent)
    added = 0
    for start in range(0, len(ids), CHUNK):
        pairs = _allowed_keys(session, ids[start : start + CHUNK])
        if not pairs:
            continue
        now = utcnow()
        rows = [
            {
                "id": new_sequential_id(),
                "org_id": by_consent[consent_id][0],
                "consent_id": consent_id,
                "api_key_id": key_id,
                "ended_at": by_consent[consent_id][1],
                "created_at": now,
            }
            for consent_id, key_id in pairs
        ]
        _insert_ignoring_duplicates(session, rows)
        added += len(rows)
    return added


def owe_deletions_for(session: Session, consent: Consent) -> int:
    """Owe the deletions of one consent that has just ended (called by ``end_consent``)."""
    return owe_deletions(session, [(consent.id, consent.org_id, end_moment(consent, utcnow()))])


def owe_late_allows(session: Session, *, hours: int, now: datetime | None = None, limit: int = 5000) -> int:
    """Owe the deletions that allows recorded after their consent's end missed (a race on PostgreSQL).

    Looks at the consents that ended within the last ``hours`` (by ``updated_at``, which every transition
    sets) and that some allowed key owes nothing for yet. Returns the rows added.
    """
    moment = now or utcnow()
    owed = _already_owed()
    candidates = session.execute(
        select(Consent.id, Consent.org_id, Consent.status, Consent.ended_at, Consent.updated_at, Consent.expires_at)
        .where(
            Consent.updated_at >= moment - timedelta(hours=hours),
            Consent.status.in_([status.value for status in ENDED_FOR_DELETION]),
            exists().where(Verification.consent_id == Consent.id, ALLOWED, ~owed),
        )
        .limit(limit)
    ).all()
    ended = []
    for consent_id, org_id, status, ended_at, updated_at, expires_at in candidates:
        end = ended_at or updated_at  # reconsent_required keeps no ended_at: it moved at its last update
        if status == ConsentStatus.EXPIRED and expires_at is not None:
            end = min(end, expires_at)
        ended.append((consent_id, org_id, end))
    return owe_deletions(session, ended)


def record_overdue(session: Session, *, hours: int, now: datetime | None = None, limit: int = 1000) -> int:
    """Record ``deletion.overdue`` once for each unconfirmed deletion past its due time; return how many."""
    moment = now or utcnow()
    due = session.scalars(
        select(Deletion)
        .where(
            Deletion.confirmed_at.is_(None),
            Deletion.overdue_at.is_(None),
            Deletion.ended_at <= moment - timedelta(hours=hours),
        )
        .order_by(Deletion.id)
        .limit(limit)
        .with_for_update(of=Deletion, skip_locked=True)
    ).all()
    recorded = 0
    for deletion in due:
        claimed = session.execute(
            update(Deletion)
            .where(Deletion.id == deletion.id, Deletion.overdue_at.is_(None), Deletion.confirmed_at.is_(None))
            .values(overdue_at=moment)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        recorded += 1
        record_event(
            session,
            org_id=deletion.org_id,
            actor="system:sweep",
            action="deletion.overdue",
            object_type="deletion",
            object_id=deletion.id,
            data={
                "consent_id": deletion.consent_id,
                "subject_id": deletion.consent.subject_id,
                "purpose": deletion.consent.purpose.code,
                "api_key_id": deletion.api_key_id,
                "due_at": (deletion.ended_at + timedelta(hours=hours)).isoformat(),
            },
        )
    return recorded


def _status_filter(status: str | None, *, hours: int, now: datetime) -> Any:
    due_before = now - timedelta(hours=hours)
    if status == DeletionStatus.PENDING:
        return Deletion.confirmed_at.is_(None)
    if status == DeletionStatus.OVERDUE:
        return and_(Deletion.confirmed_at.is_(None), Deletion.ended_at <= due_before)
    if status == DeletionStatus.CONFIRMED:
        return Deletion.confirmed_at.is_not(None)
    return None


def list_deletions(
    session: Session,
    *,
    org_id: str,
    api_key_id: str | None,
    status: str | None,
    hours: int,
    cursor: str | None,
    limit: int,
) -> Page[OwedDeletion]:
    """The organization's deletions (``api_key_id``: only that key's), oldest first."""
    now = utcnow()
    query = select(Deletion).where(Deletion.org_id == org_id)
    if api_key_id is not None:
        query = query.where(Deletion.api_key_id == api_key_id)
    condition = _status_filter(status, hours=hours, now=now)
    if condition is not None:
        query = query.where(condition)
    return page(session, query, Deletion, kind="deletions", cursor=cursor, limit=limit).map(
        lambda row: OwedDeletion.of(row, hours=hours, now=now)
    )


def confirm_deletion(
    session: Session, *, org_id: str, deletion_id: str, api_key_id: str | None, actor: str, hours: int
) -> OwedDeletion:
    """Record that the key deleted the consent's face data; confirming again changes nothing.

    ``api_key_id``: only that key's deletion may be confirmed (a verify key); ``None``: any of the
    organization's (an admin confirming on a system's behalf, recorded as such in ``confirmed_by`` and in
    the audit trail). Anything else answers 404, as another organization's deletion does.
    """
    deletion = session.get(Deletion, deletion_id) if 1 <= len(deletion_id) <= 36 else None
    if deletion is None or deletion.org_id != org_id or (api_key_id is not None and deletion.api_key_id != api_key_id):
        raise NotFound("no such deletion")
    now = utcnow()
    claimed = session.execute(
        update(Deletion)
        .where(Deletion.id == deletion.id, Deletion.confirmed_at.is_(None))
        .values(confirmed_at=now, confirmed_by=actor)
        .execution_options(synchronize_session=False)
    )
    session.refresh(deletion)
    if claimed.rowcount:  # type: ignore[attr-defined]
        due_at = deletion.ended_at + timedelta(hours=hours)
        record_event(
            session,
            org_id=org_id,
            actor=actor,
            action="deletion.confirmed",
            object_type="deletion",
            object_id=deletion.id,
            data={
                "consent_id": deletion.consent_id,
                "subject_id": deletion.consent.subject_id,
                "purpose": deletion.consent.purpose.code,
                "api_key_id": deletion.api_key_id,
                "on_behalf": actor != f"api_key:{deletion.api_key_id}",
                "late": now > due_at,
            },
        )
    return OwedDeletion.of(deletion, hours=hours, now=now)


def deletion_counts(session: Session, *, org_id: str, hours: int, now: datetime | None = None) -> dict[str, int]:
    """For the compliance report: ``pending`` (unconfirmed, overdue included), ``overdue``, ``confirmed``."""
    moment = now or utcnow()
    unconfirmed = Deletion.confirmed_at.is_(None)
    overdue = and_(unconfirmed, Deletion.ended_at <= moment - timedelta(hours=hours))
    row = session.execute(
        select(
            func.count(case((unconfirmed, 1))),
            func.count(case((overdue, 1))),
            func.count(case((Deletion.confirmed_at.is_not(None), 1))),
        ).where(Deletion.org_id == org_id)
    ).one()
    return {"pending": row[0] or 0, "overdue": row[1] or 0, "confirmed": row[2] or 0}


__all__ = [
    "ENDED_FOR_DELETION",
    "DeletionStatus",
    "OwedDeletion",
    "confirm_deletion",
    "deletion_counts",
    "end_moment",
    "list_deletions",
    "owe_deletions",
    "owe_deletions_for",
    "owe_late_allows",
    "record_overdue",
]
