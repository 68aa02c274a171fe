"""The guardian flow for children under the guardian age (R4): requests, links, codes, decisions, withdrawal.

The HTTP layer commits; SMS are sent by the caller *after* the commit that made them necessary, so no
transaction (and no SQLite write lock) is held while a provider is slow, and a failed send never loses
the request: it stays ``pending`` with ``delivery_status: failed`` until resent.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.crypto import DataProtector, constant_time_equal, token_hash
from service.domain.audit import record_event
from service.domain.consent_states import effective_status, end_consent, expiry_reason
from service.domain.purposes import assessment_is_current, get_purpose
from service.domain.status_lists import assign_index
from service.domain.subjects import get_subject, guardian_age_moment, is_minor
from service.errors import Conflict, DomainError, NotFound, Unprocessable
from service.models import LIVE_STATUSES, Consent, GuardianLink, GuardianRequest, Purpose, SmsMessage, utcnow
from service.phones import InvalidPhone, audit_mask, mask_phone, normalize_phone

RELATIONSHIPS = ("parent", "legal_guardian", "other")
DELIVERIES = ("sms", "qr")
OTP_TTL = timedelta(minutes=10)
OTP_MAX_FAILURES = 5
SMS_MIN_INTERVAL = timedelta(minutes=1)
SMS_HOURLY_LIMIT = 5
WITHDRAWABLE = ("active", "pending_guardian", "reconsent_required")


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class LinkGone(DomainError):
    """The link was valid once: used, decided, expired or locked."""

    status = 410
    code = "gone"


def link_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/g/{token}"


def new_link(session: Session, request: GuardianRequest, *, kind: str, expires_at: datetime) -> str:
    token = secrets.token_urlsafe(32)  # 256 bits
    session.add(GuardianLink(request_id=request.id, kind=kind, token_hash=token_hash(token), expires_at=expires_at))
    return token


def _audit(session: Session, request: GuardianRequest, actor: str, action: str, **data: object) -> None:
    # The audit trail outlives erasure and cannot be edited, so it keeps no digit of the number: only the
    # country code and a pseudonymous reference (a keyed hash, meaningless without DATA_KEY).
    record_event(
        session,
        org_id=request.org_id,
        actor=actor,
        action=action,
        object_type="guardian_request",
        object_id=request.id,
        data={"phone": audit_mask(request.phone_masked), "guardian_ref": (request.phone_hash or "")[:16], **data},
    )


def create_guardian_request(
    session: Session,
    *,
    org_id: str,
    actor: str,
    protector: DataProtector,
    subject_id: str,
    purposes: list[str],
    phone: str,
    relationship: str,
    delivery: str,
    locale: str,
    hours: int,
) -> tuple[GuardianRequest, str]:
    """Open a request with one ``pending_guardian`` consent per purpose; return it and its link token."""
    now = utcnow()
    subject = get_subject(session, org_id=org_id, subject_id=subject_id)
    if subject.erased_at is not None:
        raise Conflict("this subject was erased", code="subject_erased")
    if not is_minor(subject, now.date()):
        raise Conflict("this person is not under the guardian age: use POST /v1/consents", code="not_a_minor")
    codes = list(dict.fromkeys(purposes))
    found: list[Purpose] = []
    for code in codes:
        try:
            found.append(get_purpose(session, org_id=org_id, code=code))
        except NotFound:
            raise Unprocessable("unknown purpose", code="unknown_purpose", details={"purposes": [code]}) from None
    unassessed = [p.code for p in found if not assessment_is_current(p, now.date())]
    if unassessed:
        raise Conflict(
            "purposes without a current impact assessment", code="assessment_required", details={"purposes": unassessed}
        )
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone as exc:
        raise Unprocessable(
            str(exc), code="invalid_phone", details={"json": {"guardian": {"phone": [str(exc)]}}}
        ) from exc
    live = session.scalars(
        select(Consent).where(
            Consent.subject_id == subject.id,
            Consent.purpose_id.in_([p.id for p in found]),
            Consent.status.in_(LIVE_STATUSES),
        )
    ).all()
    for consent in live:
        if effective_status(consent, now) == "expired":
            end_consent(session, consent, status="expired", actor="system:sweep", reason=expiry_reason(consent))
        else:
            raise Conflict(
                "a live consent to this purpose exists",
                code="consent_exists",
                details={"consent_id": consent.id, "purpose": consent.purpose.code},
            )
    request = GuardianRequest(
        org_id=org_id,
        subject_id=subject.id,
        status="pending",
        delivery=delivery,
        locale=locale,
        guardian_relationship=relationship,
        phone_ciphertext=protector.encrypt(e164),
        phone_hash=protector.lookup_hash(e164),
        phone_masked=mask_phone(e164),
        expires_at=now + timedelta(hours=hours),
        delivery_status="pending" if delivery == "sms" else "not_required",
    )
    session.add(request)
    session.flush()
    token = new_link(session, request, kind="decision", expires_at=request.expires_at)
    request.link_ciphertext = protector.encrypt(token)
    for purpose in found:
        notice = purpose.current_notice
        session.add(
            Consent(
                org_id=org_id,
                subject_id=subject.id,
                purpose_id=purpose.id,
                status="pending_guardian",
                notice_version=notice.version,
                notice_digest=notice.digest,
                guardian_request_id=request.id,
                evidence={},
            )
        )
    session.flush()
    session.refresh(request, ["consents"])
    _audit(
        session,
        request,
        actor,
        "guardian_request.created",
        subject_id=subject.id,
        purposes=codes,
        delivery=delivery,
        relationship=relationship,
        expires_at=request.expires_at.isoformat(),
    )
    return request, token


def get_request(session: Session, *, org_id: str, request_id: str) -> GuardianRequest:
    request = session.get(GuardianRequest, request_id)
    if request is None or request.org_id != org_id:
        raise NotFound(f"guardian request {request_id} does not exist")
    return request


def expire_if_due(session: Session, request: GuardianRequest, now: datetime | None = None) -> bool:
    """Move a pending request past ``expires_at`` to ``expired``, with its consents; True if it did."""
    moment = now or utcnow()
    if request.status != "pending" or request.expires_at > moment:
        return False
    if not _claim(session, request, "expired", moment):
        return False
    for consent in request.consents:
        if consent.status == "pending_guardian":
            end_consent(session, consent, status="expired", actor="system:sweep", reason="guardian_request_expired")
    _audit(session, request, "system:sweep", "guardian_request.expired")
    return True


def expire_overdue_requests(session: Session, *, limit: int = 500) -> int:
    now = utcnow()
    overdue = session.scalars(
        select(GuardianRequest)
        .where(GuardianRequest.status == "pending", GuardianRequest.expires_at <= now)
        .limit(limit)
    ).all()
    return sum(expire_if_due(session, request, now) for request in overdue)


def _claim(session: Session, request: GuardianRequest, status: str, now: datetime) -> bool:
    """Move the request out of ``pending`` exactly once, even when two decisions race."""
    result = session.execute(
        update(GuardianRequest)
        .where(GuardianRequest.id == request.id, GuardianRequest.status == "pending")
        .values(status=status, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    return bool(result.rowcount)  # type: ignore[attr-defined]


# SMS allowance -----------------------------------------------------------------------------------


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
    _audit(session, request, "system:sms", action, kind=kind, error=outcome.error_code)
    session.flush()


# Links and pages -----------------------------------------------------------------------------------


def resolve_link(session: Session, token: str) -> GuardianLink:
    """Find the link of a token; 404 for a wrong one, 410 for an expired, used or decided one."""
    if not 20 <= len(token) <= 100:
        raise NotFound("no such link")
    link = session.scalars(select(GuardianLink).where(GuardianLink.token_hash == token_hash(token))).first()
    if link is None:
        raise NotFound("no such link")
    now = utcnow()
    if link.kind == "decision":
        expire_if_due(session, link.request, now)
        if link.request.status == "expired" or link.expires_at <= now:
            raise LinkGone("this link has expired", code="link_expired")
        if link.request.status == "locked":
            raise LinkGone("this request was locked after too many wrong codes", code="request_locked")
        if link.used_at is not None or link.request.status != "pending":
            raise LinkGone("a decision was already made with this link", code="link_used")
    elif link.expires_at <= now:
        raise LinkGone("this link has expired", code="link_expired")
    return link


def issue_code(session: Session, request: GuardianRequest, protector: DataProtector) -> str:
    """Create a fresh 6-digit one-time code (stored hashed) after checking the per-phone allowance."""
    assert request.phone_hash is not None
    check_sms_allowance(session, phone_hash=request.phone_hash, kind="code")
    code = f"{secrets.randbelow(10**6):06d}"
    request.otp_hash = protector.code_hash(request.id, code)
    request.otp_expires_at = utcnow() + OTP_TTL
    session.flush()
    return code


class CodeCheck(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    EXPIRED = "expired"
    WRONG = "wrong"
    LOCKED = "locked"


def check_code(session: Session, request: GuardianRequest, code: str, protector: DataProtector) -> CodeCheck:
    """Compare a one-time code in constant time; the fifth wrong one locks the request."""
    now = utcnow()
    if request.otp_hash is None or request.otp_expires_at is None:
        return CodeCheck.MISSING
    if request.otp_expires_at <= now:
        return CodeCheck.EXPIRED
    if constant_time_equal(protector.code_hash(request.id, code.strip()), request.otp_hash):
        request.otp_verified_at = now
        request.otp_hash = None  # one use
        session.flush()
        return CodeCheck.OK
    request.otp_failures += 1
    _audit(session, request, "guardian", "code.failed", failures=request.otp_failures)
    if request.otp_failures >= OTP_MAX_FAILURES and _claim(session, request, "locked", now):
        for consent in request.consents:
            if consent.status == "pending_guardian":
                end_consent(session, consent, status="expired", actor="system:lock", reason="guardian_request_locked")
        _audit(session, request, "system:lock", "guardian_request.locked", failures=request.otp_failures)
        return CodeCheck.LOCKED
    session.flush()
    return CodeCheck.WRONG


@dataclass(frozen=True)
class Decision:
    status: str
    approved: list[str]
    declined: list[str]
    withdrawal_token: str | None


def decide(session: Session, link: GuardianLink, *, approve: bool, ticked: list[str]) -> Decision:
    """Record the guardian's decision, purpose by purpose; only one decision per request ever counts."""
    request = link.request
    now = utcnow()
    pending = [c for c in request.consents if c.status == "pending_guardian"]
    chosen = set(ticked) if approve else set()
    grantable = {c.purpose.code for c in pending if assessment_is_current(c.purpose, now.date())}
    approved = sorted(c.purpose.code for c in pending if c.purpose.code in chosen and c.purpose.code in grantable)
    declined = sorted(c.purpose.code for c in pending if c.purpose.code not in approved)
    status = "approved" if approved and not declined else "partially_approved" if approved else "declined"
    if not _claim(session, request, status, now):
        raise LinkGone("a decision was already made with this link", code="link_used")
    link.used_at = now
    subject = (
        request.consents[0].subject
        if request.consents
        else get_subject(session, org_id=request.org_id, subject_id=request.subject_id)
    )
    age_end = guardian_age_moment(subject.guardian_required_until) if subject.guardian_required_until else None
    verification = "sms_code" if request.delivery == "qr" else "sms_link"
    actor = f"guardian:{request.id}"
    for consent in pending:
        if consent.purpose.code in approved:
            notice = consent.purpose.current_notice
            end = now + timedelta(days=consent.purpose.retention_days)
            consent.status = "active"
            consent.guardian_authorized = True
            consent.granted_at = now
            # Guardian consent ends when the child reaches the guardian age (see README, "Turning 14").
            consent.expires_at = min(end, age_end) if age_end else end
            consent.notice_version, consent.notice_digest = notice.version, notice.digest
            assign_index(session, consent)
            consent.evidence = {
                "method": "checkbox",
                "channel": "sms_link" if request.delivery == "sms" else "qr_code",
                "locale": request.locale,
                "relationship": request.guardian_relationship,
                "guardian_verification": verification,
                "recorded_at": now.isoformat(),
                "notice_digest": notice.digest,
                "transmits_face_data": consent.purpose.transmits_face_data,
            }
            session.flush()
            record_event(
                session,
                org_id=request.org_id,
                actor=actor,
                action="consent.granted",
                object_type="consent",
                object_id=consent.id,
                data={
                    "subject_id": consent.subject_id,
                    "purpose": consent.purpose.code,
                    "guardian": True,
                    "guardian_request_id": request.id,
                    "notice_digest": notice.digest,
                    "verification": verification,
                },
            )
        else:
            reason = "guardian_declined" if consent.purpose.code in chosen or not approve else "not_selected"
            if consent.purpose.code in chosen and consent.purpose.code not in grantable:
                reason = "assessment_required"
            end_consent(session, consent, status="declined", actor=actor, reason=reason)
    _audit(
        session,
        request,
        actor,
        f"guardian_request.{status}",
        approved=approved,
        declined=declined,
        verification=verification,
    )
    withdrawal_token = None
    if approved:
        last_end = max(c.expires_at for c in pending if c.expires_at is not None)
        withdrawal_token = new_link(session, request, kind="withdrawal", expires_at=last_end)
    session.flush()
    return Decision(status=status, approved=approved, declined=declined, withdrawal_token=withdrawal_token)


def consents_of_child(session: Session, request: GuardianRequest) -> list[Consent]:
    """Every consent the organization holds for the child of this request, newest first."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.org_id == request.org_id, Consent.subject_id == request.subject_id)
            .order_by(Consent.created_at.desc())
        )
    )


def withdraw(session: Session, link: GuardianLink, consent_id: str) -> Consent:
    """The guardian withdraws one of the child's consents; effective at once (R3)."""
    request = link.request
    consent = session.get(Consent, consent_id)
    if consent is None or consent.org_id != request.org_id or consent.subject_id != request.subject_id:
        raise NotFound("no such consent")
    if consent.status in WITHDRAWABLE and effective_status(consent, utcnow()) != "expired":
        end_consent(session, consent, status="revoked", actor=f"guardian:{request.id}", reason="guardian_withdrawal")
        _audit(
            session,
            request,
            f"guardian:{request.id}",
            "guardian.withdrew",
            consent_id=consent.id,
            purpose=consent.purpose.code,
        )
    return consent
