"""What a recognition system owes once a consent it was allowed to use has ended: deleting its face data (R13)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base
from service.models.consents import Consent
from service.models.types import UTCDateTime, list_order_index, new_sequential_id, utcnow


class Deletion(Base):
    """One API key's deletion owed for one ended consent: created when the consent ends, confirmed by the key."""

    __tablename__ = "deletions"
    __table_args__ = (UniqueConstraint("consent_id", "api_key_id"), list_order_index("deletions"))

    #: Sequential, so that a list ordered by id is in creation order and pages by id.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_sequential_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"))
    #: No foreign key: a removed key's deletions stay listed to the organization's admins.
    api_key_id: Mapped[str] = mapped_column(String(36), index=True)
    #: When the consent ended; the deletion is due ``DELETION_HOURS`` later.
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the sweep recorded ``deletion.overdue`` for it: once per deletion.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    consent: Mapped[Consent] = relationship(lazy="joined", innerjoin=True)
