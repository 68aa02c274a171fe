"""People."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import ListQuerySchema, StrictSchema, page_schema


class SubjectCreateSchema(StrictSchema):
    external_ref = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Your reference for the person, unique within your organization"},
    )
    birth_date = ma.fields.Date(required=True, metadata={"description": "The server computes age from it (R4)"})


class SubjectSchema(StrictSchema):
    id = ma.fields.String()
    external_ref = ma.fields.String(allow_none=True)
    birth_date = ma.fields.Date(allow_none=True)
    is_minor = ma.fields.Boolean()
    guardian_required_until = ma.fields.Date(
        allow_none=True, metadata={"description": "The day the person reaches the guardian age"}
    )
    created_at = ma.fields.DateTime()
    erased_at = ma.fields.DateTime(allow_none=True)


class SubjectQuerySchema(ListQuerySchema):
    external_ref = ma.fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Only the person with this reference (found by its keyed hash, R14)"},
    )


SubjectPageSchema = page_schema(SubjectSchema, "SubjectPageSchema")
