"""Deletion confirmations: what each recognition system owes once a consent it used has ended (R13)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from schemas.deletions import DeletionPageSchema, DeletionQuerySchema, DeletionSchema
from service import db
from service.api import Blueprint
from service.domain.deletions import OwedDeletion, confirm_deletion, list_deletions
from service.domain.pages import Page
from service.keys.api_keys import Caller, current_caller

blp = Blueprint("deletions", __name__, url_prefix="/v1/deletions", description="Deletion confirmations (R13)")


def _own_key(caller: Caller) -> str | None:
    """The key whose deletions the caller handles: its own, or ``None`` (all of them) for an admin key."""
    return None if "admin" in caller.scopes else caller.key_id


@blp.route("")
class Deletions(MethodView):
    @blp.authorized("verify", "admin")
    @blp.arguments(DeletionQuerySchema, location="query")
    @blp.response(200, DeletionPageSchema)
    def get(self, query: dict[str, Any]) -> Page[OwedDeletion]:
        """List the deletions owed for ended consents

        When a consent ends (revoked, expired, declined, its person erased, or paused by a material notice
        change), every `verify` key that received `allow` for it owes the deletion of that person's face
        data for that purpose, due `DELETION_HOURS` (72) after the end. A `verify` key sees its own; an
        `admin` key sees all of the organization's, removed keys' included. Oldest first; page with
        `cursor` (the previous page's `next_cursor`) and `limit` (at most 1000, 100 by default).
        """
        caller = current_caller()
        return list_deletions(
            db.session(),
            org_id=caller.org_id,
            api_key_id=_own_key(caller),
            status=query["status"],
            hours=current_app.config["DELETION_HOURS"],
            cursor=query["cursor"],
            limit=query["limit"],
        )


@blp.route("/<string:deletion_id>/confirm")
class DeletionConfirm(MethodView):
    @blp.authorized("verify", "admin")
    @blp.response(200, DeletionSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, deletion_id: str) -> OwedDeletion:
        """Confirm that the face data of an ended consent was deleted

        By the key that owes it, or by an `admin` key on its behalf (a system whose key was removed, say):
        `confirmed_by` and the audit trail say who confirmed. Confirming again answers the same 200 and
        changes nothing. Another key's deletion (for a `verify` key) or another organization's answers 404.
        """
        caller = current_caller()
        session = db.session()
        confirmed = confirm_deletion(
            session,
            org_id=caller.org_id,
            deletion_id=deletion_id,
            api_key_id=_own_key(caller),
            actor=caller.actor,
            hours=current_app.config["DELETION_HOURS"],
        )
        session.commit()
        return confirmed
