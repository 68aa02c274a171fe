"""People whose faces may be processed, and their consents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.models.purposes import Purpose
from service.models.types import UTCDateTime, new_id, utcnow

LIVE_STATUSES = ("active", "pending_guardian")


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("org_id", "external_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: Personal data: cleared on erasure.
    external_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(nullable=True)
    guardian_required_until: Mapped[date | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


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
            sqlite_where=text("status IN ('active', 'pending_guardian')"),
            postgresql_where=text("status IN ('active', 'pending_guardian')"),
        ),
        Index("ix_consents_subject_purpose_created", "subject_id", "purpose_id", "created_at"),
        UniqueConstraint("status_list_id", "status_idx"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"))
    purpose_id: Mapped[str] = mapped_column(ForeignKey("purposes.id"), index=True)
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
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    purpose: Mapped[Purpose] = relationship(lazy="joined", innerjoin=True)
    subject: Mapped[Subject] = relationship()
