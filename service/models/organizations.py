"""Organizations (tenants) and their API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    #: The personal-information protection officer (PIPL Art. 52), shown on every page for people.
    pipo_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pipo_contact: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Where people complain or exercise their rights (PIPL Art. 50).
    complaint_channel: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Report links issued up to this second no longer open (``DELETE /v1/reports/compliance/links``).
    report_links_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def pipo(self) -> dict[str, str] | None:
        if self.pipo_name is None and self.pipo_contact is None:
            return None
        return {"name": self.pipo_name or "", "contact": self.pipo_contact or ""}

    def controller(self) -> dict[str, object]:
        """Who processes the faces, as every notice and receipt names them."""
        return {
            "id": self.id,
            "name": self.name,
            "contact": self.contact,
            "pipo": self.pipo,
            "complaint_channel": self.complaint_channel,
        }


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (list_order_index("api_keys"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: SHA-256 of the whole key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the key, so people can tell their keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(100))
    #: What the key is for, as the organization calls it; keys made before issue 14 have none.
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: At most a minute behind: written once a minute per key, never on the verify path's critical section.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The key that created this one through the API; NULL for keys made on the command line (and before
    #: this was recorded). No foreign key, like the other records of which key did something.
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)

    @property
    def creator(self) -> str:
        """Who created the key: the id of the key that did, through the API, or ``cli``."""
        return self.created_by or "cli"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split(","))

    @property
    def scope_list(self) -> list[str]:
        return sorted(self.scope_set)
