"""Links that open one organization's compliance report in a browser, without an API key, until they expire.

Issuing one is recorded in the organization's audit trail (who, when, until when); the token itself is
never stored or logged: it is all the page asks for.

A leaked link is stopped by revoking them all: every link of the organization issued up to the second of
the revocation stops opening (a link's ``iat`` is in whole seconds). Links are not stored, so there is
no list to strike one from; the organization asks for new ones. A link asked for within that same second
would be dead on arrival: it is refused (409), to be asked for again a second later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.errors import Conflict, NotFound
from service.keys.report_links import encode_report_link
from service.keys.tokens import KeySet
from service.models import Organization, new_id, utcnow

#: The page a link opens; its last segment is the token.
PATH = "/report/"


@dataclass(frozen=True)
class IssuedReportLink:
    url: str
    expires_at: datetime


def issue_report_link(
    session: Session,
    *,
    org_id: str,
    actor: str,
    hours: int,
    keys: KeySet,
    issuer: str,
    public_url: str,
    locale: str | None = None,
    now: datetime | None = None,
) -> IssuedReportLink:
    """Sign a link to the organization's report valid ``hours`` (1 to 720) and record who asked for it."""
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("organization")
    link_id = new_id()
    issued_at = (now or utcnow()).replace(microsecond=0)
    if revoked(org, int(issued_at.timestamp())):
        raise Conflict("report links were revoked less than a second ago: ask for a new one in a second")
    expires_at = issued_at + timedelta(hours=hours)
    token = encode_report_link(
        keys, issuer=issuer, org_id=org_id, link_id=link_id, issued_at=issued_at, expires_at=expires_at
    )
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="report_link.issued",
        object_type="report_link",
        object_id=link_id,
        data={"expires_at": expires_at.isoformat(), "hours": hours},
    )
    query = f"?lang={locale}" if locale else ""
    return IssuedReportLink(url=f"{public_url.rstrip('/')}{PATH}{token}{query}", expires_at=expires_at)


def revoked(org: Organization, issued_at: int) -> bool:
    """Whether the organization revoked its links after one issued at ``issued_at`` (a link's ``iat``)."""
    valid_after = org.report_links_valid_after
    return valid_after is not None and issued_at <= int(valid_after.timestamp())


def revoke_report_links(session: Session, *, org_id: str, actor: str, now: datetime | None = None) -> datetime:
    """Stop every link to the organization's report issued up to now (to the second); recorded in the audit
    trail. Links asked for from the next second on open as usual. Returns the moment of the revocation.

    The organization's row is locked: two revocations at once leave the later moment."""
    org = session.get(Organization, org_id, with_for_update=True)
    if org is None:
        raise NotFound("organization")
    now = now or utcnow()
    # Never back: a revocation on an instance whose clock is behind must not bring links back to life.
    if org.report_links_valid_after is None or org.report_links_valid_after < now:
        org.report_links_valid_after = now
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="report_links.revoked",
        object_type="organization",
        object_id=org_id,
        data={"issued_up_to": now.replace(microsecond=0).isoformat()},
    )
    return now
