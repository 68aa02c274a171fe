"""Guardian requests: the app's side of the guardian flow."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import LOCALES, StrictSchema
from service.domain.statuses import ConsentStatus, Delivery, GuardianRequestStatus, Relationship

RELATIONSHIPS = [relationship.value for relationship in Relationship]
DELIVERIES = [delivery.value for delivery in Delivery]


class GuardianSchema(StrictSchema):
    phone = ma.fields.String(
        required=True, validate=validate.Length(min=4, max=20), metadata={"description": "E.164, e.g. +8613812345678"}
    )
    relationship = ma.fields.String(
        required=True,
        validate=validate.OneOf(RELATIONSHIPS),
        metadata={
            "description": "Who decides for the child (PIPL Art. 31): `parent` or `legal_guardian`. The page "
            "asks them to confirm it before approving."
        },
    )


class GuardianRequestCreateSchema(StrictSchema):
    subject_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=36))
    purposes = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=20),
    )
    guardian = ma.fields.Nested(GuardianSchema, required=True)
    delivery = ma.fields.String(
        required=True,
        validate=validate.OneOf(DELIVERIES),
        metadata={
            "description": "`sms`: the link goes to the guardian's phone, and only there (no answer carries it). "
            "`qr`: the app shows the QR code; the guardian proves the phone with an SMS code before deciding."
        },
    )
    locale = ma.fields.String(load_default="zh-CN", validate=validate.OneOf(LOCALES))
    child_display_name = ma.fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "How the pages name the child, as the app chooses (e.g. `张*明`), so that a parent of "
            "two children knows which one is meant. Shown on the guardian's pages only, never in an SMS or an "
            "API answer; stored encrypted and erased with the subject."
        },
    )


class GuardianConsentSchema(StrictSchema):
    id = ma.fields.String()
    purpose = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [status.value for status in ConsentStatus]})


class GuardianOnRecordSchema(StrictSchema):
    phone_masked = ma.fields.String()
    relationship = ma.fields.String()


class GuardianRequestSchema(StrictSchema):
    id = ma.fields.String()
    subject_id = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [status.value for status in GuardianRequestStatus]})
    delivery = ma.fields.String()
    delivery_status = ma.fields.String(metadata={"enum": ["pending", "sent", "failed", "not_required"]})
    delivery_error = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why the last link SMS failed: `sms_invalid_number`, `sms_rejected`, "
            "`sms_provider_unavailable`"
        },
    )
    locale = ma.fields.String()
    guardian = ma.fields.Nested(GuardianOnRecordSchema)
    consents = ma.fields.List(ma.fields.Nested(GuardianConsentSchema))
    approve_url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "`delivery: qr` only, while pending. Absent for `delivery: sms`: its link is in the SMS only"
        },
    )
    qr_png_url = ma.fields.String(allow_none=True, metadata={"description": "`delivery: qr` only, while pending"})
    qr_svg_url = ma.fields.String(allow_none=True, metadata={"description": "`delivery: qr` only, while pending"})
    expires_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)
    poll_interval = ma.fields.Integer(metadata={"description": "Seconds between polls of this resource"})
    created_at = ma.fields.DateTime()
