"""Filing with the cyberspace office (R12, Measures Art. 15): the daily count of people, and the filings."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, new_id, utcnow


class FilingCount(Base):
    """How many people had an active consent on one day: one row per organization and day.

    The primary key keeps it to one row a day, however many reports and sweeps run at once; a later count
    the same day replaces the earlier one (the day's last count).
    """

    __tablename__ = "filing_counts"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    people: Mapped[int] = mapped_column(Integer)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Filing(Base):
    """A filing made with the provincial cyberspace office, as the organization recorded it."""

    __tablename__ = "filings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: ``initial`` (the first filing) or ``change`` (after a material change to a filed purpose).
    kind: Mapped[str] = mapped_column(String(16))
    filed_on: Mapped[date] = mapped_column(Date)
    authority: Mapped[str] = mapped_column(String(200))
    filing_number: Mapped[str] = mapped_column(String(100))
    #: The codes of the organization's purposes when it was recorded: the purposes this filing covers.
    purpose_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
