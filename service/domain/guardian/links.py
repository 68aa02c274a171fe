"""Opening a guardian link: 404 for a wrong one, 410 for an expired, used, decided or locked one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.guardian.requests import expire_if_due
from service.errors import DomainError, NotFound
from service.keys.crypto import token_hash
from service.models import GuardianLink, utcnow


class LinkGone(DomainError):
    """The link was valid once: used, decided, expired or locked."""

    status = 410
    code = "gone"


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
