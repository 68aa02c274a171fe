"""Purposes and notices."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import LocalizedText, NoticeTexts, StrictSchema, page_schema
from service.domain.purposes import CAPTURES

CATEGORIES = ("identity_verification", "access_control", "payment", "attendance", "public_safety", "other")


class PurposeCreateSchema(StrictSchema):
    code = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$", error="2-64 lowercase letters, digits or _"),
        metadata={"description": "Stable identifier used in tokens and verifications"},
    )
    name = LocalizedText(200)
    description = LocalizedText(4000, metadata={"description": "What the face is used for, by locale"})
    category = ma.fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    necessity = LocalizedText(4000, metadata={"description": "Why processing the face is necessary, by locale"})
    alternative = LocalizedText(
        4000,
        metadata={
            "description": "The non-biometric way offered instead (R6), by locale. A placeholder (无, 没有, "
            "不提供, none, n/a, -) or under 4 characters is refused with `alternative_required`."
        },
    )
    processing_method = LocalizedText(
        4000, metadata={"description": "How faces are captured, compared and stored (R1), by locale"}
    )
    rights_impact = LocalizedText(
        4000,
        metadata={"description": "The effect on the person's rights and how to exercise them (R1), by locale"},
    )
    capture = ma.fields.String(
        required=True,
        validate=validate.OneOf(CAPTURES),
        metadata={
            "description": "`device`: a fixed camera or terminal (a verification without a registered "
            "`device_id` denies `device_required`); `personal_device`: the person's own phone"
        },
    )
    retention_days = ma.fields.Integer(required=True, validate=validate.Range(min=1, max=3650))
    analyses = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={
            "description": "What is done with a face, from a closed list: `liveness`, `verification_1to1`, "
            "`identification_1toN`, `age_estimation`, `quality_check`. Anything naming race, ethnicity, "
            "religion, health or social class (or a synonym, in either language) is refused with "
            "`prohibited_analysis` (R11); anything else with `unknown_analysis`."
        },
    )
    transmits_face_data = ma.fields.Boolean(
        load_default=False, metadata={"description": "Face data leaves the device for this purpose (R9)"}
    )
    notice = NoticeTexts(required=True, metadata={"description": 'Notice texts by locale: {"zh-CN": …, "en": …}'})


class NoticeSchema(StrictSchema):
    version = ma.fields.Integer()
    digest = ma.fields.String(metadata={"description": "SHA-256 of everything the notice tells the person"})
    texts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    material = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


class NoticeCreateSchema(StrictSchema):
    texts = NoticeTexts(required=True)
    material = ma.fields.Boolean(
        required=True, metadata={"description": "true: the change is material and existing consents need re-consent"}
    )
    # Any of the purpose's texts, restated with this notice (it takes effect with it; the digest covers it).
    name = LocalizedText(200, required=False)
    description = LocalizedText(4000, required=False)
    necessity = LocalizedText(4000, required=False)
    alternative = LocalizedText(4000, required=False)
    processing_method = LocalizedText(4000, required=False)
    rights_impact = LocalizedText(4000, required=False)


def _by_locale() -> ma.fields.Dict:
    return ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


class PurposeSchema(StrictSchema):
    code = ma.fields.String()
    name = _by_locale()
    description = _by_locale()
    category = ma.fields.String()
    necessity = _by_locale()
    alternative = _by_locale()
    processing_method = _by_locale()
    rights_impact = _by_locale()
    capture = ma.fields.String(metadata={"enum": list(CAPTURES)})
    retention_days = ma.fields.Integer()
    analyses = ma.fields.List(ma.fields.String())
    transmits_face_data = ma.fields.Boolean()
    assessed_until = ma.fields.Date(allow_none=True, metadata={"description": "Last day of the current assessment"})
    reassess_by = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "Set by a major incident: past it, a new assessment is needed (R10)"},
    )
    notice = ma.fields.Nested(NoticeSchema, attribute="current_notice")
    created_at = ma.fields.DateTime()


PurposePageSchema = page_schema(PurposeSchema, "PurposePageSchema")
