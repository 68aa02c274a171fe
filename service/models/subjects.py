"""People whose faces may be processed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.encrypted import EncryptedDate, EncryptedText
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow


class Subject(Base):
    """A person. Their reference and dates are encrypted at rest, an adult's as a child's (R14, PIPL 28).

    Before migration 0007 they were stored in clear in the columns ``external_ref``, ``birth_date`` and
    ``guardian_required_until``; those columns stay in the table (SQLite cannot drop a column of a
    constraint without rebuilding the table), unmapped and empty once ``consent-gate db upgrade`` (or
    ``consent-gate subjects encrypt``) has encrypted what they held.
    """

    __tablename__ = "subjects"
    __table_args__ = (
        Index("uq_subjects_org_id_external_ref_hash", "org_id", "external_ref_hash", unique=True),
        list_order_index("subjects"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: Personal data, encrypted: cleared on erasure.
    external_ref: Mapped[str | None] = mapped_column("external_ref_ciphertext", EncryptedText, nullable=True)
    #: The reference's keyed hash within the organization (``service.domain.subjects.reference_hash``):
    #: lookups and uniqueness per organization without the reference. Cleared on erasure.
    external_ref_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    birth_date: Mapped[date | None] = mapped_column("birth_date_ciphertext", EncryptedDate, nullable=True)
    #: The birth date plus ``GUARDIAN_AGE`` years: for a child it tells the birth date exactly, so it is
    #: encrypted like it. Nothing in SQL reads it; ``is_minor`` compares it in Python.
    guardian_required_until: Mapped[date | None] = mapped_column(
        "guardian_required_until_ciphertext", EncryptedDate, nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
