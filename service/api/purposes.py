"""The purpose catalog and its notices."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from schemas.common import ListQuerySchema
from schemas.purposes import (
    NoticeCreateSchema,
    NoticeSchema,
    PurposeCreateSchema,
    PurposePageSchema,
    PurposeSchema,
)
from service import db
from service.api import Blueprint
from service.domain import purposes
from service.domain.pages import Page
from service.keys.api_keys import current_caller
from service.models import Notice, Purpose
from service.outbox import jobs

blp = Blueprint("purposes", __name__, url_prefix="/v1/purposes", description="The purpose catalog (R1, R5, R6, R11)")


@blp.route("")
class Purposes(MethodView):
    @blp.authorized("admin", "consents")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, PurposePageSchema)
    def get(self, query: dict[str, Any]) -> Page[Purpose]:
        """List the organization's purposes with their current notices

        Each purpose as `GET /v1/purposes/{code}` shows it, with `notice: {version, digest, texts}` for its
        current notice: the version a consent must be bound to. Scopes: `admin`, `consents`. Oldest first;
        page with `cursor` (the `next_cursor` of the last page) and `limit` (at most 1000, 100
        by default).
        """
        return purposes.list_purposes(
            db.session(), org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )

    @blp.authorized("admin")
    @blp.arguments(PurposeCreateSchema)
    @blp.response(201, PurposeSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> Purpose:
        """Create a purpose with its first notice

        A purpose declares, in every locale of `REQUIRED_LOCALES` (422 `missing_locale`), its name, use,
        necessity, processing method, effect on the person's rights and non-biometric alternative, where
        faces are captured, its retention period, and carries a notice. Declaring an analysis of race,
        ethnicity, religion, health or social class answers 422 `prohibited_analysis`; an existing code
        answers 409 `purpose_exists`.
        """
        caller = current_caller()
        session = db.session()
        purpose = purposes.create_purpose(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            prohibit_sensitive_analysis=current_app.config["PROHIBIT_SENSITIVE_ANALYSIS"],
            required_locales=current_app.config["REQUIRED_LOCALES"],
            fields=fields,
        )
        session.commit()
        return purpose


@blp.route("/<string:code>")
class PurposeByCode(MethodView):
    @blp.authorized("admin", "consents")
    @blp.response(200, PurposeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, code: str) -> Purpose:
        """Read one purpose and its current notice

        Enrollment apps show `notice.texts` (in the person's locale) and send `notice.version` with the
        consent. `reassess_by` is set while a major incident calls for a new impact assessment. Another
        organization's code answers 404 `not_found`. Scopes: `admin`, `consents`.
        """
        return purposes.get_purpose(db.session(), org_id=current_caller().org_id, code=code)


@blp.route("/<string:code>/notices")
class PurposeNotices(MethodView):
    @blp.authorized("admin")
    @blp.arguments(NoticeCreateSchema)
    @blp.response(201, NoticeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, fields: dict[str, Any], code: str) -> Notice:
        """Publish a new notice version

        The notice may restate any of the purpose's texts (`name`, `description`, `necessity`,
        `alternative`, `processing_method`, `rights_impact`, each by locale): they take effect with it and
        its digest covers them. With `material: true` every active consent to the purpose moves to
        `reconsent_required` (R5) and verification denies until the person consents again. The purpose
        then needs a new impact assessment (R10); once it has one, each guardian whose consent was moved
        gets an SMS with a fresh link to the new notice (a new guardian request, `delivery: sms`).
        """
        caller = current_caller()
        session = db.session()
        notice = purposes.publish_notice(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            code=code,
            texts=fields["texts"],
            material=fields["material"],
            required_locales=current_app.config["REQUIRED_LOCALES"],
            terms={name: fields[name] for name in purposes.LOCALIZED_FIELDS if name in fields},
        )
        if notice.material:  # in the same transaction; the dispatcher asks the guardians after the commit
            jobs.queue_reconsent(
                session,
                current_app.extensions["consent_gate.protector"],
                org_id=caller.org_id,
                purpose_ids=[notice.purpose_id],
            )
        session.commit()
        return notice
