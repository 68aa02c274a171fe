"""The record of every verification decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, new_sequential_id, utcnow

ALLOWED = "decision = 'allow'"


class Verification(Base):
    # No foreign keys on purpose: this is the hot insert of the verify path, and a decision must be
    # recorded even when the token names nothing that exists.
    __tablename__ = "verifications"
    __table_args__ = (
        Index("ix_verifications_org_created", "org_id", "created_at"),
        # Which keys were allowed to use a consent, read when it ends (R13). Partial: only allows are
        # indexed, one small entry each; denials, most of the records, cost nothing more.
        Index(
            "ix_verifications_allowed_consent",
            "consent_id",
            "api_key_id",
            sqlite_where=text(ALLOWED),
            postgresql_where=text(ALLOWED),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_sequential_id)
    org_id: Mapped[str] = mapped_column(String(36))
    api_key_id: Mapped[str] = mapped_column(String(36))
    purpose: Mapped[str] = mapped_column(String(64))
    consent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
