"""Deletions owed by recognition systems once a consent ends (R13)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import ID_FIELD_LENGTH, StrictSchema

DELETION_STATUSES = ("pending", "overdue", "confirmed")


class DeletionQuerySchema(StrictSchema):
    status = ma.fields.String(
        load_default=None,
        validate=validate.OneOf(DELETION_STATUSES),
        metadata={
            "description": "`pending`: not confirmed yet (overdue ones included); `overdue`: not confirmed and "
            "past `due_at`; `confirmed`. All of them when absent."
        },
    )
    cursor = ma.fields.String(
        load_default=None, validate=ID_FIELD_LENGTH, metadata={"description": "The `next_cursor` of the last page"}
    )
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


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


class DeletionPageSchema(StrictSchema):
    items = ma.fields.List(ma.fields.Nested(DeletionSchema))
    next_cursor = ma.fields.String(
        allow_none=True, metadata={"description": "Pass as `cursor` for the next page; null on the last page"}
    )
