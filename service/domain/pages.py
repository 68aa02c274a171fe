"""One way to page every list: keyset pagination on ``(created_at, id)``, oldest first, with an opaque cursor.

A list answers ``{"items": [...], "next_cursor": str | None}``; the next page starts strictly after the
last row read, so rows inserted between two pages never shift the walk (no row is seen twice, none is
skipped; rows created meanwhile appear at the end). The cursor names a position, not a row to fetch:
every query is filtered by the caller's organization before the cursor applies, so a cursor carried to
another organization, or to another list, finds only that organization's rows (another list's cursor is
refused). Anything that is not a cursor this service gave answers 422 ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from service.errors import Unprocessable

T = TypeVar("T")
U = TypeVar("U")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LATEST = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_POSITION = re.compile(r"^([a-z_]{1,32}):(\d{1,16}):([0-9A-Za-z-]{1,36})$")


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None

    def map(self, view: Callable[[T], U]) -> Page[U]:
        return Page([view(item) for item in self.items], self.next_cursor)


def encode_cursor(kind: str, created_at: datetime, row_id: str) -> str:
    position = f"{kind}:{(created_at - _EPOCH) // _MICROSECOND}:{row_id}"
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> tuple[datetime, str]:
    """The position a cursor of the list ``kind`` names; 422 ``invalid_cursor`` for anything else."""
    try:
        position = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        position = ""
    match = _POSITION.match(position)
    if match is None or match[1] != kind or int(match[2]) > _LATEST:
        raise InvalidCursor(
            "not a cursor this list gave: pass the `next_cursor` of the last page", details={"cursor": ["invalid"]}
        )
    return _EPOCH + int(match[2]) * _MICROSECOND, match[3]


def page(session: Session, query: Select[Any], model: Any, *, kind: str, cursor: str | None, limit: int) -> Page[Any]:
    """One page of ``query`` (already filtered to the caller's organization), oldest first.

    Read in the order of the table's ``(org_id, created_at, id)`` index (``models.types.list_order_index``):
    a page costs ``limit`` rows, not a sort of all the organization's.

    ``model`` has ``created_at`` and ``id``; ``kind`` names the list, so a cursor works only where it was
    given.
    """
    if cursor is not None:
        created_at, row_id = decode_cursor(kind, cursor)
        # One row-value comparison, which the ``(org_id, created_at, id)`` index of each listed table answers
        # as a range (SQLite >= 3.15, PostgreSQL); the equivalent OR of two conditions it could not.
        # A plain tuple on the right: its values take the columns' types (UTC timestamps stored naive).
        query = query.where(tuple_(model.created_at, model.id) > (created_at, row_id))
    rows: Sequence[Any] = session.scalars(query.order_by(model.created_at, model.id).limit(limit + 1)).all()
    if len(rows) <= limit:
        return Page(list(rows), None)
    last = rows[limit - 1]
    return Page(list(rows[:limit]), encode_cursor(kind, last.created_at, last.id))
