"""The compliance report."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from schemas.common import LOCALES, StrictSchema
from service.keys.report_links import MAX_HOURS, MIN_HOURS


class FilingStatusSchema(StrictSchema):
    status = ma.fields.String(metadata={"description": "`not_required`, `due`, `overdue` or `filed`", "example": "due"})
    count = ma.fields.Integer(metadata={"description": "Distinct people with at least one active consent now"})
    threshold = ma.fields.Integer(metadata={"description": "`FILING_THRESHOLD`"})
    crossed_on = ma.fields.Date(
        allow_none=True,
        metadata={"description": "The first day the count was at least the threshold since it was last below"},
    )
    deadline = ma.fields.Date(
        allow_none=True, metadata={"description": "30 working days after `crossed_on` (or `changed_on`)"}
    )
    due_filing = ma.fields.String(
        allow_none=True, metadata={"description": "`initial` or `change`: which filing is due, if one is"}
    )
    changed_on = ma.fields.Date(
        allow_none=True, metadata={"description": "The first material change to a filed purpose not yet filed"}
    )
    changed_purposes = ma.fields.List(ma.fields.String())
    last_filing = ma.fields.Dict(allow_none=True, metadata={"description": "The latest filing recorded"})


class ComplianceReportSchema(StrictSchema):
    organization = ma.fields.Dict()
    generated_at = ma.fields.DateTime()
    filing = ma.fields.Nested(FilingStatusSchema)
    consents_by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    consents_by_form = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer()),
        metadata={
            "description": "Consents by status, `written` (on a signed paper form, PIPL Art. 29: evidence "
            "`channel: paper`) apart from `online` (every other channel)",
            "example": {"written": {"active": 3, "declined": 1}, "online": {"active": 120}},
        },
    )
    minors_with_guardian_consent = ma.fields.Integer()
    purposes = ma.fields.List(ma.fields.Dict())
    assessments_due = ma.fields.List(ma.fields.Dict())
    reassessment_due = ma.fields.List(
        ma.fields.Dict(),
        metadata={
            "description": "Purposes a major incident calls to reassess: `{purpose, reassess_by, overdue}` (R10)",
        },
    )
    incidents = ma.fields.List(
        ma.fields.Dict(),
        metadata={"description": "The 50 newest incidents: `{id, occurred_at, severity, purposes, description}`"},
    )
    devices_by_location_type = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    verifications = ma.fields.List(ma.fields.Dict())
    consents_over_time = ma.fields.List(ma.fields.Dict())
    deletions = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={
            "description": "Deletions owed by recognition systems for ended consents (R13): `pending` "
            "(unconfirmed, the overdue ones included), `overdue` (unconfirmed past `due_at`), `confirmed`",
            "example": {"pending": 4, "overdue": 1, "confirmed": 37},
        },
    )


class AuditExportQuerySchema(StrictSchema):
    since = ma.fields.DateTime(load_default=None, metadata={"description": "Only events at or after this time"})
    format = ma.fields.String(load_default="jsonl", validate=ma.validate.OneOf(["jsonl", "csv"]))


class ReportPageQuerySchema(StrictSchema):
    lang = ma.fields.String(
        load_default="zh-CN",
        validate=validate.OneOf(LOCALES),
        metadata={"description": "The page's language: `zh-CN` (default) or `en`"},
    )


class ReportLinkRequestSchema(StrictSchema):
    hours = ma.fields.Integer(
        required=True,
        validate=validate.Range(min=MIN_HOURS, max=MAX_HOURS),
        metadata={
            "description": f"How long the link opens the report: {MIN_HOURS} to {MAX_HOURS} hours",
            "example": 72,
        },
    )
    lang = ma.fields.String(
        validate=validate.OneOf(LOCALES),
        metadata={"description": "The language the link opens the page in (`zh-CN` when absent); it can switch"},
    )


class ReportLinkSchema(StrictSchema):
    url = ma.fields.String(metadata={"description": "Opens the HTML report in a browser, without an API key"})
    expires_at = ma.fields.DateTime(metadata={"description": "When the link stops opening the report"})
