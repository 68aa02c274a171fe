"""Impact assessments (R10, Measures Art. 9) and incidents."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import StrictSchema, page_schema, text
from service.domain.assessments import CONTENT_MIN_LENGTH, SEVERITIES


def _purpose_codes() -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Codes of the organization's purposes (unknown ones: 422 `unknown_purpose`)"},
    )


def _content(what: str) -> ma.fields.String:
    return text(
        20000,
        metadata={
            "description": f"{what} (Measures Art. 9): at least {CONTENT_MIN_LENGTH} characters of real text; "
            "blank, punctuation-only or repeated-character filler is refused with `assessment_incomplete`"
        },
    )


class AssessmentCreateSchema(StrictSchema):
    purposes = _purpose_codes()
    conducted_at = ma.fields.Date(required=True)
    lawfulness_necessity = _content("Whether processing faces is lawful, legitimate and necessary")
    rights_impact = _content("The impact on people's rights and interests")
    security_risks = _content("The security risks")
    safeguards = _content("The safeguards taken, and whether they are lawful, effective and fit the risks")
    conclusion = text(20000, metadata={"description": "What the assessment concludes"})


class AssessmentSchema(StrictSchema):
    id = ma.fields.String()
    purposes = ma.fields.List(ma.fields.String(), attribute="purpose_codes")
    conducted_at = ma.fields.Date()
    valid_until = ma.fields.Date()
    lawfulness_necessity = ma.fields.String(allow_none=True)
    rights_impact = ma.fields.String(allow_none=True)
    security_risks = ma.fields.String(allow_none=True)
    safeguards = ma.fields.String(allow_none=True)
    conclusion = ma.fields.String(allow_none=True)
    outdated_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "Set when a material change or v2 stopped it counting"}
    )
    outdated_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


AssessmentPageSchema = page_schema(AssessmentSchema, "AssessmentPageSchema")


class IncidentCreateSchema(StrictSchema):
    occurred_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it happened, with offset"})
    description = text(20000, metadata={"description": "What happened"})
    purposes = _purpose_codes()
    severity = ma.fields.String(
        required=True,
        validate=validate.OneOf(SEVERITIES),
        metadata={"description": "`major`: each purpose must be reassessed within 30 days; `minor`: recorded"},
    )


class IncidentSchema(StrictSchema):
    id = ma.fields.String()
    occurred_at = ma.fields.DateTime()
    description = ma.fields.String()
    purposes = ma.fields.List(ma.fields.String(), attribute="purpose_codes")
    severity = ma.fields.String(metadata={"enum": list(SEVERITIES)})
    created_at = ma.fields.DateTime()


IncidentPageSchema = page_schema(IncidentSchema, "IncidentPageSchema")
