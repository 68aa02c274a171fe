"""The purpose catalog: purposes, their versioned notices, and impact assessments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow


class Purpose(Base):
    __tablename__ = "purposes"
    __table_args__ = (UniqueConstraint("org_id", "code"), list_order_index("purposes"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    # What people read, by locale ({"zh-CN": …, "en": …}); see domain.purposes.LOCALIZED_FIELDS.
    name: Mapped[dict[str, str]] = mapped_column(JSON)
    description: Mapped[dict[str, str]] = mapped_column(JSON)
    category: Mapped[str] = mapped_column(String(32))
    necessity: Mapped[dict[str, str]] = mapped_column(JSON)
    alternative: Mapped[dict[str, str]] = mapped_column(JSON)
    processing_method: Mapped[dict[str, str]] = mapped_column(JSON)
    rights_impact: Mapped[dict[str, str]] = mapped_column(JSON)
    #: ``device`` (a fixed camera or terminal, which must be registered) or ``personal_device``.
    capture: Mapped[str] = mapped_column(String(16))
    retention_days: Mapped[int] = mapped_column(Integer)
    analyses: Mapped[list[str]] = mapped_column(JSON, default=list)
    transmits_face_data: Mapped[bool] = mapped_column(Boolean, default=False)
    notice_version: Mapped[int] = mapped_column(Integer, default=1)
    #: The last day covered by a current impact assessment (denormalized for the verify path).
    assessed_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: Set by a major incident: past it the purpose needs a new assessment (R10; domain.assessments).
    reassess_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    notices: Mapped[list[Notice]] = relationship(back_populates="purpose", order_by="Notice.version", lazy="selectin")

    @property
    def current_notice(self) -> Notice:
        return next(n for n in self.notices if n.version == self.notice_version)


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("purpose_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    purpose_id: Mapped[str] = mapped_column(ForeignKey("purposes.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: SHA-256 over the canonical JSON of everything the person was told (see domain.notices).
    digest: Mapped[str] = mapped_column(String(64))
    material: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purpose: Mapped[Purpose] = relationship(back_populates="notices")


assessment_purposes = Table(
    "assessment_purposes",
    Base.metadata,
    Column("assessment_id", ForeignKey("assessments.id"), primary_key=True),
    Column("purpose_id", ForeignKey("purposes.id"), primary_key=True),
)


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (list_order_index("assessments"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    conducted_at: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    # What Measures Art. 9 asks an assessment to state (domain.assessments.ART9_CONTENTS), and its
    # conclusion. Assessments recorded before v2 carry their summary as the conclusion and their measures as
    # the safeguards, the other three empty (migration 0007).
    lawfulness_necessity: Mapped[str | None] = mapped_column(Text, nullable=True)
    rights_impact: Mapped[str | None] = mapped_column(Text, nullable=True)
    security_risks: Mapped[str | None] = mapped_column(Text, nullable=True)
    safeguards: Mapped[str | None] = mapped_column(Text, nullable=True)
    conclusion: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Set when a material change to a purpose it covers calls for reassessment (R10).
    outdated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outdated_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purposes: Mapped[list[Purpose]] = relationship(secondary=assessment_purposes, lazy="selectin")

    @property
    def purpose_codes(self) -> list[str]:
        return [p.code for p in self.purposes]
