"""People: registration (age computed on the server, R4) and erasure (R13)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from schemas.subjects import SubjectCreateSchema, SubjectPageSchema, SubjectQuerySchema, SubjectSchema
from service import db
from service.api import Blueprint
from service.domain import subjects
from service.domain.pages import Page
from service.errors import Conflict
from service.keys.api_keys import current_caller
from service.keys.data_key import protector
from service.models import Subject, utcnow

blp = Blueprint("subjects", __name__, url_prefix="/v1/subjects", description="People (R4, R13)")


def subject_view(subject: Subject) -> dict[str, Any]:
    return {
        "id": subject.id,
        "external_ref": subject.external_ref,
        "birth_date": subject.birth_date,
        "is_minor": subjects.is_minor(subject, utcnow().date()),
        "guardian_required_until": subject.guardian_required_until,
        "created_at": subject.created_at,
        "erased_at": subject.erased_at,
    }


@blp.route("")
class Subjects(MethodView):
    @blp.authorized("consents")
    @blp.arguments(SubjectQuerySchema, location="query")
    @blp.response(200, SubjectPageSchema)
    def get(self, query: dict[str, Any]) -> Page[dict[str, Any]]:
        """List the organization's people, or find one by your reference

        Oldest first, erased people included; page with `cursor` (the `next_cursor` of the last page) and
        `limit` (at most 1000, 100 by default). With `?external_ref=` the reference is looked up by its keyed
        hash (it is stored encrypted, R14): `items` holds your organization's person with that reference, or
        nothing, and `next_cursor` is null. Another organization's people are never found.
        """
        session, org_id = db.session(), current_caller().org_id
        if "external_ref" in query:
            found = subjects.find_subjects_by_reference(
                session, org_id=org_id, external_ref=query["external_ref"], protector=protector()
            )
            return Page([subject_view(subject) for subject in found], None)
        listed = subjects.list_subjects(session, org_id=org_id, cursor=query["cursor"], limit=query["limit"])
        return listed.map(subject_view)

    @blp.authorized("consents")
    @blp.arguments(SubjectCreateSchema)
    @blp.response(201, SubjectSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Register a person

        The server computes `is_minor` and `guardian_required_until` (the day the person reaches
        `GUARDIAN_AGE`, 14) from `birth_date`. A repeated `external_ref` answers 409 `subject_exists`.
        The reference and birth date are stored encrypted (R14).
        """
        caller = current_caller()
        session = db.session()
        try:
            subject = subjects.register_subject(
                session,
                org_id=caller.org_id,
                actor=caller.actor,
                external_ref=fields["external_ref"],
                birth_date=fields["birth_date"],
                guardian_age=current_app.config["GUARDIAN_AGE"],
                protector=protector(),
            )
            session.commit()
        except IntegrityError:
            # A registration with the same reference committed meanwhile: the unique index of the
            # reference's keyed hash refused this one.
            session.rollback()
            raise Conflict("a subject with this external_ref already exists", code="subject_exists") from None
        return subject_view(subject)


@blp.route("/<string:subject_id>")
class SubjectById(MethodView):
    @blp.authorized("consents")
    @blp.response(200, SubjectSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, subject_id: str) -> dict[str, Any]:
        """Read a person

        `is_minor` is computed at each read from the birth date, so it turns `false` on the day the person
        reaches `GUARDIAN_AGE`. An erased person shows `erased_at` and no reference or birth date.
        """
        return subject_view(subjects.get_subject(db.session(), org_id=current_caller().org_id, subject_id=subject_id))

    @blp.authorized("consents")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, subject_id: str) -> None:
        """Erase a person's personal data

        Their reference (and its lookup hash) and birth date are removed, every live consent is revoked with reason
        `subject_erased`, and the audit trail keeps only pseudonymous records. Erasing again changes nothing.
        """
        caller = current_caller()
        session = db.session()
        subjects.erase_subject(session, org_id=caller.org_id, actor=caller.actor, subject_id=subject_id)
        session.commit()
