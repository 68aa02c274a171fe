"""Guardian requests: opening one for a child, reading it, and its expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.crypto import DataProtector
from service.domain.consent_states import effective_status, end_consent, expiry_reason
from service.domain.guardian.common import audit_step, claim_request, new_link
from service.domain.purposes import assessment_is_current, get_purpose
from service.domain.subjects import get_subject, is_minor
from service.errors import Conflict, NotFound, Unprocessable
from service.models import LIVE_STATUSES, Consent, GuardianRequest, Purpose, utcnow
from service.phones import InvalidPhone, mask_phone, normalize_phone

RELATIONSHIPS = ("parent", "legal_guardian", "other")
DELIVERIES = ("sms", "qr")


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
    audit_step(
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
    if not claim_request(session, request, "expired", moment):
        return False
    for consent in request.consents:
        if consent.status == "pending_guardian":
            end_consent(session, consent, status="expired", actor="system:sweep", reason="guardian_request_expired")
    audit_step(session, request, "system:sweep", "guardian_request.expired")
    return True


def expire_overdue_requests(session: Session, *, limit: int = 500) -> int:
    now = utcnow()
    overdue = session.scalars(
        select(GuardianRequest)
        .where(GuardianRequest.status == "pending", GuardianRequest.expires_at <= now)
        .limit(limit)
    ).all()
    return sum(expire_if_due(session, request, now) for request in overdue)
