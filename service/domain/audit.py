"""The hash-chained audit trail (R15): append in the same transaction as the change, verify later."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import AuditEvent, AuditHead, Organization, utcnow

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON: the link of the chain."""
    body = canonical_json(
        {
            "org_id": event.org_id,
            "seq": event.seq,
            "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
            "actor": event.actor,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "data": event.data,
        }
    )
    return hashlib.sha256((event.prev_hash + body).encode()).hexdigest()


PENDING = "consent_gate.audit_pending"


def record_event(
    session: Session,
    *,
    org_id: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Add one event to the organization's chain when the transaction commits, in the order recorded.

    Callers never pass personal data in ``data``. The chain's head is locked only at commit
    (:func:`append_pending`), after every other lock the transaction takes: that keeps the lock order the
    same everywhere (see ``service.domain.consent_lifecycle``), and holds the per-organization head for
    the append alone.
    """
    pending: list[dict[str, Any]] = session.info.setdefault(PENDING, [])
    pending.append(
        {
            "org_id": org_id,
            "occurred_at": utcnow(),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "data": json.loads(canonical_json(data or {})),
        }
    )


def append_pending(session: Session) -> None:
    """Append the events recorded in this transaction to their chains (called before every commit)."""
    pending: list[dict[str, Any]] = session.info.pop(PENDING, [])
    if not pending:
        return
    session.flush()  # every other change (and its row locks) first; the chain's head is the last lock taken
    # The webhook deliveries these events cause, in the same commit (new rows: no lock taken on others).
    from service.outbox.events import queue_webhook_events

    queue_webhook_events(session, pending)
    heads: dict[str, AuditHead] = {}
    for org_id in sorted({item["org_id"] for item in pending}):
        head = session.scalars(select(AuditHead).where(AuditHead.org_id == org_id).with_for_update()).first()
        if head is None:
            head = AuditHead(org_id=org_id, seq=0, hash=GENESIS)
            session.add(head)
        heads[org_id] = head
    for item in pending:
        head = heads[item["org_id"]]
        event = AuditEvent(seq=head.seq + 1, prev_hash=head.hash, **item)
        event.hash = event_hash(event)
        head.seq, head.hash = event.seq, event.hash
        session.add(event)
    session.flush()


def discard_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


@orm_event.listens_for(Session, "before_commit")
def _append_before_commit(session: Session) -> None:
    append_pending(session)


@orm_event.listens_for(Session, "after_rollback")
def _discard_after_rollback(session: Session) -> None:
    discard_pending(session)


def list_events(session: Session, *, org_id: str, after: int, limit: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.org_id == org_id, AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(limit)
        )
    )


@dataclass
class ChainBreak:
    org_id: str
    position: int
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event id {self.event_id}" if self.event_id is not None else "end of chain"
        return f"organization {self.org_id}: position {self.position} ({where}): {self.problem}"


def _first_break(events: Iterator[AuditEvent], org_id: str) -> tuple[ChainBreak | None, int, str]:
    """Check links and hashes; return the first break (if any), the last good seq and its hash."""
    prev_hash, expected_seq = GENESIS, 1
    for event in events:
        if event.seq != expected_seq:
            return ChainBreak(org_id, expected_seq, event.id, f"expected seq {expected_seq}, found {event.seq}"), 0, ""
        if event.prev_hash != prev_hash:
            return ChainBreak(org_id, expected_seq, event.id, "prev_hash does not link to the previous event"), 0, ""
        recomputed = event_hash(event)
        if recomputed != event.hash:
            return ChainBreak(org_id, expected_seq, event.id, "content does not match its hash"), 0, ""
        prev_hash, expected_seq = event.hash, expected_seq + 1
    return None, expected_seq - 1, prev_hash


def verify_chain(session: Session, org_id: str) -> ChainBreak | None:
    """Walk one organization's events in insertion order; return the first break, if any.

    Edits change a hash, deletions leave a gap in ``seq`` or a chain shorter than its head, and
    reordering (rewriting ``seq``) breaks the ``prev_hash`` links.
    """
    result = session.scalars(
        select(AuditEvent).where(AuditEvent.org_id == org_id).order_by(AuditEvent.id).execution_options(yield_per=1000)
    )
    try:
        found, last_seq, last_hash = _first_break(iter(result), org_id)
    finally:
        result.close()  # the server-side cursor, even when the walk stopped early
    if found is not None:
        return found
    head = session.get(AuditHead, org_id)
    if head is not None and (head.seq != last_seq or head.hash != last_hash):
        return ChainBreak(org_id, last_seq + 1, None, f"chain ends at {last_seq} but its head says {head.seq}")
    return None


def verify_all(session: Session) -> list[ChainBreak]:
    breaks = []
    for org_id in session.scalars(select(Organization.id).order_by(Organization.created_at)):
        found = verify_chain(session, org_id)
        if found is not None:
            breaks.append(found)
    return breaks
