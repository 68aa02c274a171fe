"""The verification endpoint in the spec: documented here, answered by ``service.verification.endpoint``.

The endpoint sits in front of Flask and answers every ``POST`` to these two paths itself, so these views
are never called: they exist so that flask-smorest documents the request and answer schemas, the errors
and the security scheme from the same marshmallow schemas the endpoint validates with.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, jsonify
from flask.views import MethodView

from schemas.verifications import (
    VerificationBatchRequestSchema,
    VerificationBatchSchema,
    VerificationRequestSchema,
    VerificationSchema,
    VerificationUnavailableSchema,
)
from service.api import Blueprint
from service.verification.endpoint import UNAVAILABLE

log = logging.getLogger(__name__)

blp = Blueprint("verifications", __name__, url_prefix="/v1/verifications", description="Verification")


def _answered_in_front() -> Response:
    """Never reached: the endpoint in front answers every POST to these paths, however spelled. Should a
    request get here all the same, it is denied (fail closed), and the gap logged."""
    log.error("a verification reached the documenting view instead of service.verification.endpoint")
    response = jsonify({**UNAVAILABLE, "request_id": g.get("request_id")})
    response.status_code = 503
    return response


@blp.route("")
class Verifications(MethodView):
    @blp.arguments(VerificationRequestSchema)
    @blp.response(200, VerificationSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.alt_response(
        503, schema=VerificationUnavailableSchema, description="Could not decide: deny", example=UNAVAILABLE
    )
    @blp.doc(security=[{"ApiKey": []}])
    def post(self, _fields: dict[str, Any]) -> Any:
        """Ask whether a face may be processed for a purpose

        Send the purpose about to be processed, always, with the person's consent token or subject id.
        The decision is recorded before the answer. Deny reasons are a closed set: `invalid_token`,
        `no_consent`, `unknown_purpose`, `purpose_mismatch`, `pending_guardian`, `declined`, `revoked`,
        `expired`, `reconsent_required`, `assessment_required`, `device_required` (the purpose is captured
        by a fixed device and no registered `device_id` was sent), `device_unknown`, `prohibited_location`,
        `public_safety_only` (a public-place device may verify only public-safety purposes), `subject_erased`.
        A token is allowed only for the consent it was issued for (its subject, purpose and organization)
        and only in its canonical spelling. Each request counts once against the key's rate limit.
        Scope: `verify`.
        """
        return _answered_in_front()


@blp.route("/batch")
class VerificationBatch(MethodView):
    @blp.arguments(VerificationBatchRequestSchema)
    @blp.response(200, VerificationBatchSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    @blp.alt_response(
        503, schema=VerificationUnavailableSchema, description="Could not decide: deny all", example=UNAVAILABLE
    )
    @blp.doc(security=[{"ApiKey": []}])
    def post(self, _fields: dict[str, Any]) -> Any:
        """Ask about up to 1000 faces at once

        One result per item, in the items' order, each decided and recorded exactly like a single
        verification. More than 1000 items answer 422. A batch counts as its number of items against
        the key's rate limit. Scope: `verify`.
        """
        return _answered_in_front()
