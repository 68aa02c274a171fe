"""``POST /v1/verifications`` and ``/batch``: the one endpoint that answers them, whatever the body.

Recognition systems ask before every face, so these two paths are answered by this small WSGI endpoint
in front of Flask, for every request: it skips only the framework's per-request machinery (request
context, hooks, webargs, response marshalling), which costs more than the decision itself. Every other
path, and every other method on these two, goes on to Flask. The flask-smorest view
(``service.api.verifications``) only documents the endpoint in the spec.

In order, each request is:

1. read, whatever its transfer encoding, within the size limit (413), as JSON (415), and its nesting
   measured before any parser sees it (400 ``json_too_deep``);
2. authenticated: a key the key cache holds, or else one read from the database (401, 403);
3. parsed and validated by the schema that documents it (400 ``malformed_json``, 422 with its details);
4. counted, once, against the caller's allowance: the API key's id once it is known, else the client
   address; a batch costs its number of items (429);
5. decided and recorded before the answer; if that fails, 503 ``{decision: deny, reason: unavailable}``.

Every answer is rendered with the functions every other view's errors go through
(``service.errors.http_error_body``, ``service.api.handle_domain_error``), serialised by the app's JSON
provider (UTF-8, not ``\\u``-escaped), carries the headers of every answer (``service.headers``) and, when
it is an error, the request's id; it is counted and logged like any request.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import ClosingIterator

from service.api import handle_domain_error
from service.errors import DomainError, http_error_body
from service.headers import JSON_CONTENT_TYPE, answer_headers
from service.keys.api_keys import Caller, bearer_secret, key_cache, require
from service.limits import RateLimited, address_identity, key_identity, verify_limit
from service.limits.keys import Allowance
from service.observability import observe_request, request_id
from service.verification import bodies
from service.verification.rules import Decision, Reason, VerificationRequest
from service.verification.verifier import Verifier

log = logging.getLogger(__name__)

SINGLE, BATCH = "/v1/verifications", "/v1/verifications/batch"
#: The WSGI environ key naming a key whose last_used_at is due (set once the caller is known).
KEY_USE_DUE = "consent_gate.key_use_due"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[int, Any, list[tuple[str, str]]]

UNAVAILABLE = {
    "decision": "deny",
    "reason": Reason.UNAVAILABLE.value,
    "code": "service_unavailable",
    "status": 503,
    "message": "the service could not decide; do not process the face",
}
STATUS_LINES = {status: f"{status} {phrase.upper()}" for status, phrase in HTTP_STATUS_CODES.items()}


def decision_view(decision: Decision, verification_id: str) -> dict[str, Any]:
    """One decision as the API answers it (``schemas.verifications.VerificationSchema``)."""
    return {
        "decision": "allow" if decision.allowed else "deny",
        "reason": decision.reason.value,
        "consent_id": decision.consent_id,
        "verification_id": verification_id,
    }


def _error(error: DomainError | HTTPException, extra: Sequence[tuple[str, str]] = ()) -> Answer:
    if isinstance(error, DomainError):
        body, status, headers = handle_domain_error(error)
    else:
        body, status, headers = http_error_body(error)
    return status, body, [*extra, *headers.items()]


class VerificationEndpoint:
    """WSGI middleware: answers ``POST`` to the two verification paths, passes everything else on."""

    def __init__(self, app: Flask, downstream: WSGIApp):
        self.downstream = downstream
        self.routes: dict[str, tuple[Callable[[Any], list[VerificationRequest]], int]] = {
            SINGLE: (bodies.single, app.config["MAX_CONTENT_LENGTH"]),
            BATCH: (bodies.batch, app.config["BATCH_MAX_CONTENT_LENGTH"]),
        }
        self.dumps = functools.partial(app.json.dumps, separators=(",", ":"))  # as Flask's responses
        self.log_requests = app.config["LOG_REQUESTS"]
        self.answer_headers = answer_headers(app.config)  # precomputed: this endpoint skips Flask's hooks
        self.limit = verify_limit(app)
        with app.app_context():
            self.verifier = Verifier(app, key_cache())
        app.extensions["consent_gate.verifier"] = self.verifier

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # As Flask's router sees the path (``//v1/verifications`` is ``/v1/verifications``) and the method.
        path = "/" + environ.get("PATH_INFO", "").lstrip("/")
        route = self.routes.get(path)
        if route is None or environ.get("REQUEST_METHOD", "").upper() != "POST":
            return self.downstream(environ, start_response)
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        status, body, headers = self.respond(environ, path, route, rid)
        if status >= 400:  # every error names the request, as Flask's do (service.errors.error_body)
            body = {**body, "request_id": rid}
        payload = (self.dumps(body) + "\n").encode()
        start_response(
            STATUS_LINES[status],
            [
                ("Content-Type", JSON_CONTENT_TYPE),
                ("Content-Length", str(len(payload))),
                *headers,
                *self.answer_headers,
                ("X-Request-ID", rid),
            ],
        )
        observe_request("POST", path, status, time.perf_counter() - started, rid, self.log_requests)
        key_id = environ.pop(KEY_USE_DUE, None)
        if key_id is None:
            return [payload]
        # last_used_at, at most once a minute per key: after the answer was sent, not before it.
        return ClosingIterator([payload], functools.partial(self.verifier.record_key_use, key_id))

    def respond(
        self,
        environ: dict[str, Any],
        path: str,
        route: tuple[Callable[[Any], list[VerificationRequest]], int],
        rid: str,
    ) -> Answer:
        read, max_length = route
        try:
            body = bodies.check_depth(bodies.read_body(environ, max_length))
            caller = require(bearer_secret(environ.get("HTTP_AUTHORIZATION", "")), self.verifier.caller, ("verify",))
        except (DomainError, HTTPException) as refused:
            # No key known (or none needed to refuse): counted against the client address.
            return self._refuse(refused, self.limit.hit(address_identity(environ.get("REMOTE_ADDR"))))
        except Exception:
            log.exception("authentication failed on the verify path; answering deny", extra={"request_id": rid})
            return 503, UNAVAILABLE, []
        if self.verifier.keys.use_due(caller.key_id):
            environ[KEY_USE_DUE] = caller.key_id
        try:
            requests = read(bodies.parse_json(body))
        except (DomainError, HTTPException) as invalid:
            return self._refuse(invalid, self.limit.hit(key_identity(caller.key_id)))
        allowance = self.limit.hit(key_identity(caller.key_id), len(requests))
        if not allowance.allowed:
            return self._refuse(None, allowance)
        return self._decide(caller, requests, path, rid, allowance)

    def _refuse(self, error: DomainError | HTTPException | None, allowance: Allowance) -> Answer:
        if not allowance.allowed:
            return _error(RateLimited(self.limit.message, allowance.headers))
        assert error is not None
        return _error(error, allowance.headers)

    def _decide(
        self, caller: Caller, requests: list[VerificationRequest], path: str, rid: str, allowance: Allowance
    ) -> Answer:
        results = self.verifier.answer(caller, requests, rid)
        if results is None:
            return 503, UNAVAILABLE, allowance.headers
        if path == SINGLE:
            return 200, decision_view(*results[0]), allowance.headers
        return 200, {"results": [decision_view(*result) for result in results]}, allowance.headers


def init_app(app: Flask) -> None:
    """Mount the endpoint in front of the app (Flask's own ``wsgi_app``)."""
    app.wsgi_app = VerificationEndpoint(app, app.wsgi_app)  # type: ignore[method-assign]
