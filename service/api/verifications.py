"""The verification endpoint recognition systems call before processing any face. It fails closed."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, jsonify
from flask.views import MethodView
from sqlalchemy.engine import Connection

from schemas.verifications import (
    VerificationBatchRequestSchema,
    VerificationBatchSchema,
    VerificationRequestSchema,
    VerificationSchema,
    VerificationUnavailableSchema,
)
from service import db
from service.api import Blueprint
from service.domain.verification import Decision, Reason, VerificationRequest, decide_many, record_decisions
from service.errors import DomainError
from service.keys.api_keys import Caller, authenticate
from service.keys.tokens import VerifiedTokenCache
from service.limits import address_identity, check_key_limit, key_identity, verify_limit
from service.observability import DECISIONS

log = logging.getLogger(__name__)

blp = Blueprint("verifications", __name__, url_prefix="/v1/verifications", description="Verification")


@blp.after_request
def _rate_limit_headers(response: Response) -> Response:
    for name, value in g.get("rate_limit_headers", ()):
        response.headers[name] = value
    return response


@functools.cache
def _decision_counter(reason: Reason) -> Any:
    """The decisions counter's child for ``reason`` (looking children up costs more than counting)."""
    return DECISIONS.labels("allow" if reason is Reason.CONSENT_ACTIVE else "deny", reason.value)


AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


class Verifier:
    """Decides and records verifications on a connection of its own: for the views and the hot path.

    Each worker thread keeps one connection between verifications (``db.HeldConnections``): at most one
    per thread, checked out of the pool and kept checked out, which ``DB_POOL_SIZE`` counts.

    On SQLite: decide in a read transaction, then record in a short write transaction. The lookups run
    in a deferred transaction that never waits for writers, and the write lock is held only for an insert.

    On PostgreSQL a single verification runs in autocommit: its lookup is one statement (a consistent
    snapshot of its own) and its record one ``INSERT``, atomic and durable when it returns, so no
    ``BEGIN``/``COMMIT`` round trips are needed. A batch is one transaction, on a pooled connection: all
    records or none.
    """

    def __init__(self, app: Flask):
        self.engine = app.extensions["consent_gate.engine"]
        self.keyring = app.extensions["consent_gate.keyring"]
        self.issuer = app.config["ISSUER"]
        self.token_cache = VerifiedTokenCache()
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.held = db.HeldConnections(self.engine, options=None if self.sqlite else AUTOCOMMIT)

    def answer(
        self, caller: Caller, requests: list[VerificationRequest], request_id: str | None = None
    ) -> list[tuple[Decision, str]] | None:
        """Every request's decision and verification id, committed; ``None`` if anything failed."""
        try:
            if self.sqlite:
                decisions, ids = self._read_then_write(caller, requests)
            elif len(requests) == 1:
                with self.held.connection() as conn:
                    decisions = self._decide(conn, caller, requests)
                    ids = self._record(conn, caller, requests, decisions)
            else:
                with self.engine.connect() as conn, conn.begin():
                    decisions = self._decide(conn, caller, requests)
                    ids = self._record(conn, caller, requests, decisions)
        except Exception:
            # Fail closed: whatever went wrong, the answer is deny.
            log.exception("verification failed; answering deny", extra={"request_id": request_id})
            _decision_counter(Reason.UNAVAILABLE).inc(len(requests))
            return None
        for decision in decisions:
            _decision_counter(decision.reason).inc()
        return list(zip(decisions, ids, strict=True))

    def _read_then_write(self, caller: Caller, requests: list[VerificationRequest]) -> tuple[list[Decision], list[str]]:
        with self.held.connection() as conn:
            conn.execution_options(**{db.DEFERRED_OPTION: True})
            with conn.begin():
                decisions = self._decide(conn, caller, requests)
            conn.execution_options(**{db.DEFERRED_OPTION: False})
            with conn.begin():
                ids = self._record(conn, caller, requests, decisions)
        return decisions, ids

    def _decide(self, conn: Connection, caller: Caller, requests: list[VerificationRequest]) -> list[Decision]:
        return decide_many(
            conn,
            org_id=caller.org_id,
            requests=requests,
            keys=self.keyring.current().public_keys,
            issuer=self.issuer,
            token_cache=self.token_cache,
        )

    def _record(
        self, conn: Connection, caller: Caller, requests: list[VerificationRequest], decisions: list[Decision]
    ) -> list[str]:
        return record_decisions(
            conn, org_id=caller.org_id, api_key_id=caller.key_id, requests=requests, decisions=decisions
        )


def verifier() -> Verifier:
    found: Verifier | None = current_app.extensions.get("consent_gate.verifier")
    if found is None:
        found = current_app.extensions["consent_gate.verifier"] = Verifier(current_app)
    return found


def decide_and_record(requests: list[VerificationRequest]) -> list[tuple[Decision, str]] | None:
    return verifier().answer(g.verify_caller, requests, g.get("request_id"))


def decision_view(decision: Decision, verification_id: str) -> dict[str, Any]:
    return {
        "decision": "allow" if decision.allowed else "deny",
        "reason": decision.reason.value,
        "consent_id": decision.consent_id,
        "verification_id": verification_id,
    }


UNAVAILABLE = {
    "decision": "deny",
    "reason": Reason.UNAVAILABLE.value,
    "code": "service_unavailable",
    "status": 503,
    "message": "the service could not decide; do not process the face",
}


def unavailable() -> Response:
    # A Response, so that flask-smorest passes it through instead of dumping it with the 200 schema.
    response = jsonify(UNAVAILABLE)
    response.status_code = 503
    return response


def authenticated_or_closed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate before the body is even parsed; if that cannot be done, deny (fail closed)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            db.begin_read(db.session())
            g.verify_caller = authenticate("verify")
        except DomainError:
            # Without a valid key, the request counts against its client address (once).
            g.rate_limit_headers = check_key_limit(verify_limit(current_app), address_identity())
            raise
        except Exception:
            log.exception("authentication failed on the verify path; answering deny")
            db.session().rollback()
            return unavailable()
        # Counted once, by the key's id; a batch's other items are counted when its body is read.
        g.rate_limit_headers = check_key_limit(verify_limit(current_app), key_identity(g.verify_caller.key_id))
        return view(*args, **kwargs)

    return wrapper


def count_batch_items(items: int) -> None:
    """A batch costs its number of items: the first was counted with the request, the rest now."""
    if items > 1:
        g.rate_limit_headers = check_key_limit(
            verify_limit(current_app), key_identity(g.verify_caller.key_id), items - 1
        )


@blp.route("")
class Verifications(MethodView):
    @authenticated_or_closed
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
        `public_safety_only` (a public-place device may verify only public-safety purposes), `subject_erased`.
        Scope: `verify`.
        """
        results = decide_and_record([VerificationRequest(**fields)])
        if results is None:
            return unavailable()
        return decision_view(*results[0])


@blp.route("/batch")
class VerificationBatch(MethodView):
    @authenticated_or_closed
    @blp.arguments(VerificationBatchRequestSchema)
    @blp.response(200, VerificationBatchSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(503, schema=VerificationUnavailableSchema, description="Could not decide: deny all")
    @blp.doc(security=[{"ApiKey": []}])
    def post(self, fields: dict[str, Any]) -> Any:
        """Ask about up to 1000 faces at once

        One result per item, in the items' order, each decided and recorded exactly like a single
        verification. More than 1000 items answer 422. Scope: `verify`.
        """
        count_batch_items(len(fields["items"]))
        results = decide_and_record([VerificationRequest(**item) for item in fields["items"]])
        if results is None:
            return unavailable()
        return {"results": [decision_view(decision, verification_id) for decision, verification_id in results]}
