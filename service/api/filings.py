"""Filings with the cyberspace office (R12, Measures Art. 15) and the materials to file."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from schemas.filings import FilingCreateSchema, FilingMaterialsSchema, FilingSchema
from service import db
from service.api import Blueprint
from service.domain.filing_counts import china_today
from service.domain.filing_materials import filing_materials
from service.domain.filing_records import record_filing
from service.keys.api_keys import current_caller
from service.models import Filing

blp = Blueprint("filings", __name__, url_prefix="/v1/filings", description="Filing with the cyberspace office (R12)")


@blp.route("")
class Filings(MethodView):
    @blp.authorized("admin")
    @blp.arguments(FilingCreateSchema)
    @blp.response(201, FilingSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> Filing:
        """Record a filing made with the provincial cyberspace office

        `kind: initial` (the default) records the first filing, due within 30 working days of the count of
        people with an active consent crossing `FILING_THRESHOLD`; a second one answers 409
        `already_filed`. `kind: change` records a change filing, due within 30 working days of a material
        notice change to a purpose an earlier filing covered; before a first filing it answers 409
        `not_filed`. `filed_on` in the future (China time), or a blank `authority` or `filing_number`, answers 422
        `validation_error`. Each filing covers the purposes as they stand when it is recorded; audited as
        `filing.recorded`. The compliance report then shows `filing.status: filed`.
        """
        caller = current_caller()
        session = db.session()
        filing = record_filing(session, org_id=caller.org_id, actor=caller.actor, fields=fields, today=china_today())
        session.commit()
        return filing


@blp.route("/materials")
class FilingMaterials(MethodView):
    @blp.authorized("admin")
    @blp.response(200, FilingMaterialsSchema)
    def get(self) -> dict[str, Any]:
        """The materials pack to file: handler, purposes and methods, devices, count, safeguards, assessments

        The handler (name, contact, personal-information protection officer, complaint channel); each
        purpose with its processing method, how faces are captured (`device` or `personal_device`), the
        analyses, retention and whether face data leaves the device; the active devices; the people with
        an active consent now against `FILING_THRESHOLD`; the safeguards of each current assessment; every
        impact assessment; the filings recorded so far.
        """
        return filing_materials(
            db.session(),
            org_id=current_caller().org_id,
            threshold=current_app.config["FILING_THRESHOLD"],
            today=china_today(),
        )
