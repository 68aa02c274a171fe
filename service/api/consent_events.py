"""The consent change feed."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.common import PageQuerySchema
from schemas.events import ConsentEventPageSchema
from service import db
from service.api import Blueprint
from service.domain.consent_events import consent_events
from service.keys.api_keys import current_caller

blp = Blueprint("consent-events", __name__, url_prefix="/v1/consent-events", description="Consent change feed")


@blp.route("")
class ConsentEvents(MethodView):
    @blp.authorized("verify", "admin")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ConsentEventPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Read consent changes in order, for 1:N galleries and caches

        Types: `granted`, `revoked`, `expired`, `declined`, `reconsent_required`, `erased` (a person was
        erased: drop every template of `subject_id`), `deletion_overdue` (a deletion owed for the ended
        consent `consent_id` was not confirmed in time: see `GET /v1/deletions`). Ordered and gap-free:
        resume with `after` set to the last `cursor` read (or `next_after`); `limit` at most 1000.
        """
        events = consent_events(
            db.session(), org_id=current_caller().org_id, after=query["after"], limit=query["limit"]
        )
        return {"events": events, "next_after": events[-1]["cursor"] if events else query["after"]}
