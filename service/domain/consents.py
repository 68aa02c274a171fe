"""Separate consent per person and purpose (R2), withdrawal (R3), and their tokens."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.domain.assessments import assessment_is_current
from service.domain.audit import canonical_json
from service.domain.consent_lifecycle import (
    ENDABLE_CONSENT,
    LIVE_CONSENT,
    ConsentStatus,
    activate,
    effective_status,
    end_consent,
    lock_subject,
    persist_expiry,
    record_refusal,
    take_notice,
)
from service.domain.pages import Page, page
from service.domain.purposes import get_purpose
from service.domain.status_lists import status_uri
from service.domain.subjects import get_subject, is_minor
from service.errors import Conflict, NotFound, Unprocessable
from service.keys.tokens import KeySet, encode_consent_token
from service.models import Consent, Purpose, Subject, utcnow


def request_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def get_consent(session: Session, *, org_id: str, consent_id: str) -> Consent:
    consent = session.get(Consent, consent_id)
    if consent is None or consent.org_id != org_id:
        raise NotFound(f"consent {consent_id} does not exist")
    return consent


def list_consents(
    session: Session,
    *,
    org_id: str,
    cursor: str | None,
    limit: int,
    subject_id: str | None = None,
    purpose: str | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> Page[Consent]:
    """The organization's consents, oldest first; ``status`` as ``GET /v1/consents/{id}`` shows it (an active
    consent past ``expires_at`` is ``expired``)."""
    now = now or utcnow()
    query = select(Consent).where(Consent.org_id == org_id)
    if subject_id is not None:
        query = query.where(Consent.subject_id == subject_id)
    if purpose is not None:
        query = query.where(Consent.purpose.has(Purpose.code == purpose))
    if status == ConsentStatus.ACTIVE:
        query = query.where(
            Consent.status == ConsentStatus.ACTIVE, or_(Consent.expires_at.is_(None), Consent.expires_at > now)
        )
    elif status == ConsentStatus.EXPIRED:
        query = query.where(
            or_(
                Consent.status == ConsentStatus.EXPIRED,
                and_(Consent.status == ConsentStatus.ACTIVE, Consent.expires_at <= now),
            )
        )
    elif status is not None:
        query = query.where(Consent.status == status)
    return page(session, query, Consent, kind="consents", cursor=cursor, limit=limit)


def find_by_idempotency_key(session: Session, *, org_id: str, key: str, fingerprint: str) -> Consent | None:
    consent = session.scalars(select(Consent).where(Consent.org_id == org_id, Consent.idempotency_key == key)).first()
    if consent is not None and consent.request_fingerprint != fingerprint:
        raise Unprocessable("this Idempotency-Key was used with a different request", code="idempotency_key_reused")
    return consent


class TransmissionConsentRequired(Unprocessable):
    """A purpose that sends face data off the device needs its own act of consent to that (R9)."""

    code = "transmission_consent_required"


def require_transmission_consent(purpose: Purpose, evidence: dict[str, Any]) -> None:
    """R9: consent to a purpose that transmits face data is not consent to the transmission itself.

    The person must have given a second, separate act of consent to it (``transmission_consent: true``);
    anything else, absent or false, is not that act.
    """
    if purpose.transmits_face_data and evidence.get("transmission_consent") is not True:
        raise TransmissionConsentRequired(
            f"purpose {purpose.code!r} sends face data off the device: that needs its own act of consent, "
            "evidence.transmission_consent: true",
            details={"purpose": purpose.code},
        )


def _new_consent(
    session: Session,
    live: Consent | None,
    *,
    org_id: str,
    subject: Subject,
    purpose: Purpose,
    idempotency_key: str | None,
    fingerprint: str | None,
    hint: str = "",
) -> Consent:
    """A new consent row for the person and purpose, unless a live one (not past its end) exists: 409."""
    if live is not None and not persist_expiry(session, live):
        raise Conflict(
            f"this person already has a live consent to this purpose{hint}",
            code="consent_exists",
            details={"consent_id": live.id},
        )
    return Consent(
        org_id=org_id,
        subject_id=subject.id,
        purpose_id=purpose.id,
        purpose=purpose,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )


def _adult_subject(session: Session, *, org_id: str, subject_id: str) -> Subject:
    """The person, under their row lock, if they may decide for themself: not erased, not a minor."""
    get_subject(session, org_id=org_id, subject_id=subject_id)  # 404 before any lock
    subject = lock_subject(session, subject_id)
    assert subject is not None
    if subject.erased_at is not None:
        raise Conflict("this subject was erased", code="subject_erased")
    return subject


def _refuse_minor(subject: Subject, now: datetime) -> None:
    if is_minor(subject, now.date()):
        # A child under the guardian age neither consents nor refuses alone (PIPL 31): the guardian does
        # both, through a guardian request, where declining is one of the answers.
        raise Conflict(
            "this person is under the guardian age: consent must come from a parent or guardian "
            "through POST /v1/guardian-requests",
            code="guardian_required",
        )


def _live_consent(session: Session, subject: Subject, purpose: Purpose) -> Consent | None:
    return session.scalars(
        select(Consent)
        .where(Consent.subject_id == subject.id, Consent.purpose_id == purpose.id, Consent.status.in_(LIVE_CONSENT))
        .execution_options(populate_existing=True)
    ).first()


def grant_consent(
    session: Session,
    *,
    org_id: str,
    actor: str,
    subject_id: str,
    purpose_code: str,
    notice_version: int,
    evidence: dict[str, Any],
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Consent:
    """Record an adult's separate consent to one purpose, bound to the notice version they were shown."""
    now = utcnow()
    subject = _adult_subject(session, org_id=org_id, subject_id=subject_id)
    purpose = get_purpose(session, org_id=org_id, code=purpose_code)
    _refuse_minor(subject, now)
    notice = take_notice(session, purpose)  # also reads the purpose afresh, under the lock
    if not assessment_is_current(purpose, now):
        raise Conflict(f"purpose {purpose.code!r} has no current impact assessment", code="assessment_required")
    if notice_version != notice.version:
        raise Conflict(
            f"notice version {notice_version} is not the current one ({notice.version})",
            code="stale_notice",
            details={"current_version": notice.version},
        )
    require_transmission_consent(purpose, evidence)
    live = _live_consent(session, subject, purpose)
    if live is not None and idempotency_key is not None and live.idempotency_key == idempotency_key:
        # The same request, committed by a concurrent twin between our key lookup and now.
        if live.request_fingerprint != fingerprint:
            raise Unprocessable("this Idempotency-Key was used with a different request", code="idempotency_key_reused")
        return live
    consent = _new_consent(
        session,
        live,
        org_id=org_id,
        subject=subject,
        purpose=purpose,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    activate(
        session,
        consent,
        actor=actor,
        notice=notice,
        granted_at=now,
        expires_at=now + timedelta(days=purpose.retention_days),
        evidence={
            **evidence,
            "recorded_at": now.isoformat(),
            "notice_digest": notice.digest,
            "transmits_face_data": purpose.transmits_face_data,
        },
    )
    return consent


def decline_consent(
    session: Session,
    *,
    org_id: str,
    actor: str,
    subject_id: str,
    purpose_code: str,
    notice_version: int,
    evidence: dict[str, Any],
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Consent:
    """Record an adult's refusal of one purpose: a ``declined`` consent, with its evidence and audit event.

    Refusing is the person's right (PIPL 16, Measures Art. 12), so it asks less than a grant: no current
    impact assessment, no transmission consent, and any notice version the purpose has had (the refusal is
    bound to the one the person was shown). Still refused: a minor (409 ``guardian_required``: the
    guardian declines for them), an erased subject, and a person with a live consent to the purpose (409
    ``consent_exists``: to end it, withdraw it), since the newest consent is what verification reads.
    """
    now = utcnow()
    subject = _adult_subject(session, org_id=org_id, subject_id=subject_id)
    purpose = get_purpose(session, org_id=org_id, code=purpose_code)
    _refuse_minor(subject, now)
    current = take_notice(session, purpose)
    notice = next((n for n in purpose.notices if n.version == notice_version), None)
    if notice is None:
        raise Conflict(
            f"purpose {purpose.code!r} has no notice version {notice_version}",
            code="stale_notice",
            details={"current_version": current.version},
        )
    if idempotency_key is not None:
        twin = session.scalars(
            select(Consent).where(Consent.org_id == org_id, Consent.idempotency_key == idempotency_key)
        ).first()
        if twin is not None:  # committed by a concurrent twin between our key lookup and now
            if twin.request_fingerprint != fingerprint:
                raise Unprocessable(
                    "this Idempotency-Key was used with a different request", code="idempotency_key_reused"
                )
            return twin
    consent = _new_consent(
        session,
        _live_consent(session, subject, purpose),
        org_id=org_id,
        subject=subject,
        purpose=purpose,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        hint=": withdraw it (POST /v1/consents/{id}/revoke)",
    )
    record_refusal(
        session,
        consent,
        actor=actor,
        notice=notice,
        declined_at=now,
        evidence={
            **evidence,
            "decision": "declined",
            "recorded_at": now.isoformat(),
            "notice_digest": notice.digest,
            "transmits_face_data": purpose.transmits_face_data,
        },
    )
    return consent


def revoke_consent(session: Session, *, org_id: str, actor: str, consent_id: str, note: str | None = None) -> Consent:
    """Withdraw consent, effective at once; revoking again changes nothing (idempotent).

    ``note`` is the person's or operator's own words: kept on the consent, out of the audit trail.
    """
    consent = get_consent(session, org_id=org_id, consent_id=consent_id)
    lock_subject(session, consent.subject_id)
    session.refresh(consent)
    if consent.status == ConsentStatus.REVOKED:
        return consent
    status = effective_status(consent, utcnow())
    if status not in ENDABLE_CONSENT:
        raise Conflict(f"a {status} consent cannot be withdrawn", code="consent_ended")
    ended = end_consent(session, consent, status=ConsentStatus.REVOKED, actor=actor, reason="withdrawn", note=note)
    if not ended and consent.status != ConsentStatus.REVOKED:
        # An expiry sweep (which takes no subject lock) ended it a moment before.
        raise Conflict(f"a {consent.status} consent cannot be withdrawn", code="consent_ended")
    return consent


def consent_token(consent: Consent, *, keys: KeySet, issuer: str, public_url: str) -> str | None:
    """The consent's token while it is active; re-signed on demand, never stored."""
    if consent.granted_at is None or consent.expires_at is None:
        return None
    if effective_status(consent, utcnow()) != ConsentStatus.ACTIVE:
        return None
    return encode_consent_token(
        keys,
        issuer=issuer,
        org_id=consent.org_id,
        subject_id=consent.subject_id,
        consent_id=consent.id,
        purpose=consent.purpose.code,
        issued_at=consent.granted_at,
        expires_at=consent.expires_at,
        guardian=consent.guardian_authorized,
        notice_digest=consent.notice_digest,
        status=(
            {"status_list": {"idx": consent.status_idx, "uri": status_uri(public_url, consent.status_list_id)}}
            if consent.status_list_id is not None and consent.status_idx is not None
            else None
        ),
    )
