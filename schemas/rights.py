"""People's rights (R16): the link to a person's page, and the requests filed there."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import ListQuerySchema, StrictSchema, page_schema

RIGHTS_KINDS = ("correction", "deletion", "complaint")
RIGHTS_STATUSES = ("open", "closed")


class AccessLinkSchema(StrictSchema):
    url = ma.fields.String(
        metadata={"description": "The person's page; only for an adult. A child's link goes to the guardian by SMS."}
    )
    expires_at = ma.fields.DateTime()
    holder = ma.fields.String(
        metadata={"description": "`person` (hand `url` to them) or `guardian` (texted to the child's guardian)"}
    )
    delivery_status = ma.fields.String(
        metadata={
            "description": "`not_required` (adult), or `queued` (the SMS to the guardian, sent after the answer by the "
            "dispatcher)"
        }
    )
    guardian = ma.fields.Dict(metadata={"description": "For a child: `{phone_masked}` of the phone texted"})


class RightsRequestSchema(StrictSchema):
    id = ma.fields.String()
    subject_id = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "correction, deletion or complaint", "enum": list(RIGHTS_KINDS)})
    details = ma.fields.String(
        allow_none=True, metadata={"description": "The person's words; null once the subject is erased"}
    )
    status = ma.fields.String(metadata={"enum": list(RIGHTS_STATUSES)})
    due_at = ma.fields.DateTime(metadata={"description": "End of the 15th working day after filing (China time)"})
    outcome = ma.fields.String(allow_none=True, metadata={"description": "Your answer, given when closing"})
    created_at = ma.fields.DateTime()
    closed_at = ma.fields.DateTime(allow_none=True)


RightsRequestPageSchema = page_schema(RightsRequestSchema, "RightsRequestPageSchema")


class RightsRequestQuerySchema(ListQuerySchema):
    status = ma.fields.String(validate=validate.OneOf(RIGHTS_STATUSES))


class RightsRequestCloseSchema(StrictSchema):
    outcome = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "What was done, or why the request was refused (PIPL 50: a refusal gives reasons)"},
    )
