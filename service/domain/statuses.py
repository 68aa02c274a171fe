"""The statuses of consents and guardian requests, and which of them are live or can still end.

Plain enums with no imports, so that models, schemas and the domain all name statuses the same way.
Every transition between them is in :mod:`service.domain.consent_lifecycle`.
"""

from __future__ import annotations

from enum import StrEnum


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    PENDING_GUARDIAN = "pending_guardian"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"


#: At most one consent per person and purpose is live (a unique partial index says so too).
LIVE_CONSENT = (ConsentStatus.ACTIVE, ConsentStatus.PENDING_GUARDIAN)
#: Statuses a consent can still leave by withdrawal or erasure.
ENDABLE_CONSENT = (ConsentStatus.ACTIVE, ConsentStatus.PENDING_GUARDIAN, ConsentStatus.RECONSENT_REQUIRED)
#: Final statuses: a consent in one of them never changes again.
FINAL_CONSENT = (ConsentStatus.DECLINED, ConsentStatus.REVOKED, ConsentStatus.EXPIRED)


class GuardianRequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    PARTIALLY_APPROVED = "partially_approved"
    DECLINED = "declined"
    EXPIRED = "expired"
    LOCKED = "locked"


class Relationship(StrEnum):
    """Who may decide for a child (PIPL Art. 31): a parent or another legal guardian."""

    PARENT = "parent"
    LEGAL_GUARDIAN = "legal_guardian"


class Delivery(StrEnum):
    """How the guardian's decision reaches the service: the SMS link, the QR code (and an SMS code), or a
    signed paper form that the organization records (written consent, PIPL Art. 29)."""

    SMS = "sms"
    QR = "qr"
    PAPER = "paper"


class PaperAnswer(StrEnum):
    """A guardian's answer for one purpose on a written (paper) form."""

    APPROVE = "approve"
    DECLINE = "decline"
