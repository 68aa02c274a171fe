"""Column types shared by the models."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always returned timezone-aware, on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def list_order_index(table: str) -> Index:
    """The index every list of ``table`` walks: the organization's rows in page order (``service.domain.pages``),
    so a page reads its rows in order instead of sorting all of the organization's."""
    return Index(f"ix_{table}_org_created_id", "org_id", "created_at", "id")


def new_id() -> str:
    return str(uuid.uuid4())


def new_sequential_id() -> str:
    """A UUIDv7 (RFC 9562): milliseconds since the epoch, then 74 random bits.

    For append-only records written on the hot path (verifications): new rows land at the right edge of
    the primary-key index instead of at a random page, which halves the cost of SQLite's insert and keeps
    PostgreSQL's index compact. The id reveals its creation time, which the record carries anyway.
    """
    # Unique, not secret (the caller is told it): the random bits come from ``random``, seeded from the
    # system's entropy and again in every forked worker, rather than a system call per record.
    value = (time.time_ns() // 1_000_000) << 80 | random.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def utcnow() -> datetime:
    return datetime.now(UTC)
