"""What the parts of the guardian flow share: link tokens, the request claim, audit events."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.consent_lifecycle import ConsentStatus, end_consent
from service.domain.statuses import GuardianRequestStatus
from service.keys.crypto import token_hash
from service.models import GuardianLink, GuardianRequest
from service.sms.phones import audit_mask


def link_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/g/{token}"


def new_link(session: Session, request: GuardianRequest, *, kind: str, expires_at: datetime) -> str:
    # A link texted to the guardian (decision, withdrawal) carries 128 random bits in 22 characters, so that
    # a mainland SMS template's variable holds it (35 characters at most); a receipt, never texted, 256 bits.
    # Tokens are found by their hash: longer tokens issued before still work.
    token = secrets.token_urlsafe(32 if kind == "receipt" else 16)
    session.add(GuardianLink(request_id=request.id, kind=kind, token_hash=token_hash(token), expires_at=expires_at))
    return token


def audit_step(session: Session, request: GuardianRequest, actor: str, action: str, **data: object) -> None:
    # The audit trail outlives erasure and cannot be edited, so it keeps no digit of the number and no
    # lookup of it (even a keyed hash would link an erased child to a guardian still on record): only the
    # country code. The request's id ties its events together.
    record_event(
        session,
        org_id=request.org_id,
        actor=actor,
        action=action,
        object_type="guardian_request",
        object_id=request.id,
        data={"phone": audit_mask(request.phone_masked), **data},
    )


def claim_request(session: Session, request: GuardianRequest, status: GuardianRequestStatus, now: datetime) -> bool:
    """Move the request out of ``pending`` exactly once (compare-and-set), even when two decisions race."""
    result = session.execute(
        update(GuardianRequest)
        .where(GuardianRequest.id == request.id, GuardianRequest.status == GuardianRequestStatus.PENDING)
        .values(status=status.value, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def expire_pending_consents(session: Session, request: GuardianRequest, *, actor: str, reason: str) -> None:
    """A request that ends undecided (expired, locked) expires the consents still waiting for the guardian."""
    for consent in request.consents:
        end_consent(
            session,
            consent,
            status=ConsentStatus.EXPIRED,
            actor=actor,
            reason=reason,
            expected=[ConsentStatus.PENDING_GUARDIAN],
        )
