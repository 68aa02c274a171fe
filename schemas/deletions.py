"""Deletions owed by recognition systems once a consent ends (R13)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import ListQuerySchema, StrictSchema, page_schema

DELETION_STATUSES = ("pending", "overdue", "confirmed")


class DeletionQuerySchema(ListQuerySchema):
    status = ma.fields.String(
        load_default=None,
        validate=validate.OneOf(DELETION_STATUSES),
        metadata={
            "description": "`pending`: not confirmed yet (overdue ones included); `overdue`: not confirmed and "
            "past `due_at`; `confirmed`. All of them when absent."
        },
    )


class DeletionSchema(StrictSchema):
    id = ma.fields.String()
    consent_id = ma.fields.String()
    subject_id = ma.fields.String(metadata={"description": "Delete every template and image of this person"})
    purpose = ma.fields.String()
    api_key_id = ma.fields.String(metadata={"description": "The key that was allowed and owes the deletion"})
    status = ma.fields.String(metadata={"enum": list(DELETION_STATUSES)})
    ended_at = ma.fields.DateTime(metadata={"description": "When the consent ended"})
    due_at = ma.fields.DateTime(metadata={"description": "`ended_at` + `DELETION_HOURS`; overdue after it"})
    confirmed_at = ma.fields.DateTime(allow_none=True)
    confirmed_by = ma.fields.String(allow_none=True, metadata={"description": "`api_key:<id>` of who confirmed"})


DeletionPageSchema = page_schema(DeletionSchema, "DeletionPageSchema")
