"""Personal-information impact assessments (R10, Measures Art. 9): recorded, read, exported, never deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from schemas.assessments import AssessmentCreateSchema, AssessmentPageSchema, AssessmentSchema
from schemas.common import ListQuerySchema
from service import db
from service.api import Blueprint
from service.domain import assessments
from service.domain.pages import Page
from service.keys.api_keys import current_caller
from service.models import Assessment
from service.outbox import jobs

blp = Blueprint("assessments", __name__, url_prefix="/v1/assessments", description="Impact assessments (R10)")


@blp.route("")
class Assessments(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, AssessmentPageSchema)
    def get(self, query: dict[str, Any]) -> Page[Assessment]:
        """List the organization's impact assessments, oldest first, outdated ones included

        Page with `cursor` (the `next_cursor` of the last page) and `limit` (at most 1000, 100 by default).
        Assessments are never deleted: they are kept as records for supervisors (at least three years, PIPL Art. 56).
        """
        return assessments.list_assessments(
            db.session(), org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )

    @blp.authorized("admin")
    @blp.arguments(AssessmentCreateSchema)
    @blp.response(201, AssessmentSchema)
    def post(self, fields: dict[str, Any]) -> Assessment:
        """Record an impact assessment for one or more purposes

        It states what Measures Art. 9 asks: `lawfulness_necessity`, `rights_impact`, `security_risks` and
        `safeguards`, each in at least 20 characters of real text (blank, punctuation-only or
        repeated-character filler answers 422 `assessment_incomplete`, and nothing is stored), and a
        `conclusion`. It is valid `ASSESSMENT_VALID_DAYS` (365 by default) from `conducted_at`, and clears
        the reassessment deadline of the major incidents recorded before it that occurred on or before that
        day. Without a current
        assessment a purpose receives no consents and verification denies `assessment_required`. Unknown
        purposes answer 422 `unknown_purpose`.
        """
        caller = current_caller()
        session = db.session()
        assessment = assessments.record_assessment(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            valid_days=current_app.config["ASSESSMENT_VALID_DAYS"],
            fields=fields,
        )
        # In the same transaction: the dispatcher asks, after the commit, the guardians whose consent a
        # material notice change moved, now that the purpose can be consented to again.
        jobs.queue_reconsent(
            session,
            current_app.extensions["consent_gate.protector"],
            org_id=caller.org_id,
            purpose_ids=[p.id for p in assessment.purposes],
        )
        session.commit()
        return assessment


@blp.route("/export")
class AssessmentExport(MethodView):
    @blp.authorized("admin")
    @blp.response(200, content_type="application/x-ndjson", description="One assessment per line, oldest first")
    def get(self) -> Response:
        """Export every impact assessment as JSON lines, for supervisors

        Each line is an assessment as `GET /v1/assessments/{id}` shows it, outdated ones included, oldest
        first.
        """
        schema = AssessmentSchema()
        records = assessments.all_assessments(db.session(), org_id=current_caller().org_id)

        def lines() -> Iterator[str]:
            for record in records:
                yield json.dumps(schema.dump(record), ensure_ascii=False) + "\n"

        response = Response(lines(), mimetype="application/x-ndjson")
        response.headers["Content-Disposition"] = 'attachment; filename="assessments.jsonl"'
        return response


@blp.route("/<string:assessment_id>")
class AssessmentById(MethodView):
    @blp.authorized("admin")
    @blp.response(200, AssessmentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, assessment_id: str) -> Assessment:
        """Read one impact assessment

        Its four contents (Measures Art. 9), conclusion, `valid_until`, and `outdated_at` with its reason
        once a later notice or incident outdated it. Another organization's id answers 404 `not_found`.
        """
        return assessments.get_assessment(db.session(), org_id=current_caller().org_id, assessment_id=assessment_id)
