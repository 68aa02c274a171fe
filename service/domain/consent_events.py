"""The consent change feed: consent events of the audit trail, in commit order.

The cursor is the audit ``seq``. Each organization's events are numbered under the row lock of its chain
head, held until commit, so an event never becomes visible after one with a higher ``seq``: a reader that
resumes from its last cursor misses nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import AuditEvent

FEED_ACTIONS = {
    "consent.granted": "granted",
    "consent.revoked": "revoked",
    "consent.expired": "expired",
    "consent.declined": "declined",
    "consent.reconsent_required": "reconsent_required",
    "subject.erased": "erased",
    # A key owes the deletion of an ended consent's face data and has not confirmed it in time (R13).
    "deletion.overdue": "deletion_overdue",
}


def consent_events(session: Session, *, org_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id, AuditEvent.seq > after, AuditEvent.action.in_(list(FEED_ACTIONS)))
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    events = []
    for event in rows:
        erased = event.action == "subject.erased"
        consent_id = event.data.get("consent_id") if event.object_type == "deletion" else event.object_id
        events.append(
            {
                "cursor": event.seq,
                "type": FEED_ACTIONS[event.action],
                "consent_id": None if erased else consent_id,
                "subject_id": event.object_id if erased else event.data.get("subject_id"),
                "purpose": None if erased else event.data.get("purpose"),
                "occurred_at": event.occurred_at,
            }
        )
    return events
