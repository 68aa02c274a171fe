"""One-time codes for QR delivery: 6 digits, 10 minutes, stored hashed, five wrong tries lock."""

from __future__ import annotations

import enum
import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from service.crypto import DataProtector, constant_time_equal
from service.domain.consent_states import end_consent
from service.domain.guardian.common import audit_step, claim_request
from service.domain.guardian.messages import check_sms_allowance
from service.models import GuardianRequest, utcnow

OTP_TTL = timedelta(minutes=10)
OTP_MAX_FAILURES = 5


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
    audit_step(session, request, "guardian", "code.failed", failures=request.otp_failures)
    if request.otp_failures >= OTP_MAX_FAILURES and claim_request(session, request, "locked", now):
        for consent in request.consents:
            if consent.status == "pending_guardian":
                end_consent(session, consent, status="expired", actor="system:lock", reason="guardian_request_locked")
        audit_step(session, request, "system:lock", "guardian_request.locked", failures=request.otp_failures)
        return CodeCheck.LOCKED
    session.flush()
    return CodeCheck.WRONG
