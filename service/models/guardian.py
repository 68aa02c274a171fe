"""Guardian requests for children under the guardian age (R4), their links, and the SMS they caused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.models.consents import Consent
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow


class GuardianRequest(Base):
    __tablename__ = "guardian_requests"
    __table_args__ = (list_order_index("guardian_requests"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    #: A :class:`~service.domain.statuses.GuardianRequestStatus`; leaves ``pending`` once (compare-and-set).
    status: Mapped[str] = mapped_column(String(24), default="pending")
    delivery: Mapped[str] = mapped_column(String(8))
    locale: Mapped[str] = mapped_column(String(8))
    guardian_relationship: Mapped[str] = mapped_column(String(24))
    #: Personal data: the phone encrypted with DATA_KEY (cleared on erasure), its keyed hash, a mask.
    phone_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    phone_masked: Mapped[str] = mapped_column(String(32))
    #: The name the app chose to show the guardian which child is meant (e.g. 张*明), encrypted; erased.
    child_name_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The decision link's token, encrypted: for ``qr`` the app shows it as a QR code while pending; for
    #: ``sms`` only the SMS (and its resend) carries it, and no API answer ever does.
    link_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: pending, sent, failed, not_required
    delivery_status: Mapped[str] = mapped_column(String(16), default="pending")
    delivery_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    otp_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    otp_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    otp_failures: Mapped[int] = mapped_column(Integer, default=0)
    otp_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    consents: Mapped[list[Consent]] = relationship(
        primaryjoin="GuardianRequest.id == foreign(Consent.guardian_request_id)",
        order_by="Consent.created_at",
        lazy="selectin",
        viewonly=True,
    )


class GuardianLink(Base):
    """A random link token, stored hashed, good for one kind of page and one request."""

    __tablename__ = "guardian_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("guardian_requests.id"), index=True)
    #: decision or withdrawal
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[GuardianRequest] = relationship(lazy="joined", innerjoin=True)


class SmsMessage(Base):
    """One SMS sent or attempted; no number and no text, only the keyed hash of the number."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        Index("ix_sms_messages_phone_kind_created", "phone_hash", "kind", "created_at"),
        Index("ix_sms_messages_org_created", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("guardian_requests.id"), index=True)
    #: Cleared when the subject is erased.
    phone_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: link, code or withdrawal
    kind: Mapped[str] = mapped_column(String(16))
    #: sending (the allowance is taken, the provider not yet answered), sent, failed, or cancelled (an erasure
    #: unqueued it; it still counts against the phone's limits)
    status: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
