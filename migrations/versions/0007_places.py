"""Places, enforced (issue 13, R7, Measures Art. 13): a public place is derived from the location type and
proves its signs and collection area; ``other`` says where.

- ``devices.location_description`` (required for ``location_type: other`` from now on; existing ``other``
  devices get their ``location`` text, else their name), ``signage_posted_on``, ``signage_text``,
  ``signage_photo_sha256``, ``collection_area``.
- ``devices.public_place`` is recomputed from ``location_type`` (the public types of
  ``service.domain.places``, listed here as they stood).
- ``devices.signage_posted`` goes: a yes without evidence proves nothing.
- Privacy first: an active device that is in a public place by either reading (its type now, or what its
  organization declared before) has no evidence of signs, so it is deactivated (``deactivated_at`` = the
  migration's time); verification through it denies ``device_unknown``. Register it again with the
  evidence. Other devices stay as they were.

Upgrade and downgrade are tested with rows present (``tests/test_places.py``).

Revision ID: 0007p
Revises: 0007r
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007p"
down_revision = "0007r"
branch_labels = None
depends_on = None

#: ``service.domain.places.PUBLIC_LOCATION_TYPES`` when this revision was written.
PUBLIC_TYPES = (
    "retail_store", "bank_branch", "transport_hub", "street", "public_square", "hotel_lobby", "hospital",
    "stadium", "other",
)  # fmt: skip
NEW_COLUMNS = (
    ("location_description", sa.String(length=500)),
    ("signage_posted_on", sa.Date()),
    ("signage_text", sa.Text()),
    ("signage_photo_sha256", sa.String(length=64)),
    ("collection_area", sa.String(length=500)),
)

# No table is rebuilt (SQLite runs with foreign keys on): columns are added and dropped in place (SQLite
# 3.35+), rows converted with UPDATE.


def _drop_column(column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE devices DROP COLUMN {column}")  # this file's constants only
    else:
        op.drop_column("devices", column)


def upgrade() -> None:
    for column, kind in NEW_COLUMNS:
        op.add_column("devices", sa.Column(column, kind, nullable=True))
    devices = sa.table(
        "devices",
        sa.column("location_type"),
        sa.column("location"),
        sa.column("name"),
        sa.column("location_description"),
        sa.column("public_place", sa.Boolean()),
        sa.column("active", sa.Boolean()),
        sa.column("deactivated_at", sa.DateTime()),
    )
    public = devices.c.location_type.in_(PUBLIC_TYPES)
    now = datetime.now(UTC).replace(tzinfo=None)  # stored as naive UTC, as the model does
    op.execute(
        devices.update()
        .where(devices.c.active.is_(True), sa.or_(devices.c.public_place.is_(True), public))
        .values(active=False, deactivated_at=now)
    )
    op.execute(devices.update().values(public_place=public))
    op.execute(
        devices.update()
        .where(devices.c.location_type == "other")
        .values(location_description=sa.func.coalesce(sa.func.nullif(devices.c.location, ""), devices.c.name))
    )
    _drop_column("signage_posted")


def downgrade() -> None:
    """Back to the yes/no: signs posted when there is evidence of them."""
    op.add_column("devices", sa.Column("signage_posted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE devices SET signage_posted = (signage_photo_sha256 IS NOT NULL)")
    if op.get_bind().dialect.name != "sqlite":  # as 0003 made it: no default
        op.alter_column("devices", "signage_posted", server_default=None)
    for column, _kind in reversed(NEW_COLUMNS):
        _drop_column(column)
