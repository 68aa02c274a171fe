"""The audit trail as the API shows it."""

from __future__ import annotations

import marshmallow as ma

from schemas.common import StrictSchema


class AuditEventSchema(StrictSchema):
    seq = ma.fields.Integer()
    occurred_at = ma.fields.DateTime()
    actor = ma.fields.String()
    action = ma.fields.String()
    object_type = ma.fields.String()
    object_id = ma.fields.String()
    data = ma.fields.Dict()
    prev_hash = ma.fields.String()
    hash = ma.fields.String()


class AuditPageSchema(StrictSchema):
    events = ma.fields.List(ma.fields.Nested(AuditEventSchema))
    next_after = ma.fields.Integer(metadata={"description": "Pass as `after` to read on"})
