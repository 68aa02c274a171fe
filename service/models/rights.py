"""People's rights (PIPL 44-50, R16): the links to their own page, and the requests they file there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, list_order_index, new_id, new_sequential_id, utcnow


class AccessLink(Base):
    """A random token, stored hashed, that opens one person's page (``/p/<token>``) and nothing else."""

    __tablename__ = "access_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``person`` (handed to an adult by the organization's app) or ``guardian`` (texted to a child's guardian)
    holder: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RightsRequest(Base):
    """A correction or deletion request, or a complaint, filed by the person (or guardian) on their page."""

    __tablename__ = "rights_requests"
    __table_args__ = (Index("ix_rights_requests_org_id_id", "org_id", "id"), list_order_index("rights_requests"))

    #: UUIDv7: time-ordered, so that the list's cursor is the last id read.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_sequential_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id"), index=True)
    #: correction, deletion or complaint
    kind: Mapped[str] = mapped_column(String(16))
    #: The person's own words: personal data, kept out of the audit trail and erased with the subject.
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: open or closed
    status: Mapped[str] = mapped_column(String(16), default="open")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The organization's answer when it closed the request: erased with the subject too.
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
