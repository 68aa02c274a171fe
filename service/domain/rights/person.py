"""What a person does on their page: see their consents, withdraw one, take a copy of their data (PIPL 44-45).

Everything is read through the link's subject and organization: an id of another person's consent finds
nothing. Withdrawal is the same revoke as the API's (R3): effective at once, audited, never undone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.consent_lifecycle import effective_status
from service.domain.consents import revoke_consent
from service.domain.rights.links import link_actor
from service.domain.rights.requests import requests_of_subject
from service.domain.statuses import ENDABLE_CONSENT, ConsentStatus
from service.domain.subjects import is_minor
from service.errors import NotFound
from service.models import AccessLink, Consent, GuardianRequest, Notice, Organization, Subject, utcnow

#: The statuses a person can withdraw on the page (an expired one is over already).
WITHDRAWABLE = tuple(status for status in ENDABLE_CONSENT if status != ConsentStatus.EXPIRED)


def consents_of_person(session: Session, link: AccessLink) -> list[Consent]:
    """Every consent the organization holds for the link's subject, newest first."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.org_id == link.org_id, Consent.subject_id == link.subject_id)
            .order_by(Consent.created_at.desc(), Consent.id)
        )
    )


def consent_of_person(session: Session, link: AccessLink, consent_id: str) -> Consent:
    """One of the subject's consents; 404 for any other id (another person's, another organization's)."""
    if not 1 <= len(consent_id) <= 36 or not consent_id.isascii() or not consent_id.isprintable():
        raise NotFound("no such consent")
    consent = session.get(Consent, consent_id)
    if consent is None or consent.org_id != link.org_id or consent.subject_id != link.subject_id:
        raise NotFound("no such consent")
    return consent


def withdraw_on_page(session: Session, link: AccessLink, consent_id: str) -> Consent:
    """Withdraw one of the subject's consents through the revoke every withdrawal takes (R3)."""
    consent = consent_of_person(session, link, consent_id)
    return revoke_consent(session, org_id=link.org_id, actor=link_actor(link), consent_id=consent.id)


def copy_of_data(session: Session, link: AccessLink) -> dict[str, Any]:
    """The person's data as the organization holds it here (PIPL 45): their own, nobody else's.

    Guardians' phone numbers appear masked only; the organization's API keys by id only.
    """
    subject = session.get(Subject, link.subject_id)
    org = session.get(Organization, link.org_id)
    assert subject is not None and org is not None
    now = utcnow()
    consents = consents_of_person(session, link)
    notices = {
        (notice.purpose_id, notice.version): notice
        for notice in session.scalars(
            select(Notice).where(Notice.purpose_id.in_({consent.purpose_id for consent in consents}))
        )
    }
    requests = session.scalars(
        select(GuardianRequest)
        .where(GuardianRequest.org_id == link.org_id, GuardianRequest.subject_id == link.subject_id)
        .order_by(GuardianRequest.created_at)
    ).all()
    return {
        "generated_at": now.isoformat(),
        "controller": org.controller(),
        "subject": {
            "id": subject.id,
            "external_ref": subject.external_ref,
            "birth_date": subject.birth_date.isoformat() if subject.birth_date else None,
            "is_minor": is_minor(subject, now.date()),
            "guardian_required_until": (
                subject.guardian_required_until.isoformat() if subject.guardian_required_until else None
            ),
            "created_at": subject.created_at.isoformat(),
        },
        "consents": [
            _consent_copy(consent, notices.get((consent.purpose_id, consent.notice_version)), now)
            for consent in consents
        ],
        "guardian_requests": [
            {
                "id": request.id,
                "status": request.status,
                "delivery": request.delivery,
                "relationship": request.guardian_relationship,
                "phone_masked": request.phone_masked,
                "created_at": request.created_at.isoformat(),
                "decided_at": request.decided_at.isoformat() if request.decided_at else None,
            }
            for request in requests
        ],
        "rights_requests": [
            {
                "id": filed.id,
                "kind": filed.kind,
                "details": filed.details,
                "status": filed.status,
                "due_at": filed.due_at.isoformat(),
                "outcome": filed.outcome,
                "created_at": filed.created_at.isoformat(),
                "closed_at": filed.closed_at.isoformat() if filed.closed_at else None,
            }
            for filed in requests_of_subject(session, link)
        ],
    }


def _consent_copy(consent: Consent, notice: Notice | None, now: Any) -> dict[str, Any]:
    purpose = consent.purpose
    return {
        "id": consent.id,
        "purpose": {
            "code": purpose.code,
            "name": purpose.name,
            "description": purpose.description,
            "alternative": purpose.alternative,
            "retention_days": purpose.retention_days,
        },
        "status": effective_status(consent, now),
        "guardian_authorized": consent.guardian_authorized,
        "notice": {
            "version": consent.notice_version,
            "digest": consent.notice_digest,
            "texts": notice.texts if notice is not None else None,
        },
        "evidence": consent.evidence,
        "granted_at": consent.granted_at.isoformat() if consent.granted_at else None,
        "expires_at": consent.expires_at.isoformat() if consent.expires_at else None,
        "ended_at": consent.ended_at.isoformat() if consent.ended_at else None,
        "end_reason": consent.end_reason,
        "end_note": consent.end_note,
        "created_at": consent.created_at.isoformat(),
    }
