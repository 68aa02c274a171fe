"""The registry of recognition devices and where they are (R7)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (list_order_index("devices"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    location_type: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(500), default="")
    #: Required for ``location_type: other``; never names a private place.
    location_description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: Derived from ``location_type`` when registered (``service.domain.places.is_public_place``).
    public_place: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A public place's evidence (R7): the signs (when posted, what they say, a photo's SHA-256) and
    #: the area where faces are collected.
    signage_posted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    signage_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    signage_photo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    collection_area: Mapped[str | None] = mapped_column(String(500), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def signage(self) -> dict[str, Any] | None:
        """The signs' evidence as the API shows it, or None when none was given."""
        if self.signage_posted_on is None:
            return None
        return {
            "posted_on": self.signage_posted_on,
            "text": self.signage_text,
            "photo_sha256": self.signage_photo_sha256,
        }
