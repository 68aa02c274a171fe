"""Columns encrypted at rest with ``DATA_KEY`` (R14): what they hold never reaches the database in clear.

The value is sealed with AES-GCM (a fresh nonce each time) by the data key of the app whose context the
session runs in, so equal values never look equal in the database: such a column can be read and written
but never compared in SQL. Lookups go through a keyed hash kept beside it (``Subject.external_ref_hash``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def _protector() -> Any:
    # Imported here: the models are imported before any app exists (migrations, the CLI's start-up).
    from service.keys.data_key import protector

    return protector()


class EncryptedText(TypeDecorator[str]):
    """A string stored as AES-GCM ciphertext (base64)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(_protector().encrypt(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(_protector().decrypt(value))


class EncryptedDate(TypeDecorator[date]):
    """A calendar day stored as the AES-GCM ciphertext of its ISO spelling."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect: Dialect) -> str | None:
        return None if value is None else str(_protector().encrypt(value.isoformat()))

    def process_result_value(self, value: str | None, dialect: Dialect) -> date | None:
        return None if value is None else date.fromisoformat(_protector().decrypt(value))
