"""Guardian requests: opening one for a child, reading it, and its expiry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.domain.assessments import assessment_is_current
from service.domain.consent_lifecycle import (
    LIVE_CONSENT,
    ConsentStatus,
    effective_status,
    lock_subject,
    persist_expiry,
)
from service.domain.guardian.common import audit_step, claim_request, expire_pending_consents, new_link
from service.domain.guardian.messages import RateLimited
from service.domain.guardian.messaging import Messenger
from service.domain.pages import Page, page
from service.domain.purposes import get_purpose
from service.domain.statuses import Delivery, GuardianRequestStatus, Relationship
from service.domain.subjects import get_subject, is_minor
from service.errors import Conflict, NotFound, Unprocessable
from service.keys.crypto import DataProtector
from service.models import Consent, GuardianLink, GuardianRequest, Purpose, SmsMessage, Subject, utcnow
from service.sms.phones import InvalidPhone, mask_phone, normalize_mobile


def create_guardian_request(
    session: Session,
    *,
    org_id: str,
    actor: str,
    messenger: Messenger,
    subject_id: str,
    purposes: list[str],
    phone: str,
    allowed_regions: tuple[str, ...],
    relationship: str,
    delivery: str,
    locale: str,
    hours: int,
    reask_after_days: int,
    child_display_name: str | None = None,
) -> tuple[GuardianRequest, SmsMessage | None, str | None]:
    """Open a request with one ``pending_guardian`` consent per purpose.

    With ``delivery: sms`` the link SMS is reserved here (a 429 creates nothing); the caller delivers it
    after the commit, to the guardian only. Returns the request, that reservation and the link's token.
    A purpose the guardian declined for this child less than ``reask_after_days`` ago answers 409
    ``recently_declined`` (see :func:`refuse_reasking`).
    With ``delivery: paper`` nothing is sent and no decision link exists (no token): the
    guardian decides on a signed form, which the organization records (``record_paper_decision``).
    """
    now = utcnow()
    get_subject(session, org_id=org_id, subject_id=subject_id)
    subject = lock_subject(session, subject_id)
    assert subject is not None
    if subject.erased_at is not None:
        raise Conflict("this subject was erased", code="subject_erased")
    if not is_minor(subject, now.date()):
        raise Conflict("this person is not under the guardian age: use POST /v1/consents", code="not_a_minor")
    if relationship not in set(Relationship):
        raise Unprocessable(
            "only a parent or a legal guardian may decide for a child",
            details={"json": {"guardian": {"relationship": ["must be parent or legal_guardian"]}}},
        )
    codes = list(dict.fromkeys(purposes))
    found: list[Purpose] = []
    for code in codes:
        try:
            found.append(get_purpose(session, org_id=org_id, code=code))
        except NotFound:
            raise Unprocessable("unknown purpose", code="unknown_purpose", details={"purposes": [code]}) from None
    unassessed = [p.code for p in found if not assessment_is_current(p, now)]
    if unassessed:
        raise Conflict(
            "purposes without a current impact assessment", code="assessment_required", details={"purposes": unassessed}
        )
    refuse_reasking(session, subject=subject, purposes=found, days=reask_after_days, now=now)
    try:
        e164 = normalize_mobile(phone, allowed_regions)
    except InvalidPhone as exc:
        raise Unprocessable(
            str(exc), code="invalid_phone", details={"json": {"guardian": {"phone": [str(exc)]}}}
        ) from exc
    live = session.scalars(
        select(Consent)
        .where(
            Consent.subject_id == subject.id,
            Consent.purpose_id.in_([p.id for p in found]),
            Consent.status.in_(LIVE_CONSENT),
        )
        .execution_options(populate_existing=True)
    ).all()
    for consent in live:
        if effective_status(consent, now) != ConsentStatus.EXPIRED:
            raise Conflict(
                "a live consent to this purpose exists",
                code="consent_exists",
                details={"consent_id": consent.id, "purpose": consent.purpose.code},
            )
    protector = messenger.protector
    return open_request(
        session,
        org_id=org_id,
        actor=actor,
        messenger=messenger,
        subject_id=subject.id,
        purposes=found,
        phone=PhoneOnRecord(protector.encrypt(e164), protector.lookup_hash(e164), mask_phone(e164)),
        relationship=relationship,
        delivery=delivery,
        locale=locale,
        hours=hours,
        child_name_ciphertext=protector.encrypt(child_display_name) if child_display_name else None,
        overdue=live,
    )


@dataclass(frozen=True)
class PhoneOnRecord:
    """The guardian's number as stored: encrypted, its lookup hash (for the SMS allowance), masked."""

    ciphertext: str
    lookup_hash: str
    masked: str


def open_request(
    session: Session,
    *,
    org_id: str,
    actor: str,
    messenger: Messenger,
    subject_id: str,
    purposes: list[Purpose],
    phone: PhoneOnRecord,
    relationship: str,
    delivery: str,
    locale: str,
    hours: int,
    child_name_ciphertext: str | None,
    overdue: Sequence[Consent] = (),
    tolerate_limits: bool = False,
    **audit: Any,
) -> tuple[GuardianRequest, SmsMessage | None, str | None]:
    """The request itself, once its subject is locked and checked: one ``pending_guardian`` consent per
    purpose on its current notice, the decision link, and (``delivery: sms``) the link SMS reserved.

    ``overdue`` consents (past their end, not swept yet) are recorded as expired first. With
    ``tolerate_limits`` an SMS allowance spent does not refuse the request: it is opened with
    ``delivery_status: failed`` and the limit's code, for the app to ``resend`` later.
    """
    now = utcnow()
    request = GuardianRequest(
        org_id=org_id,
        subject_id=subject_id,
        status=GuardianRequestStatus.PENDING.value,
        delivery=delivery,
        locale=locale,
        guardian_relationship=relationship,
        phone_ciphertext=phone.ciphertext,
        phone_hash=phone.lookup_hash,
        phone_masked=phone.masked,
        child_name_ciphertext=child_name_ciphertext,
        expires_at=now + timedelta(hours=hours),
        delivery_status="pending" if delivery == Delivery.SMS else "not_required",
    )
    session.add(request)
    session.flush()
    reservation = None
    if delivery == Delivery.SMS:
        try:
            reservation = messenger.reserve(session, request, "link")
        except RateLimited as limited:
            if not tolerate_limits:
                raise
            request.delivery_status, request.delivery_error = "failed", limited.code
    for consent in overdue:  # after the organization's lock: the lock order
        persist_expiry(session, consent)
    # A paper request has no decision link at all: no page can decide it, only its signed form, recorded
    # by record_paper_decision.
    token = None
    if delivery != Delivery.PAPER:
        token = new_link(session, request, kind="decision", expires_at=request.expires_at)
    if delivery == Delivery.QR and token is not None:
        # The app shows it again as a QR code while pending. An SMS link is stored hashed only: not even
        # whoever holds DATA_KEY can read it back, and a resend issues a new one (renew_decision_link).
        request.link_ciphertext = messenger.protector.encrypt(token)
    for purpose in purposes:
        notice = purpose.current_notice
        session.add(
            Consent(
                org_id=org_id,
                subject_id=subject_id,
                purpose_id=purpose.id,
                status=ConsentStatus.PENDING_GUARDIAN.value,
                notice_version=notice.version,
                notice_digest=notice.digest,
                guardian_request_id=request.id,
                # The channel is known from the start: the report counts written (paper) consents apart.
                evidence={"channel": "paper"} if delivery == Delivery.PAPER else {},
            )
        )
    session.flush()
    session.refresh(request, ["consents"])
    audit_step(
        session,
        request,
        actor,
        "guardian_request.created",
        subject_id=subject_id,
        purposes=[p.code for p in purposes],
        delivery=delivery,
        relationship=relationship,
        expires_at=request.expires_at.isoformat(),
        **audit,
    )
    return request, reservation, token


#: The ends of a guardian request's consent that are the guardian's refusal: declined outright ("Decline
#: all", or ticked and then refused), or left unticked while approving others. The page says that an
#: unticked box means no, so a purpose the guardian did not tick was refused as much as a declined one.
#: Not refusals: an expired or locked request (nobody answered), a missing assessment.
GUARDIAN_REFUSALS = ("guardian_declined", "not_selected")


class RecentlyDeclined(Conflict):
    """The guardian refused these purposes for this child recently: do not ask again yet (PIPL 16)."""

    code = "recently_declined"


def refuse_reasking(session: Session, *, subject: Subject, purposes: list[Purpose], days: int, now: datetime) -> None:
    """No repeated asking after a refusal (Measures Art. 12, PIPL 16; R6).

    Raises :class:`RecentlyDeclined` when the guardian refused one of ``purposes`` for this child (its
    consent ``declined`` with a reason of :data:`GUARDIAN_REFUSALS`) less than ``days`` days ago, naming
    each such purpose and when asking again is allowed. The caller holds the subject's row lock, which a
    guardian's decision takes first too: a decision and a new request for the same child never overlap,
    so a refusal committed a moment ago is seen here.
    """
    if days <= 0 or not purposes:
        return
    since = now - timedelta(days=days)
    refused = session.execute(
        select(Consent.purpose_id, func.max(Consent.ended_at))
        .where(
            Consent.org_id == subject.org_id,
            Consent.subject_id == subject.id,
            Consent.purpose_id.in_([p.id for p in purposes]),
            Consent.status == ConsentStatus.DECLINED,
            Consent.guardian_request_id.is_not(None),
            Consent.end_reason.in_(GUARDIAN_REFUSALS),
            Consent.ended_at > since,
        )
        .group_by(Consent.purpose_id)
    ).all()
    if not refused:
        return
    codes = {p.id: p.code for p in purposes}
    ask_again: dict[str, datetime] = {}
    for purpose_id, declined_at in refused:
        assert declined_at is not None  # a declined consent has ended
        ask_again[codes[purpose_id]] = declined_at + timedelta(days=days)
    names = sorted(ask_again)
    raise RecentlyDeclined(
        f"the guardian declined {', '.join(names)} for this child less than {days} days ago: "
        "ask again only after the dates given",
        details={
            "purposes": names,
            "ask_again_after": {code: ask_again[code].isoformat() for code in names},
        },
    )


def renew_decision_link(session: Session, request: GuardianRequest) -> str:
    """A new decision link for a resend; the old one stops working (its token is not kept anywhere)."""
    session.execute(delete(GuardianLink).where(GuardianLink.request_id == request.id, GuardianLink.kind == "decision"))
    return new_link(session, request, kind="decision", expires_at=request.expires_at)


def child_display_name(request: GuardianRequest, protector: DataProtector) -> str | None:
    """The name the app chose for the child, for the guardian's pages only (never an SMS, never the API)."""
    return protector.decrypt(request.child_name_ciphertext) if request.child_name_ciphertext else None


def list_requests(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[GuardianRequest]:
    """The organization's guardian requests, oldest first."""
    query = select(GuardianRequest).where(GuardianRequest.org_id == org_id)
    return page(session, query, GuardianRequest, kind="guardian_requests", cursor=cursor, limit=limit)


def get_request(session: Session, *, org_id: str, request_id: str) -> GuardianRequest:
    request = session.get(GuardianRequest, request_id)
    if request is None or request.org_id != org_id:
        raise NotFound(f"guardian request {request_id} does not exist")
    return request


def expire_if_due(session: Session, request: GuardianRequest, now: datetime | None = None) -> bool:
    """Move a pending request past ``expires_at`` to ``expired``, with its consents; True if it did.

    The claim is a compare-and-set: a decision that got there first wins, and this changes nothing.
    """
    moment = now or utcnow()
    if request.status != GuardianRequestStatus.PENDING or request.expires_at > moment:
        return False
    if not claim_request(session, request, GuardianRequestStatus.EXPIRED, moment):
        return False
    expire_pending_consents(session, request, actor="system:sweep", reason="guardian_request_expired")
    audit_step(session, request, "system:sweep", "guardian_request.expired")
    return True


def expire_overdue_requests(session: Session, *, limit: int = 500) -> int:
    """End pending requests past their ``expires_at``; rows another transaction holds wait for the next sweep."""
    now = utcnow()
    overdue = session.scalars(
        select(GuardianRequest)
        .where(GuardianRequest.status == GuardianRequestStatus.PENDING, GuardianRequest.expires_at <= now)
        .order_by(GuardianRequest.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return sum(expire_if_due(session, request, now) for request in overdue)
