"""One person's separate consent to one purpose (R2): the row every decision reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.domain.statuses import LIVE_CONSENT
from service.models.purposes import Purpose
from service.models.subjects import Subject
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow

LIVE_WHERE = "status IN ({})".format(", ".join(f"'{status}'" for status in LIVE_CONSENT))


class Consent(Base):
    """One person's separate consent to one purpose (R2)."""

    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key"),
        # One live consent per person and purpose, enforced by the database itself.
        Index(
            "uq_consents_live_subject_purpose",
            "subject_id",
            "purpose_id",
            unique=True,
            sqlite_where=text(LIVE_WHERE),
            postgresql_where=text(LIVE_WHERE),
        ),
        Index("ix_consents_subject_purpose_created", "subject_id", "purpose_id", "created_at"),
        UniqueConstraint("status_list_id", "status_idx"),
        # The sweep finds consents that ended lately by it, to owe deletions for allows that raced the end.
        Index("ix_consents_updated_at", "updated_at"),
        list_order_index("consents"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    purpose_id: Mapped[str] = mapped_column(ForeignKey("purposes.id"), index=True)
    #: A :class:`~service.domain.statuses.ConsentStatus`; changed only by ``service.domain.consent_lifecycle``.
    status: Mapped[str] = mapped_column(String(24))
    notice_version: Mapped[int] = mapped_column(Integer)
    notice_digest: Mapped[str] = mapped_column(String(64))
    guardian_authorized: Mapped[bool] = mapped_column(Boolean, default=False)
    status_list_id: Mapped[str | None] = mapped_column(ForeignKey("status_lists.id"), nullable=True)
    status_idx: Mapped[int | None] = mapped_column(Integer, nullable=True)
    guardian_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("guardian_requests.id"), nullable=True, index=True
    )
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Why it ended, as a code (``withdrawn``, ``subject_erased``, ``guardian_declined`` ...): in the audit trail.
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The person's or operator's own words about a withdrawal: personal data, kept out of the audit trail
    #: (whose hash chain cannot forget) and erased with the subject.
    end_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    purpose: Mapped[Purpose] = relationship(lazy="joined", innerjoin=True)
    subject: Mapped[Subject] = relationship()
