"""Guardian requests: the app's side of the guardian flow."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import LOCALES, StrictSchema, page_schema
from service.domain.statuses import ConsentStatus, Delivery, GuardianRequestStatus, PaperAnswer, Relationship

RELATIONSHIPS = [relationship.value for relationship in Relationship]
PAPER_ANSWERS = [answer.value for answer in PaperAnswer]
DELIVERIES = [delivery.value for delivery in Delivery]


class GuardianSchema(StrictSchema):
    phone = ma.fields.String(
        required=True,
        validate=validate.Length(min=4, max=20),
        metadata={
            "description": "E.164, e.g. +8613812345678. Required for `paper` too: the withdrawal link is texted "
            "to it once the form is recorded."
        },
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
            "`qr`: the app shows the QR code; the guardian proves the phone with an SMS code before deciding. "
            "`paper`: written consent (PIPL Art. 29): nothing is sent and there is no link or QR code; the "
            "guardian signs a form and you record it with `POST /v1/guardian-requests/{id}/paper-decision`."
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
    delivery_status = ma.fields.String(
        metadata={
            "enum": ["pending", "queued", "sent", "failed", "not_required"],
            "description": "The link SMS: `queued` until the dispatcher sent it (`sent`) or gave up (`failed`, "
            "with `delivery_error`); `not_required` for `qr` and `paper`",
        }
    )
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


GuardianRequestPageSchema = page_schema(GuardianRequestSchema, "GuardianRequestPageSchema")


class PaperDecisionSchema(StrictSchema):
    decisions = ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Length(min=1, max=64)),
        values=ma.fields.String(validate=validate.OneOf(PAPER_ANSWERS)),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={
            "description": "Each purpose code of the request, exactly once, with the guardian's written answer: "
            "`approve` or `decline`. A purpose missing or not of this request: 422 `validation_error`, the "
            "purpose named under `errors.json.decisions`.",
            "example": {"door_access": "approve", "canteen_payment": "decline"},
        },
    )
    transmission_consent = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={
            "description": "The purposes whose separate transmission box the guardian ticked on the form (R9). "
            "Approving a purpose that sends face data off the device without it: 422 "
            "`transmission_consent_required`, nothing recorded."
        },
    )
    form_sha256 = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{64}\Z", error="must be 64 lowercase hexadecimal digits"),
        metadata={"description": "SHA-256 of the signed form (its scan) as you keep it, lowercase hex"},
    )
    signed_on = ma.fields.Date(
        required=True,
        metadata={
            "description": "The day the guardian signed (China time): not in the future, not before the request "
            "was opened"
        },
    )


class PaperDecisionAnswerSchema(GuardianRequestSchema):
    withdrawal_sms = ma.fields.String(
        metadata={
            "enum": ["queued", "not_sent", "not_required"],
            "description": "Whether the withdrawal link was queued to be texted to the guardian's phone (sent "
            "after the answer, by the dispatcher): `not_sent` when the phone's allowance said no (the decision "
            "stands; the link is kept nowhere, so tell the guardian they can withdraw through you); "
            "`not_required` when nothing was approved",
        }
    )
