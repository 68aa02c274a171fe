"""Links that open one organization's compliance report in a browser, without an API key, until they expire.

Issuing one is recorded in the organization's audit trail (who, when, until when); the token itself is
never stored or logged: it is all the page asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.errors import NotFound
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
) -> IssuedReportLink:
    """Sign a link to the organization's report valid ``hours`` (1 to 720) and record who asked for it."""
    if session.get(Organization, org_id) is None:
        raise NotFound("organization")
    link_id = new_id()
    issued_at = utcnow().replace(microsecond=0)
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
