"""The verification endpoint recognition systems call before processing any face. It fails closed."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView

from schemas.verifications import VerificationRequestSchema, VerificationSchema, VerificationUnavailableSchema
from service import db
from service.api import Blueprint
from service.auth import authenticate
from service.domain.verification import Reason, VerificationRequest, verify
from service.errors import DomainError
from service.signing import issuer, key_set

log = logging.getLogger(__name__)

blp = Blueprint("verifications", __name__, url_prefix="/v1/verifications", description="Verification")


def unavailable() -> tuple[dict[str, Any], int]:
    return {
        "decision": "deny",
        "reason": Reason.UNAVAILABLE.value,
        "code": "service_unavailable",
        "status": 503,
        "message": "the service could not decide; do not process the face",
    }, 503


@blp.route("")
class Verifications(MethodView):
    @blp.arguments(VerificationRequestSchema)
    @blp.response(200, VerificationSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(503, schema=VerificationUnavailableSchema, description="Could not decide: deny")
    @blp.doc(security=[{"ApiKey": []}])
    def post(self, fields: dict[str, Any]) -> Any:
        """Ask whether a face may be processed for a purpose

        Send the purpose about to be processed, always, with the person's consent token or subject id.
        The decision is recorded before the answer. Deny reasons are a closed set: `invalid_token`,
        `no_consent`, `unknown_purpose`, `purpose_mismatch`, `pending_guardian`, `declined`, `revoked`,
        `expired`, `reconsent_required`, `assessment_required`, `device_unknown`, `prohibited_location`,
        `subject_erased`. Scope: `verify`.
        """
        session = db.session()
        try:
            caller = authenticate("verify")
            decision, verification_id = verify(
                session,
                org_id=caller.org_id,
                api_key_id=caller.key_id,
                request=VerificationRequest(**fields),
                keys=key_set().public_keys,
                issuer=issuer(),
            )
            session.commit()
        except DomainError:
            raise
        except Exception:
            # Fail closed: whatever went wrong, the answer is deny.
            log.exception("verification failed; answering deny")
            session.rollback()
            return unavailable()
        return {
            "decision": "allow" if decision.allowed else "deny",
            "reason": decision.reason.value,
            "consent_id": decision.consent_id,
            "verification_id": verification_id,
        }
