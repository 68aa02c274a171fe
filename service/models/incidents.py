"""Security incidents: a major one calls for a reassessment of the purposes it touched (R10)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.models.purposes import Purpose
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow

incident_purposes = Table(
    "incident_purposes",
    Base.metadata,
    Column("incident_id", ForeignKey("incidents.id"), primary_key=True),
    Column("purpose_id", ForeignKey("purposes.id"), primary_key=True, index=True),
)


class Incident(Base):
    """A record kept for supervisors, never edited or deleted."""

    __tablename__ = "incidents"
    __table_args__ = (list_order_index("incidents"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text)
    #: ``minor`` or ``major`` (domain.assessments.SEVERITIES).
    severity: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purposes: Mapped[list[Purpose]] = relationship(secondary=incident_purposes, lazy="selectin")

    @property
    def purpose_codes(self) -> list[str]:
        return [p.code for p in self.purposes]
