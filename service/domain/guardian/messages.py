"""Every SMS of the guardian flow is counted before it is sent: per phone, per organization, per day.

A send first *reserves* its place: in the transaction that makes it necessary, under the organization's
row lock, the allowance is checked and an ``sms_messages`` row is written with status ``sending``. Only
after that commits is the provider called, and the row settled as ``sent`` or ``failed``. Concurrent
requests thus queue on the lock and each sees the others' reservations: a limit cannot be raced.

The allowance, counted for one organization only (another's traffic never shows in a 429):

- one message of a kind (link, code, withdrawal) a minute to one phone; a failed attempt does not count,
  so a resend after a provider failure is not made to wait;
- five messages an hour to one phone, every kind and attempt together;
- ``SMS_DAILY_LIMIT`` messages in 24 hours for the whole organization (``sms_budget_exhausted``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.domain.guardian.common import audit_step
from service.domain.statuses import GuardianRequestStatus
from service.errors import Conflict, DomainError
from service.models import GuardianRequest, Organization, SmsMessage, utcnow

SMS_MIN_INTERVAL = timedelta(minutes=1)
SMS_HOURLY_LIMIT = 5
#: The longest window counted per phone: an erased child's SMS records keep the phone's lookup this long.
PHONE_WINDOW = timedelta(hours=1)
DAY = timedelta(hours=24)

SENDING, SENT, FAILED = "sending", "sent", "failed"
#: A reservation whose message an erasure unqueued (``service.outbox.erase_queued_to_subject``): never sent,
#: yet it still counts like one sent, so that creating and erasing a child cannot dodge a phone's limits.
CANCELLED = "cancelled"


class RateLimited(DomainError):
    """One limit for every kind of limit: 429, with the seconds to wait in ``Retry-After``."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, *, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)


def _aware(moment: datetime, like: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=like.tzinfo)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return math.ceil((moment - now).total_seconds())


def check_sms_allowance(
    session: Session, *, org_id: str, phone_hash: str, kind: str, daily_limit: int, now: datetime | None = None
) -> None:
    """Raise :class:`RateLimited` if one more message of ``kind`` to this phone would break a limit."""
    moment = now or utcnow()
    mine = (SmsMessage.org_id == org_id, SmsMessage.phone_hash == phone_hash)
    latest = session.scalar(
        select(func.max(SmsMessage.created_at)).where(
            *mine,
            SmsMessage.kind == kind,
            SmsMessage.status.in_((SENDING, SENT, CANCELLED)),
            SmsMessage.created_at > moment - SMS_MIN_INTERVAL,
        )
    )
    if latest is not None:
        wait = _seconds_until(_aware(latest, moment) + SMS_MIN_INTERVAL, moment)
        raise RateLimited("wait a minute before sending another message of this kind to this phone", wait)
    hourly, oldest = session.execute(
        select(func.count(), func.min(SmsMessage.created_at)).where(
            *mine, SmsMessage.created_at > moment - PHONE_WINDOW
        )
    ).one()
    if hourly >= SMS_HOURLY_LIMIT:
        wait = _seconds_until(_aware(oldest, moment) + PHONE_WINDOW, moment)
        raise RateLimited("too many messages to this phone in the last hour", wait)
    daily, first = session.execute(
        select(func.count(), func.min(SmsMessage.created_at)).where(
            SmsMessage.org_id == org_id, SmsMessage.created_at > moment - DAY
        )
    ).one()
    if daily >= daily_limit:
        wait = _seconds_until(_aware(first, moment) + DAY, moment)
        raise RateLimited("this organization's SMS budget for 24 hours is used up", wait, code="sms_budget_exhausted")


def lock_organization(session: Session, org_id: str) -> None:
    """Take the organization's row lock, which queues every SMS reservation of this organization.

    Lock order: after the subject, before the guardian request (see service.domain.consent_lifecycle). A
    transaction that already holds a request's lock and will reserve an SMS takes this one first, before
    the request's: a guardian's decision does (``decisions.decide``, ``paper.record_paper_decision``).
    Taking it again in the same transaction is free.
    """
    session.execute(select(Organization.id).where(Organization.id == org_id).with_for_update(key_share=True)).all()


def reserve_sms(session: Session, request: GuardianRequest, *, kind: str, daily_limit: int) -> SmsMessage:
    """Take one message of ``kind`` from the allowance, or raise :class:`RateLimited`; send after commit."""
    lock_organization(session, request.org_id)
    # Then the request itself, read afresh: an erasure that committed meanwhile removed the phone.
    session.scalars(
        select(GuardianRequest)
        .where(GuardianRequest.id == request.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one()
    if request.phone_hash is None:
        raise RateLimited("there is no phone on record to send to", 3600, code="phone_erased")
    if kind in ("link", "code") and (request.status != GuardianRequestStatus.PENDING or request.expires_at <= utcnow()):
        raise Conflict(f"the request is {request.status}: nothing to send", code="request_not_pending")
    check_sms_allowance(
        session, org_id=request.org_id, phone_hash=request.phone_hash, kind=kind, daily_limit=daily_limit
    )
    message = SmsMessage(
        org_id=request.org_id, request_id=request.id, phone_hash=request.phone_hash, kind=kind, status=SENDING
    )
    session.add(message)
    session.flush()
    return message


@dataclass(frozen=True)
class SmsOutcome:
    provider_message_id: str | None = None
    error_code: str | None = None

    @property
    def sent(self) -> bool:
        return self.error_code is None


def settle_sms(session: Session, request: GuardianRequest, message: SmsMessage, outcome: SmsOutcome) -> None:
    """Record how a reserved send went: the SMS row, the request's delivery status for links, the audit."""
    if message.kind == "link":  # the request's row before the message's: the lock order of erasure too
        request.delivery_status = SENT if outcome.sent else FAILED
        request.delivery_error = outcome.error_code
        session.flush()
    message.status = SENT if outcome.sent else FAILED
    message.provider_message_id = outcome.provider_message_id
    message.error_code = outcome.error_code
    action = "sms.sent" if outcome.sent else "sms.failed"
    if message.kind == "code":
        action = "code.sent" if outcome.sent else "code.failed_to_send"
    audit_step(session, request, "system:sms", action, kind=message.kind, error=outcome.error_code)
    session.flush()


def forget_phone_lookups(session: Session, *, request_ids: list[str] | None = None, now: datetime | None = None) -> int:
    """Clear the phone's lookup from SMS records of erased guardians once the allowance no longer needs it.

    Erasure clears everything at once but the records of the last hour: those still count against the
    phone's allowance, so that erasing a child and asking again cannot dodge it. ``consent-gate sweep``
    clears them after that hour. The provider's message id (which leads back to the number at the
    provider) goes at once.
    """
    moment = now or utcnow()
    erased = select(GuardianRequest.id).where(GuardianRequest.phone_hash.is_(None))
    scope = SmsMessage.request_id.in_(request_ids) if request_ids is not None else SmsMessage.request_id.in_(erased)
    session.execute(
        update(SmsMessage)
        .where(scope, SmsMessage.provider_message_id.is_not(None))
        .values(provider_message_id=None)
        .execution_options(synchronize_session=False)
    )
    cleared = session.execute(
        update(SmsMessage)
        .where(scope, SmsMessage.phone_hash.is_not(None), SmsMessage.created_at <= moment - PHONE_WINDOW)
        .values(phone_hash=None)
        .execution_options(synchronize_session=False)
    )
    return int(cleared.rowcount)  # type: ignore[attr-defined]
