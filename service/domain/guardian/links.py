"""Opening a guardian link: 404 for a wrong one, 410 for an expired, used, decided or locked one.

A third kind, the receipt (``/g/r/<token>``), is made when the guardian decides: it shows what was decided
and nothing else, stays reachable (for ``RECEIPT_DAYS`` at least, longer while a consent it granted runs)
and never opens the decision or withdrawal page.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.guardian.common import new_link
from service.domain.guardian.requests import expire_if_due
from service.errors import DomainError, NotFound
from service.keys.crypto import token_hash
from service.models import GuardianLink, GuardianRequest, utcnow

#: How long a receipt stays reachable at least; while a consent it granted runs, it stays as long.
RECEIPT_DAYS = 365


class LinkGone(DomainError):
    """The link was valid once: used, decided, expired or locked."""

    status = 410
    code = "gone"


def resolve_link(session: Session, token: str) -> GuardianLink:
    """Find the link of a token; 404 for a wrong one, 410 for an expired, used or decided one."""
    if not 20 <= len(token) <= 100:
        raise NotFound("no such link")
    link = session.scalars(select(GuardianLink).where(GuardianLink.token_hash == token_hash(token))).first()
    if link is None or link.kind == "receipt":  # a receipt only ever shows, at /g/r/<token>
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


def issue_receipt(session: Session, request: GuardianRequest, now: datetime) -> str:
    """The token of the receipt of a decision just recorded (256 random bits, stored hashed)."""
    ends = [c.expires_at for c in request.consents if c.expires_at is not None and c.granted_at is not None]
    expires_at = max([now + timedelta(days=RECEIPT_DAYS), *ends])
    return new_link(session, request, kind="receipt", expires_at=expires_at)


def resolve_receipt(session: Session, token: str) -> GuardianRequest:
    """The decided request a receipt token shows; 404 for a wrong, expired or erased one."""
    if not 20 <= len(token) <= 100:
        raise NotFound("no such receipt")
    link = session.scalars(
        select(GuardianLink).where(GuardianLink.token_hash == token_hash(token), GuardianLink.kind == "receipt")
    ).first()
    if link is None or link.expires_at <= utcnow() or link.request.decided_at is None:
        raise NotFound("no such receipt")
    return link.request
