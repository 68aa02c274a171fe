"""Revocation status lists (IETF OAuth Token Status List): each consent token has an index in one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, new_id, utcnow

STATUS_LIST_SIZE = 65536


class StatusList(Base):
    __tablename__ = "status_lists"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    size: Mapped[int] = mapped_column(Integer, default=STATUS_LIST_SIZE)
    #: The next free index; the row lock taken to advance it keeps allocations collision-free.
    next_idx: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
