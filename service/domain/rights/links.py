"""Links to a person's own page (``/p/<token>``): random, stored hashed, bound to one subject, expiring.

An adult's link is answered to the organization's app, which hands it to the person. A child's is texted
to the guardian (the phone of the child's latest guardian request) and never answered: the organization
holding its API key must not be able to act as the guardian, here as on the guardian's pages (R4).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.consent_lifecycle import lock_subject
from service.domain.guardian.messages import reserve_sms
from service.domain.guardian.messaging import compose
from service.domain.subjects import get_subject, is_minor
from service.errors import Conflict, DomainError, NotFound
from service.keys.crypto import token_hash
from service.models import AccessLink, GuardianRequest, Organization, SmsMessage, Subject, utcnow
from service.sms import TextMessage

PERSON, GUARDIAN = "person", "guardian"
#: The SMS kind of a guardian's access link, counted in the phone's allowance like every other SMS.
ACCESS_SMS = "access"


class NoGuardianPhone(Conflict):
    """A child's link goes to the guardian's phone, and no guardian request left one."""

    code = "no_guardian_phone"


class AccessLinkGone(DomainError):
    """The link was valid once and has expired."""

    status = 410
    code = "link_expired"


@dataclass(frozen=True)
class IssuedLink:
    """A new link. ``token`` is shown once: to the app for an adult, in the guardian's SMS for a child."""

    link: AccessLink
    token: str
    #: For a child: the guardian request whose phone receives it, and the SMS reserved for it.
    guardian_request: GuardianRequest | None = None
    reservation: SmsMessage | None = None


def page_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/p/{token}"


def latest_guardian_request(session: Session, subject: Subject) -> GuardianRequest | None:
    """The child's most recent guardian request that still has a phone on record."""
    return session.scalars(
        select(GuardianRequest)
        .where(
            GuardianRequest.org_id == subject.org_id,
            GuardianRequest.subject_id == subject.id,
            GuardianRequest.phone_ciphertext.is_not(None),
        )
        .order_by(GuardianRequest.created_at.desc(), GuardianRequest.id.desc())
        .limit(1)
    ).first()


def issue_access_link(
    session: Session, *, org_id: str, actor: str, subject_id: str, hours: int, daily_sms_limit: int
) -> IssuedLink:
    """A new link to the person's page; for a child, reserved as an SMS to the guardian (send after commit).

    Refused: an erased subject (409 ``subject_erased``), a child without a guardian phone on record (409
    ``no_guardian_phone``), the phone's SMS allowance spent (429, nothing created).
    """
    get_subject(session, org_id=org_id, subject_id=subject_id)
    subject = lock_subject(session, subject_id)  # erasure takes it too: no link outlives an erasure
    assert subject is not None
    if subject.erased_at is not None:
        raise Conflict("this subject was erased", code="subject_erased")
    now = utcnow()
    request, reservation = None, None
    if is_minor(subject, now.date()):
        request = latest_guardian_request(session, subject)
        if request is None:
            raise NoGuardianPhone("a child's link goes to the guardian's phone, and none is on record")
        reservation = reserve_sms(session, request, kind=ACCESS_SMS, daily_limit=daily_sms_limit)
    token = secrets.token_urlsafe(16)  # 128 bits, 22 characters: a mainland SMS template's variable holds it
    link = AccessLink(
        org_id=org_id,
        subject_id=subject.id,
        token_hash=token_hash(token),
        holder=GUARDIAN if request is not None else PERSON,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(link)
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="access_link.issued",
        object_type="subject",
        object_id=subject.id,
        data={"link_id": link.id, "holder": link.holder, "expires_at": link.expires_at.isoformat()},
    )
    return IssuedLink(link=link, token=token, guardian_request=request, reservation=reservation)


def resolve_access_link(session: Session, token: str, *, now: datetime | None = None) -> AccessLink:
    """The link of a token: 404 for a wrong one (or one erased), 410 for an expired one."""
    if not 20 <= len(token) <= 100 or not token.isascii():
        raise NotFound("no such link")
    link = session.scalars(select(AccessLink).where(AccessLink.token_hash == token_hash(token))).first()
    if link is None:
        raise NotFound("no such link")
    if link.expires_at <= (now or utcnow()):
        raise AccessLinkGone("this link has expired")
    return link


def link_actor(link: AccessLink) -> str:
    """Who acts through a link, in the audit trail: the holder and the link, never the token."""
    return f"{link.holder}:{link.id}"


def access_text(session: Session, request: GuardianRequest, url: str, expires_at: datetime) -> TextMessage:
    """The guardian's SMS (``access`` in ``messaging.TEMPLATES``): names the organization, never the child."""
    org = session.get(Organization, request.org_id)
    public_url, _, token = url.rpartition("/p/")
    return compose(
        ACCESS_SMS,
        request.locale,
        org=org.name if org else "",
        public_url=public_url,
        token=token,
        expires_at=expires_at,
    )
