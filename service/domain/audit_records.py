"""Records of processing for supervisors (R15): exports of the audit trail and signed checkpoints."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from service.domain.audit import ChainBreak, verify_chain
from service.keys.tokens import ALGORITHM, KeySet
from service.models import AuditCheckpoint, AuditEvent, AuditHead, Organization, utcnow

EXPORT_FIELDS = (
    "org_id",
    "seq",
    "occurred_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "data",
    "prev_hash",
    "hash",
)
CHECKPOINT_TYPE = "audit-checkpoint+jws"


def _rows(session: Session, org_id: str | None, since: datetime | None, page: int = 1000) -> Iterator[dict[str, Any]]:
    """Events in (organization, seq) order, read a page per short transaction so no lock is held while
    the caller streams (on SQLite every transaction holds the write lock)."""
    last: tuple[str, int] = ("", 0)
    while True:
        query = select(AuditEvent).where(tuple_(AuditEvent.org_id, AuditEvent.seq) > last)
        if org_id is not None:
            query = query.where(AuditEvent.org_id == org_id)
        if since is not None:
            query = query.where(AuditEvent.occurred_at >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
        events: list[dict[str, Any]] = [
            {
                "org_id": event.org_id,
                "seq": event.seq,
                "occurred_at": event.occurred_at.isoformat(),
                "actor": event.actor,
                "action": event.action,
                "object_type": event.object_type,
                "object_id": event.object_id,
                "data": event.data,
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
            for event in session.scalars(query.order_by(AuditEvent.org_id, AuditEvent.seq).limit(page))
        ]
        session.rollback()  # read-only: end the transaction before handing rows out
        yield from events
        if len(events) < page:
            return
        last = (events[-1]["org_id"], events[-1]["seq"])


def export_events(session: Session, *, org_id: str | None, since: datetime | None, fmt: str) -> Iterator[str]:
    """The trail as JSON lines or CSV (``data`` as a JSON column), in chain order, one chunk per event."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        yield buffer.getvalue()
        for row in _rows(session, org_id, since):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow({**row, "data": json.dumps(row["data"], ensure_ascii=False, sort_keys=True)})
            yield buffer.getvalue()
        return
    for row in _rows(session, org_id, since):
        yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def create_checkpoints(session: Session, keys: KeySet) -> list[AuditCheckpoint]:
    """Sign the current head of every organization's chain, so later rewrites before it are provable."""
    made = []
    for head in session.scalars(select(AuditHead).order_by(AuditHead.org_id)):
        if head.seq == 0:
            continue
        claims = {"org_id": head.org_id, "seq": head.seq, "hash": head.hash, "iat": int(utcnow().timestamp())}
        payload = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
        signature = jwt.api_jws.PyJWS().encode(
            payload, keys.signing_key, algorithm=ALGORITHM, headers={"typ": CHECKPOINT_TYPE, "kid": keys.kid}
        )
        checkpoint = AuditCheckpoint(org_id=head.org_id, seq=head.seq, hash=head.hash, signature=signature)
        session.add(checkpoint)
        made.append(checkpoint)
    session.flush()
    return made


def _checkpoint_break(session: Session, checkpoint: AuditCheckpoint, keys: KeySet) -> ChainBreak | None:
    try:
        kid = jwt.get_unverified_header(checkpoint.signature).get("kid")
        key = keys.public_keys[str(kid)]
        payload = json.loads(jwt.api_jws.PyJWS().decode(checkpoint.signature, key, algorithms=[ALGORITHM]))
    except (jwt.PyJWTError, KeyError, ValueError):
        return ChainBreak(checkpoint.org_id, checkpoint.seq, None, "checkpoint signature is not valid")
    if (payload.get("org_id"), payload.get("seq"), payload.get("hash")) != (
        checkpoint.org_id,
        checkpoint.seq,
        checkpoint.hash,
    ):
        return ChainBreak(checkpoint.org_id, checkpoint.seq, None, "checkpoint row does not match its signature")
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.org_id == checkpoint.org_id, AuditEvent.seq == checkpoint.seq)
    ).first()
    if event is None or event.hash != checkpoint.hash:
        return ChainBreak(
            checkpoint.org_id,
            checkpoint.seq,
            event.id if event else None,
            f"the chain no longer matches the checkpoint signed at {checkpoint.created_at.isoformat()}: "
            "events up to here were rewritten",
        )
    return None


def verify_records(session: Session, keys: KeySet) -> list[ChainBreak]:
    """Every organization's chain, and every signed checkpoint against it; the first break of each."""
    breaks = []
    for org_id in session.scalars(select(Organization.id).order_by(Organization.created_at)):
        found: ChainBreak | None = None
        for checkpoint in session.scalars(
            select(AuditCheckpoint).where(AuditCheckpoint.org_id == org_id).order_by(AuditCheckpoint.seq)
        ):
            found = _checkpoint_break(session, checkpoint, keys)
            if found is not None:
                break
        found = found or verify_chain(session, org_id)
        if found is not None:
            breaks.append(found)
    return breaks
