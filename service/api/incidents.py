"""Security incidents: a major one calls for a reassessment of the purposes it touched (R10)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.assessments import IncidentCreateSchema, IncidentPageSchema, IncidentSchema
from schemas.common import ListQuerySchema
from service import db
from service.api import Blueprint
from service.domain import assessments
from service.domain.pages import Page
from service.keys.api_keys import current_caller
from service.models import Incident

blp = Blueprint("incidents", __name__, url_prefix="/v1/incidents", description="Security incidents (R10)")


@blp.route("")
class Incidents(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, IncidentPageSchema)
    def get(self, query: dict[str, Any]) -> Page[Incident]:
        """List the organization's incidents, oldest first

        Page with `cursor` (the `next_cursor` of the last page) and `limit` (at most 1000, 100 by default).
        Incidents are never deleted.
        """
        return assessments.list_incidents(
            db.session(), org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )

    @blp.authorized("admin")
    @blp.arguments(IncidentCreateSchema)
    @blp.response(201, IncidentSchema)
    def post(self, fields: dict[str, Any]) -> Incident:
        """Record a security incident touching one or more purposes

        A `major` incident sets each purpose's `reassess_by` to 30 days after `occurred_at` (an earlier
        deadline stands). Past it the purpose receives no consents and verification denies
        `assessment_required`, until an assessment recorded after the incident and conducted on its day or
        later covers the purpose. A
        `minor` incident is recorded and changes nothing else. Unknown purposes answer 422
        `unknown_purpose`; an `occurred_at` in the future 422 `validation_error`.
        """
        caller = current_caller()
        session = db.session()
        incident = assessments.record_incident(session, org_id=caller.org_id, actor=caller.actor, fields=fields)
        session.commit()
        return incident


@blp.route("/<string:incident_id>")
class IncidentById(MethodView):
    @blp.authorized("admin")
    @blp.response(200, IncidentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, incident_id: str) -> Incident:
        """Read one incident

        What happened, when, its severity and the purposes it touched. Another organization's id answers
        404 `not_found`.
        """
        return assessments.get_incident(db.session(), org_id=current_caller().org_id, incident_id=incident_id)
