"""Revocation status lists for offline verification."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView

from service import db
from service.api import Blueprint
from service.domain.status_lists import status_list_token
from service.keys.signing import key_set

blp = Blueprint("status-lists", __name__, url_prefix="/v1/status-lists", description="Token status lists")


@blp.route("/<string:list_id>")
class StatusListById(MethodView):
    @blp.response(200, content_type="application/statuslist+jwt", description="A `statuslist+jwt`")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, list_id: str) -> Response:
        """A revocation status list (IETF OAuth Token Status List), signed with the token key

        Claims `sub` (this URL), `iat`, `exp`, `ttl` (seconds a verifier may cache it) and
        `status_list {bits: 1, lst}`: `lst` is the base64url of the zlib-compressed bit array; bit `idx` is
        1 when the token with that `status.status_list.idx` is no longer valid (revoked, expired, erased,
        re-consent required).
        """
        ttl = current_app.config["STATUS_LIST_TTL"]
        token = status_list_token(
            db.session(), list_id=list_id, keys=key_set(), public_url=current_app.config["PUBLIC_URL"], ttl=ttl
        )
        response = Response(token, mimetype="application/statuslist+jwt")
        response.headers["Cache-Control"] = f"public, max-age={ttl}"
        return response
