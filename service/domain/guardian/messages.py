"""SMS of the guardian flow: the per-phone allowance and the record of each attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain.guardian.common import audit_step
from service.errors import DomainError
from service.models import GuardianRequest, SmsMessage, utcnow

SMS_MIN_INTERVAL = timedelta(minutes=1)
SMS_HOURLY_LIMIT = 5


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def check_sms_allowance(session: Session, *, phone_hash: str, kind: str, now: datetime | None = None) -> None:
    """At most one SMS of a kind a minute and five an hour to one phone; raise :class:`RateLimited`."""
    moment = now or utcnow()
    recent = session.execute(
        select(func.count(), func.max(SmsMessage.created_at)).where(
            SmsMessage.phone_hash == phone_hash,
            SmsMessage.kind == kind,
            SmsMessage.created_at > moment - timedelta(hours=1),
        )
    ).one()
    count, latest = recent
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=moment.tzinfo)
    if latest is not None and moment - latest < SMS_MIN_INTERVAL:
        wait = int((SMS_MIN_INTERVAL - (moment - latest)).total_seconds()) + 1
        raise RateLimited("wait a minute before sending another message to this phone", wait)
    if count >= SMS_HOURLY_LIMIT:
        raise RateLimited("too many messages to this phone in the last hour", 3600)


@dataclass(frozen=True)
class SmsOutcome:
    provider_message_id: str | None = None
    error_code: str | None = None

    @property
    def sent(self) -> bool:
        return self.error_code is None


def record_sms(session: Session, request: GuardianRequest, *, kind: str, outcome: SmsOutcome) -> None:
    """Record one send attempt: the SMS row, the request's delivery status for links, and the audit event."""
    assert request.phone_hash is not None
    session.add(
        SmsMessage(
            org_id=request.org_id,
            request_id=request.id,
            phone_hash=request.phone_hash,
            kind=kind,
            status="sent" if outcome.sent else "failed",
            provider_message_id=outcome.provider_message_id,
            error_code=outcome.error_code,
        )
    )
    if kind == "link":
        request.delivery_status = "sent" if outcome.sent else "failed"
        request.delivery_error = outcome.error_code
    action = "sms.sent" if outcome.sent else "sms.failed"
    if kind == "code":
        action = "code.sent" if outcome.sent else "code.failed_to_send"
    audit_step(session, request, "system:sms", action, kind=kind, error=outcome.error_code)
    session.flush()
