"""One-time codes for QR delivery: 6 digits, 10 minutes, stored hashed, at most five tries per request.

Each try is paid for before the code is compared: one atomic ``UPDATE ... SET otp_failures = otp_failures
+ 1 WHERE otp_failures < 5``. Twenty concurrent guesses therefore get five comparisons, not twenty; a
right code gives its try back. The fifth wrong one locks the request.
"""

from __future__ import annotations

import enum
import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.domain.guardian.common import audit_step, claim_request, expire_pending_consents
from service.domain.statuses import GuardianRequestStatus
from service.keys.crypto import DataProtector, constant_time_equal
from service.models import GuardianRequest, utcnow

OTP_TTL = timedelta(minutes=10)
OTP_MAX_FAILURES = 5


def issue_code(session: Session, request: GuardianRequest, protector: DataProtector) -> str:
    """Create a fresh 6-digit one-time code, stored hashed; the caller has reserved its SMS first."""
    code = f"{secrets.randbelow(10**6):06d}"
    request.otp_hash = protector.code_hash(request.id, code)
    request.otp_expires_at = utcnow() + OTP_TTL
    request.otp_verified_at = None
    session.flush()
    return code


class CodeCheck(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    EXPIRED = "expired"
    WRONG = "wrong"
    LOCKED = "locked"


def _take_a_try(session: Session, request: GuardianRequest) -> bool:
    """Count one try, atomically; False when all five are used (or the request left ``pending``)."""
    result = session.execute(
        update(GuardianRequest)
        .where(
            GuardianRequest.id == request.id,
            GuardianRequest.status == GuardianRequestStatus.PENDING,
            GuardianRequest.otp_failures < OTP_MAX_FAILURES,
        )
        .values(otp_failures=GuardianRequest.otp_failures + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def check_code(session: Session, request: GuardianRequest, code: str, protector: DataProtector) -> CodeCheck:
    """Compare a one-time code in constant time, after paying for the try; the fifth wrong one locks."""
    now = utcnow()
    if request.otp_hash is None or request.otp_expires_at is None:
        return CodeCheck.MISSING
    if request.otp_expires_at <= now:
        return CodeCheck.EXPIRED
    if not _take_a_try(session, request):
        return CodeCheck.LOCKED
    expected = request.otp_hash
    if expected is not None and constant_time_equal(protector.code_hash(request.id, code.strip()), expected):
        request.otp_failures -= 1  # a right code costs no try
        request.otp_verified_at = now
        request.otp_hash = None  # one use
        session.flush()
        return CodeCheck.OK
    audit_step(session, request, "guardian", "code.failed", failures=request.otp_failures)
    if request.otp_failures >= OTP_MAX_FAILURES:
        lock_request(session, request)
        return CodeCheck.LOCKED
    session.flush()
    return CodeCheck.WRONG


def lock_request(session: Session, request: GuardianRequest) -> None:
    """Too many wrong codes: the request ends ``locked`` and its pending consents expire."""
    if not claim_request(session, request, GuardianRequestStatus.LOCKED, utcnow()):
        return
    expire_pending_consents(session, request, actor="system:lock", reason="guardian_request_locked")
    audit_step(session, request, "system:lock", "guardian_request.locked", failures=request.otp_failures)
