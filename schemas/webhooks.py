"""Webhooks (Standard Webhooks) and their deliveries."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema, page_schema, text

EVENT_LIST = (
    "`consent.granted`, `consent.revoked`, `consent.expired`, `consent.declined`, `consent.reconsent_required`, "
    "`subject.erased`, `guardian_request.decided`, `deletion.overdue`"
)


class WebhookCreateSchema(StrictSchema):
    url = text(2048, metadata={"description": "Where to POST events: https, a public address (see the README)"})
    events = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": f"One or more of {EVENT_LIST}"},
    )


class WebhookSchema(StrictSchema):
    """A webhook as listed: never its secret."""

    id = ma.fields.String()
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String(), attribute="event_list")
    created_at = ma.fields.DateTime()


WebhookPageSchema = page_schema(WebhookSchema, "WebhookPageSchema")


class WebhookCreatedSchema(StrictSchema):
    id = ma.fields.String()
    secret = ma.fields.String(
        metadata={"description": "`whsec_…`: verifies each delivery's signature; shown once, never again"}
    )
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String())


class WebhookDeliverySchema(StrictSchema):
    """One delivery of an event to a webhook; never its body."""

    id = ma.fields.String(metadata={"description": "The `webhook-id` header it was sent with"})
    event = ma.fields.String(attribute="kind", metadata={"description": "The event type"})
    status = ma.fields.String(metadata={"enum": ["queued", "sent", "failed"]})
    attempts = ma.fields.Integer()
    last_status_code = ma.fields.Integer(allow_none=True, metadata={"description": "The receiver's last answer"})
    last_error = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Tried again: `http_<status>`, `webhook_unreachable`, `webhook_unresolved`, "
            "`webhook_failed`; not: `webhook_url_refused`, `webhook_secret_unreadable`, `payload_unreadable` "
            '(see the README, "Webhooks")'
        },
    )
    created_at = ma.fields.DateTime()
    last_attempt_at = ma.fields.DateTime(allow_none=True)
    next_attempt_at = ma.fields.DateTime(metadata={"description": "When a `queued` delivery is tried next"})
    settled_at = ma.fields.DateTime(allow_none=True, metadata={"description": "When it was sent or given up"})


WebhookDeliveryPageSchema = page_schema(WebhookDeliverySchema, "WebhookDeliveryPageSchema")
