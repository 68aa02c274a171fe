"""The change feed of consents, for galleries and caches."""

from __future__ import annotations

import marshmallow as ma

from schemas.common import StrictSchema

EVENT_TYPES = ("granted", "revoked", "expired", "declined", "reconsent_required", "erased", "deletion_overdue")


class ConsentEventSchema(StrictSchema):
    cursor = ma.fields.Integer(metadata={"description": "Pass the last one read as `after`"})
    type = ma.fields.String(metadata={"enum": list(EVENT_TYPES)})
    consent_id = ma.fields.String(allow_none=True)
    subject_id = ma.fields.String(allow_none=True)
    purpose = ma.fields.String(allow_none=True)
    occurred_at = ma.fields.DateTime()


class ConsentEventPageSchema(StrictSchema):
    events = ma.fields.List(ma.fields.Nested(ConsentEventSchema))
    next_after = ma.fields.Integer()
