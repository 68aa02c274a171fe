"""Webhook events, queued from the audit events of the same transaction: one place maps the audit trail's
actions to the events a webhook may ask for, so every change that is audited tells the systems that
subscribed, in the same commit, or neither.

The event's body is ``{"type", "timestamp", "data"}``; ``data`` carries ids and states only (the object's id
and kind, and of the audit event's details only ``purpose``, ``purposes``, ``subject_id``, ``consent_id``,
``guardian_request_id``, ``status``, ``reason``, ``approved``, ``declined``): no phone, birth date, name,
external reference or free text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.outbox import WEBHOOK, enqueue

#: The audit actions that are webhook events, and the event each one is.
AUDIT_TO_EVENT = {
    "consent.granted": "consent.granted",
    "consent.revoked": "consent.revoked",
    "consent.expired": "consent.expired",
    "consent.declined": "consent.declined",
    "consent.reconsent_required": "consent.reconsent_required",
    "subject.erased": "subject.erased",
    "guardian_request.approved": "guardian_request.decided",
    "guardian_request.partially_approved": "guardian_request.decided",
    "guardian_request.declined": "guardian_request.decided",
    "deletion.overdue": "deletion.overdue",
}
SAFE_KEYS = (
    "purpose",
    "purposes",
    "subject_id",
    "consent_id",
    "guardian_request_id",
    "status",
    "reason",
    "approved",
    "declined",
)


def event_body(item: dict[str, Any], event_type: str) -> dict[str, Any]:
    data: dict[str, Any] = {"id": item["object_id"], "object": item["object_type"]}
    details = item.get("data") or {}
    data |= {key: details[key] for key in SAFE_KEYS if key in details}
    if event_type == "guardian_request.decided":
        data["status"] = item["action"].removeprefix("guardian_request.")
    occurred = item["occurred_at"]
    return {"type": event_type, "timestamp": occurred.isoformat().replace("+00:00", "Z"), "data": data}


def queue_webhook_events(session: Session, pending: list[dict[str, Any]]) -> None:
    """Queue a delivery to every webhook of the organization that asked for each event recorded."""
    events = [(item, AUDIT_TO_EVENT[item["action"]]) for item in pending if item["action"] in AUDIT_TO_EVENT]
    if not events:
        return
    from service.models import Webhook

    protector = None
    for org_id in sorted({item["org_id"] for item, _ in events}):
        hooks = session.scalars(select(Webhook).where(Webhook.org_id == org_id).order_by(Webhook.id)).all()
        for item, event_type in events:
            if item["org_id"] != org_id:
                continue
            for hook in hooks:
                if event_type not in hook.events.split(","):
                    continue
                if protector is None:
                    from flask import current_app

                    protector = current_app.extensions["consent_gate.protector"]
                enqueue(
                    session,
                    protector,
                    org_id=org_id,
                    channel=WEBHOOK,
                    kind=event_type,
                    payload=event_body(item, event_type),
                    webhook_id=hook.id,
                )
