"""People's rights (PIPL 44-50, R16): a link to the person's own page; the requests they file there."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from schemas.rights import (
    AccessLinkSchema,
    RightsRequestCloseSchema,
    RightsRequestPageSchema,
    RightsRequestQuerySchema,
    RightsRequestSchema,
)
from service import db
from service.api import Blueprint
from service.domain import rights
from service.domain.guardian import Messenger
from service.domain.pages import Page
from service.keys.api_keys import current_caller
from service.models import RightsRequest

access_blp = Blueprint(
    "access-links", __name__, url_prefix="/v1/subjects", description="A person's own page (R16, PIPL 44-50)"
)
blp = Blueprint(
    "rights-requests", __name__, url_prefix="/v1/rights-requests", description="Correction, deletion, complaints (R16)"
)

ACCESS_LINK_EXAMPLE = {
    "url": "https://consent.example.cn/p/3q2-7wEjRz8kY0b9wqk1V9l3c8m0Q2n7Z4t6u5v1x0A",
    "expires_at": "2026-12-04T09:00:00+00:00",
    "holder": "person",
    "delivery_status": "not_required",
}


@access_blp.route("/<string:subject_id>/access-link")
class AccessLinkForSubject(MethodView):
    @access_blp.authorized("consents")
    @access_blp.response(201, AccessLinkSchema, example=ACCESS_LINK_EXAMPLE)
    @access_blp.alt_response(404, response="NOT_FOUND")
    @access_blp.alt_response(409, response="CONFLICT")
    @access_blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, subject_id: str) -> dict[str, Any]:
        """Open a link to the person's own page

        On `/p/<token>` the person sees their consents with each purpose and its alternative, withdraws
        any of them, downloads a copy of their data (JSON), and files a correction or deletion request or
        a complaint (PIPL 44-50). For an adult the answer carries the `url`: hand it to the person. For a
        child under the guardian age the link is texted to the guardian, to the phone of the child's latest
        guardian request, and no answer carries it (`holder: guardian`, `delivery_status`); without such a
        request 409 `no_guardian_phone`. The SMS counts against the phone's allowance (429 `rate_limited`,
        `sms_budget_exhausted`). Links expire after `ACCESS_LINK_HOURS` (72) and are stored hashed; an
        erased subject answers 409 `subject_erased`.
        """
        caller = current_caller()
        session = db.session()
        issued = rights.issue_access_link(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            subject_id=subject_id,
            hours=current_app.config["ACCESS_LINK_HOURS"],
            daily_sms_limit=current_app.config["SMS_DAILY_LIMIT"],
        )
        answer: dict[str, Any] = {"expires_at": issued.link.expires_at, "holder": issued.link.holder}
        request, reservation = issued.guardian_request, issued.reservation
        if request is None or reservation is None:
            session.commit()
            answer["url"] = rights.page_url(current_app.config["PUBLIC_URL"], issued.token)
            answer["delivery_status"] = "not_required"
            return answer
        messenger = Messenger.of(current_app)
        url = rights.page_url(messenger.public_url, issued.token)
        text = rights.access_text(session, request, url, issued.link.expires_at)
        messenger.queue(session, request, reservation, text.body, dict(text.params))  # sent after the commit
        session.commit()
        answer["delivery_status"] = "queued"
        answer["guardian"] = {"phone_masked": request.phone_masked}
        return answer


@blp.route("")
class RightsRequests(MethodView):
    @blp.authorized("admin")
    @blp.arguments(RightsRequestQuerySchema, location="query")
    @blp.response(200, RightsRequestPageSchema)
    def get(self, query: dict[str, Any]) -> Page[RightsRequest]:
        """List the requests people filed on their page, oldest first

        `?status=open|closed`, `?limit=` (at most 1000, 100 by default) and `?cursor=` (the `next_cursor` of
        the page before; null after the last page). Each is due (`due_at`) at the end of the 15th working
        day after it was filed, China time.
        """
        return rights.list_rights_requests(
            db.session(),
            org_id=current_caller().org_id,
            cursor=query["cursor"],
            limit=query["limit"],
            status=query.get("status"),
        )


@blp.route("/<string:rights_request_id>/close")
class RightsRequestClose(MethodView):
    @blp.authorized("admin")
    @blp.arguments(RightsRequestCloseSchema)
    @blp.response(200, RightsRequestSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, fields: dict[str, Any], rights_request_id: str) -> Any:
        """Close a request with your answer

        Tell the person what was done, or why not (a refusal gives its reasons, PIPL 50). Closing again
        changes nothing and answers the request as first closed. Audited without the texts, which are
        erased with the subject.
        """
        caller = current_caller()
        session = db.session()
        closed = rights.close_rights_request(
            session, org_id=caller.org_id, actor=caller.actor, request_id=rights_request_id, outcome=fields["outcome"]
        )
        session.commit()
        return closed
