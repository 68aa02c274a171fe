"""Personal-information impact assessments (R10)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from schemas.purposes import AssessmentCreateSchema, AssessmentSchema
from service import db
from service.api import Blueprint
from service.domain import purposes
from service.domain.guardian import Messenger, reconsent
from service.keys.api_keys import current_caller
from service.models import Assessment

blp = Blueprint("assessments", __name__, url_prefix="/v1/assessments", description="Impact assessments (R10)")


@blp.route("")
class Assessments(MethodView):
    @blp.authorized("admin")
    @blp.arguments(AssessmentCreateSchema)
    @blp.response(201, AssessmentSchema)
    def post(self, fields: dict[str, Any]) -> Assessment:
        """Record an impact assessment for one or more purposes

        It is valid `ASSESSMENT_VALID_DAYS` (365 by default) from `conducted_at`. Without a current
        assessment a purpose receives no consents and verification denies `assessment_required`.
        """
        caller = current_caller()
        session = db.session()
        assessment = purposes.record_assessment(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            valid_days=current_app.config["ASSESSMENT_VALID_DAYS"],
            fields=fields,
        )
        session.commit()
        purpose_ids = [p.id for p in assessment.purposes]
        reconsent.ask_guardians(
            session,
            org_id=caller.org_id,
            purpose_ids=purpose_ids,
            messenger=Messenger.of(current_app),
            hours=current_app.config["GUARDIAN_REQUEST_HOURS"],
        )
        return assessment
