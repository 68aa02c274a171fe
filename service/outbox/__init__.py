"""The outbox: what the service sends (SMS, webhook deliveries), and the jobs that fan out into such messages,
is written in the transaction of the change that causes it, and sent (or run) after that commit by a
dispatcher (:mod:`service.outbox.dispatcher`), never inside a request.

A row's body (the number, the text, a link or a code; a webhook's event) is a JSON object encrypted with
DATA_KEY; it is erased once the row is settled (``sent`` or ``failed``) and when the subject it reaches is
erased. Nothing here logs a body.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.keys.crypto import DataProtector
from service.models import OutboxMessage, SmsMessage, utcnow

QUEUED, SENT, FAILED = "queued", "sent", "failed"
SMS, WEBHOOK, JOB = "sms", "webhook", "job"  # a job: work that fans out (``service.outbox.jobs``)


def enqueue(
    session: Session,
    protector: DataProtector,
    *,
    org_id: str,
    channel: str,
    kind: str,
    payload: dict[str, Any],
    subject_id: str | None = None,
    request_id: str | None = None,
    sms_message_id: str | None = None,
    webhook_id: str | None = None,
) -> OutboxMessage:
    """Queue one message in the caller's transaction; it leaves only if that transaction commits."""
    message = OutboxMessage(
        org_id=org_id,
        channel=channel,
        kind=kind,
        subject_id=subject_id,
        request_id=request_id,
        sms_message_id=sms_message_id,
        webhook_id=webhook_id,
        status=QUEUED,
        attempts=0,
        next_attempt_at=utcnow(),
        payload_ciphertext=encrypt_payload(protector, payload),
    )
    session.add(message)
    session.flush()
    return message


def encrypt_payload(protector: DataProtector, payload: dict[str, Any]) -> str:
    return protector.encrypt(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def decrypt_payload(protector: DataProtector, ciphertext: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(protector.decrypt(ciphertext))
    return payload


def erase_queued_to_subject(session: Session, *, subject_id: str) -> int:
    """A subject's erasure: what is still queued to them is not sent, and its body goes (R13).

    The SMS reservations of those rows end ``cancelled`` (``phone_erased``), rather than ``sending`` for
    ever; they still count against the phone's limits. They are written first, in the dispatcher's order
    (its settling writes them before the row).
    """
    now = utcnow()
    queued = (OutboxMessage.subject_id == subject_id, OutboxMessage.status == QUEUED)
    reservations = select(OutboxMessage.sms_message_id).where(*queued, OutboxMessage.sms_message_id.is_not(None))
    session.execute(
        update(SmsMessage)
        .where(SmsMessage.id.in_(reservations), SmsMessage.status == "sending")
        .values(status="cancelled", error_code="phone_erased")  # messages.CANCELLED (the guardian domain imports us)
        .execution_options(synchronize_session=False)
    )
    erased = session.execute(
        update(OutboxMessage)
        .where(*queued)
        .values(status=FAILED, last_error="phone_erased", payload_ciphertext=None, settled_at=now, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    return int(erased.rowcount)  # type: ignore[attr-defined]


def prune_settled(session: Session, *, keep_days: int, batch: int = 1000) -> int:
    """Delete rows settled (``sent`` or ``failed``) more than ``keep_days`` ago, a batch at a time; how many.

    A settled row holds no body any more, only what was sent when and how it went: the webhook deliveries
    log (``GET /v1/webhooks/{id}/deliveries``) shows what is kept. The SMS reservations (the allowance and
    their outcome) are rows of their own and stay.
    """
    cutoff = utcnow() - timedelta(days=keep_days)
    deleted = 0
    while True:
        ids = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.status.in_((SENT, FAILED)), OutboxMessage.settled_at < cutoff)
                .limit(batch)
            )
        )
        if not ids:
            return deleted
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        session.commit()
        deleted += len(ids)
