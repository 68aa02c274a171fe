"""The decision rules, pure: what a token, a consent's state and the device asking mean for one face.

Nothing here reads a database or a request. What a token alone decides (signature, expiry, purpose) is
Python; what the consent's state and the device decide is one SQL expression (:func:`reason`), which
the store (``service.verification.store``) evaluates in the very statement that records the decision,
so that a verification costs one round trip. Neither is written twice.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, literal_column, or_
from sqlalchemy.sql.elements import ColumnElement

from service.domain.places import PROHIBITED_LOCATION_TYPES, PUBLIC_PLACE_CATEGORY
from service.domain.statuses import ConsentStatus


class Reason(enum.StrEnum):
    """Every reason a verification can give: ``consent_active`` allows, all others deny."""

    CONSENT_ACTIVE = "consent_active"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason, not a secret)
    NO_CONSENT = "no_consent"
    UNKNOWN_PURPOSE = "unknown_purpose"
    PURPOSE_MISMATCH = "purpose_mismatch"
    PENDING_GUARDIAN = "pending_guardian"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"
    ASSESSMENT_REQUIRED = "assessment_required"
    DEVICE_REQUIRED = "device_required"
    DEVICE_UNKNOWN = "device_unknown"
    PROHIBITED_LOCATION = "prohibited_location"
    PUBLIC_SAFETY_ONLY = "public_safety_only"
    SUBJECT_ERASED = "subject_erased"
    UNAVAILABLE = "unavailable"


#: A consent that is not active denies with the reason its status names.
STATUS_REASONS = {
    ConsentStatus.PENDING_GUARDIAN.value: Reason.PENDING_GUARDIAN,
    ConsentStatus.DECLINED.value: Reason.DECLINED,
    ConsentStatus.REVOKED.value: Reason.REVOKED,
    ConsentStatus.EXPIRED.value: Reason.EXPIRED,
    ConsentStatus.RECONSENT_REQUIRED.value: Reason.RECONSENT_REQUIRED,
}


@dataclass(frozen=True)
class VerificationRequest:
    purpose: str
    token: str | None = None
    subject_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class Decision:
    reason: Reason
    consent_id: str | None = None
    subject_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.CONSENT_ACTIVE


def token_verdict(claims: dict[str, Any] | None, failure: Reason | None, purpose: str) -> Reason | None:
    """What a token alone decides, before any consent is read: a token we did not sign (or no longer
    accept), one past its ``exp``, or one issued for another purpose than the one asked about."""
    if failure is not None:
        return failure
    assert claims is not None
    return Reason.PURPOSE_MISMATCH if claims["pur"] != purpose else None


@dataclass(frozen=True)
class Judged:
    """The tables the consent rules read, as the store joined them for one request (``items`` is the
    request itself: its purpose, consent id and subject, the token's subject, its device, and any
    verdict the token alone gave)."""

    items: Any
    consent: Any
    subject: Any
    purpose: Any
    device: Any


_WORD = re.compile(r"[a-z_]+")


def text_constant(value: str) -> ColumnElement[str]:
    """A constant of ours (a reason, a status) written into the SQL rather than bound: the statement
    then has few parameters, and drivers cache its conversion (psycopg caches up to 50 parameters)."""
    if not _WORD.fullmatch(value):
        raise ValueError(f"not a plain word: {value!r}")
    return literal_column(f"'{value}'", String)  # a StrEnum formats as its value


def reason(t: Judged, now: Any, today: Any) -> ColumnElement[str]:
    """The reason for one request, as one SQL expression over the state the store joined.

    These are the consent rules, stated once: the store evaluates this expression in the statement that
    also records the decision, on every dialect, for one request or a batch. ``now`` and ``today`` are
    bound values (the verifier's clock), not the database's.
    """
    items, consent, subject, purpose, device = t.items.c, t.consent.c, t.subject.c, t.purpose.c, t.device.c
    status = case(
        {text_constant(status): text_constant(value) for status, value in STATUS_REASONS.items()},
        value=consent.status,
        else_=text_constant(Reason.NO_CONSENT),
    )
    return case(
        (items.verdict.is_not(None), items.verdict),
        # No consent: say why precisely, revealing nothing of another organization (all joins are ours).
        (and_(consent.id.is_(None), subject.erased_at.is_not(None)), text_constant(Reason.SUBJECT_ERASED)),
        (
            and_(consent.id.is_(None), subject.id.is_not(None), purpose.id.is_(None)),
            text_constant(Reason.UNKNOWN_PURPOSE),
        ),
        (consent.id.is_(None), text_constant(Reason.NO_CONSENT)),
        # A token signed by us allows only the consent it was issued for: its subject and its purpose.
        (
            and_(
                items.token_sub.is_not(None),
                or_(consent.subject_id != items.token_sub, purpose.id.is_(None), consent.purpose_id != purpose.id),
            ),
            text_constant(Reason.INVALID_TOKEN),
        ),
        (subject.erased_at.is_not(None), text_constant(Reason.SUBJECT_ERASED)),
        (consent.status != text_constant(ConsentStatus.ACTIVE), status),
        (and_(consent.expires_at.is_not(None), consent.expires_at <= now), text_constant(Reason.EXPIRED)),
        # A current impact assessment (R10), and no reassessment overdue after a major incident.
        (
            or_(
                purpose.assessed_until.is_(None),
                purpose.assessed_until < today,
                and_(purpose.reassess_by.is_not(None), purpose.reassess_by <= now),
            ),
            text_constant(Reason.ASSESSMENT_REQUIRED),
        ),
        # Where the face is captured matters (R7): a purpose captured by a fixed camera or terminal names
        # the registered device doing it.
        (
            and_(items.device_id.is_(None), purpose.capture == text_constant("device")),
            text_constant(Reason.DEVICE_REQUIRED),
        ),
        (
            and_(items.device_id.is_not(None), or_(device.id.is_(None), device.active.is_(False))),
            text_constant(Reason.DEVICE_UNKNOWN),
        ),
        (
            device.location_type.in_([text_constant(kind) for kind in sorted(PROHIBITED_LOCATION_TYPES)]),
            text_constant(Reason.PROHIBITED_LOCATION),
        ),
        (
            and_(device.public_place.is_(True), purpose.category != text_constant(PUBLIC_PLACE_CATEGORY)),
            text_constant(Reason.PUBLIC_SAFETY_ONLY),
        ),
        else_=text_constant(Reason.CONSENT_ACTIVE),
    )


def decision(found: ColumnElement[str]) -> ColumnElement[str]:
    """``allow`` for ``consent_active``, else ``deny``."""
    return case((found == text_constant(Reason.CONSENT_ACTIVE), text_constant("allow")), else_=text_constant("deny"))
