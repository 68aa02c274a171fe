"""The question recognition systems ask before processing a face, and the record of each answer.

Consent state is read from the database on every call: nothing here is cached, so a withdrawal that
has committed is seen by the very next verification on every instance.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.devices import PROHIBITED_LOCATION_TYPES, PUBLIC_PLACE_CATEGORY
from service.models import Consent, Device, Purpose, Subject, Verification, new_id, utcnow
from service.tokens import ExpiredToken, InvalidToken, decode_consent_token


class Reason(enum.StrEnum):
    """Every reason a verification can give: ``consent_active`` allows, all others deny."""

    CONSENT_ACTIVE = "consent_active"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason, not a secret)
    NO_CONSENT = "no_consent"
    UNKNOWN_PURPOSE = "unknown_purpose"
    PURPOSE_MISMATCH = "purpose_mismatch"
    PENDING_GUARDIAN = "pending_guardian"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"
    ASSESSMENT_REQUIRED = "assessment_required"
    DEVICE_UNKNOWN = "device_unknown"
    PROHIBITED_LOCATION = "prohibited_location"
    PUBLIC_SAFETY_ONLY = "public_safety_only"
    SUBJECT_ERASED = "subject_erased"
    UNAVAILABLE = "unavailable"


STATUS_REASONS = {
    "pending_guardian": Reason.PENDING_GUARDIAN,
    "declined": Reason.DECLINED,
    "revoked": Reason.REVOKED,
    "expired": Reason.EXPIRED,
    "reconsent_required": Reason.RECONSENT_REQUIRED,
}


@dataclass(frozen=True)
class VerificationRequest:
    purpose: str
    token: str | None = None
    subject_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class Decision:
    reason: Reason
    consent_id: str | None = None
    subject_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.CONSENT_ACTIVE


_CONSENT_STATE = (
    Consent.id,
    Consent.subject_id,
    Consent.status,
    Consent.expires_at,
    Subject.erased_at,
    Purpose.assessed_until,
)


def _judge(row: Any, now: datetime) -> Decision:
    consent_id, subject_id, status, expires_at, erased_at, assessed_until = row
    if erased_at is not None:
        return Decision(Reason.SUBJECT_ERASED, consent_id, subject_id)
    if status != "active":
        return Decision(STATUS_REASONS.get(status, Reason.NO_CONSENT), consent_id, subject_id)
    if expires_at is not None and expires_at <= now:
        return Decision(Reason.EXPIRED, consent_id, subject_id)
    if assessed_until is None or assessed_until < now.date():
        return Decision(Reason.ASSESSMENT_REQUIRED, consent_id, subject_id)
    return Decision(Reason.CONSENT_ACTIVE, consent_id, subject_id)


def _by_token(
    session: Session, org_id: str, request: VerificationRequest, keys: Any, issuer: str, now: datetime
) -> Decision:
    assert request.token is not None
    try:
        claims = decode_consent_token(request.token, keys, issuer=issuer, audience=org_id)
    except ExpiredToken:
        return Decision(Reason.EXPIRED)
    except InvalidToken:
        return Decision(Reason.INVALID_TOKEN)
    if claims["pur"] != request.purpose:
        return Decision(Reason.PURPOSE_MISMATCH, claims["jti"], claims["sub"])
    row = session.execute(
        select(*_CONSENT_STATE)
        .join(Subject, Subject.id == Consent.subject_id)
        .join(Purpose, Purpose.id == Consent.purpose_id)
        .where(Consent.id == claims["jti"], Consent.org_id == org_id)
    ).first()
    if row is None:
        return Decision(Reason.NO_CONSENT, None, claims["sub"])
    return _judge(row, now)


def _by_subject(session: Session, org_id: str, request: VerificationRequest, now: datetime) -> Decision:
    assert request.subject_id is not None
    row = session.execute(
        select(*_CONSENT_STATE)
        .join(Subject, Subject.id == Consent.subject_id)
        .join(Purpose, Purpose.id == Consent.purpose_id)
        .where(Consent.subject_id == request.subject_id, Consent.org_id == org_id, Purpose.code == request.purpose)
        .order_by(Consent.created_at.desc())
        .limit(1)
    ).first()
    if row is not None:
        return _judge(row, now)
    # No consent at all: say precisely why, without revealing anything of another organization.
    subject = session.get(Subject, request.subject_id)
    if subject is None or subject.org_id != org_id:
        return Decision(Reason.NO_CONSENT)
    if subject.erased_at is not None:
        return Decision(Reason.SUBJECT_ERASED, None, subject.id)
    known = session.scalars(select(Purpose.id).where(Purpose.org_id == org_id, Purpose.code == request.purpose)).first()
    return Decision(Reason.NO_CONSENT if known else Reason.UNKNOWN_PURPOSE, None, subject.id)


def _device_refusal(session: Session, org_id: str, request: VerificationRequest) -> Reason | None:
    """Where the face is captured matters (R7): unknown, deactivated or misplaced devices deny."""
    if request.device_id is None:
        return None
    device = session.execute(
        select(Device.active, Device.location_type, Device.public_place).where(
            Device.id == request.device_id, Device.org_id == org_id
        )
    ).first()
    if device is None or not device.active:
        return Reason.DEVICE_UNKNOWN
    if device.location_type in PROHIBITED_LOCATION_TYPES:
        return Reason.PROHIBITED_LOCATION
    if device.public_place:
        category = session.scalars(
            select(Purpose.category).where(Purpose.org_id == org_id, Purpose.code == request.purpose)
        ).first()
        if category != PUBLIC_PLACE_CATEGORY:
            return Reason.PUBLIC_SAFETY_ONLY
    return None


def decide(session: Session, *, org_id: str, request: VerificationRequest, keys: Any, issuer: str) -> Decision:
    """Decide one verification; deny unless every rule holds."""
    now = utcnow()
    decision = (
        _by_token(session, org_id, request, keys, issuer, now)
        if request.token is not None
        else _by_subject(session, org_id, request, now)
    )
    if decision.allowed:
        refusal = _device_refusal(session, org_id, request)
        if refusal is not None:
            return Decision(refusal, decision.consent_id, decision.subject_id)
    return decision


def verify(
    session: Session, *, org_id: str, api_key_id: str, request: VerificationRequest, keys: Any, issuer: str
) -> tuple[Decision, str]:
    """Decide and record the decision; return it with the verification id. The caller commits."""
    decision = decide(session, org_id=org_id, request=request, keys=keys, issuer=issuer)
    verification_id = new_id()
    session.add(
        Verification(
            id=verification_id,
            org_id=org_id,
            api_key_id=api_key_id,
            purpose=request.purpose,
            consent_id=decision.consent_id,
            subject_id=decision.subject_id or request.subject_id,
            device_id=request.device_id,
            decision="allow" if decision.allowed else "deny",
            reason=decision.reason.value,
        )
    )
    session.flush()
    return decision, verification_id
