"""The verify hot path: ``POST /v1/verifications`` answered in front of Flask.

Recognition systems ask before every face, so the request they send most is answered by a small WSGI
layer that does what the Flask view does, with the same functions: count it against the key's rate limit,
authenticate, validate, decide, record, commit, answer, count and log. It skips only the framework's
per-request machinery (request context, hooks, webargs, response marshalling), which costs more than the
decision itself.

It answers only what it recognises as a well-formed request from a key it already knows (one the API-key
cache holds; see ``service.auth.KeyCache``). Anything else (malformed or unusual JSON, unknown fields, an
unknown, uncached or unscoped key, a body over the limit or of another type, a rate limit reached) goes
to the Flask view untouched, which answers it, or its documented error, itself. The first request of a
key in a worker therefore takes the Flask path and fills the cache. ``tests/test_hot_path.py`` sends the
same requests both ways and compares the answers and the records. ``VERIFY_HOT_PATH=false`` switches it
off.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from marshmallow import validate

from schemas.common import unstorable
from schemas.verifications import VerificationRequestSchema
from service.api.verifications import UNAVAILABLE, decision_view, verifier
from service.auth import bearer_secret, key_cache
from service.domain.verification import VerificationRequest
from service.limits import caller_identity, verify_limit
from service.observability import observe_request, request_id

PATH = "/v1/verifications"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Each field's longest accepted value, read off the schema so the two cannot drift apart.
FIELD_LENGTHS = {
    name: next(v.max for v in field.validators if isinstance(v, validate.Length))
    for name, field in VerificationRequestSchema().fields.items()
}


def parse_request(body: bytes) -> VerificationRequest | None:
    """The request if the schema would accept ``body`` as it stands, else ``None`` (Flask answers)."""
    try:
        data = json.loads(body)
    except ValueError:  # includes bytes that are not UTF-8
        return None
    if type(data) is not dict or "purpose" not in data or ("token" in data) == ("subject_id" in data):
        return None
    for name, value in data.items():
        longest = FIELD_LENGTHS.get(name)
        if longest is None or type(value) is not str or not 0 < len(value) <= longest or unstorable(value):
            return None
    return VerificationRequest(**data)


class HotPath:
    """WSGI middleware: answers well-formed verifications itself, passes everything else on."""

    def __init__(self, app: Flask, downstream: WSGIApp):
        self.downstream = downstream
        self.max_length = app.config["MAX_CONTENT_LENGTH"]
        self.log_requests = app.config["LOG_REQUESTS"]
        self.limit = verify_limit(app)
        with app.app_context():
            self.keys = key_cache()
            self.verifier = verifier()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.downstream(environ, start_response)
        started = time.perf_counter()
        body = self._body(environ)
        if body is None:
            return self.downstream(environ, start_response)
        answered = self._answer(environ, body, started)
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(body)  # Flask reads the body we took
            return self.downstream(environ, start_response)
        status, headers, payload = answered
        start_response(status, headers)
        return [payload]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The JSON body, if it has a declared length within the limit; else ``None`` (left unread)."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        declared = environ.get("CONTENT_LENGTH", "")
        if mimetype != "application/json" or not declared.isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        length = int(declared)
        if not 0 < length <= self.max_length:
            return None
        return bytes(environ["wsgi.input"].read(length))

    def _answer(
        self, environ: dict[str, Any], body: bytes, started: float
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        request = parse_request(body)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        secret = bearer_secret(authorization)
        caller = self.keys.peek(secret) if request is not None and secret is not None else None
        if request is None or caller is None or "verify" not in caller.scopes:
            return None
        allowance = self.limit.hit(caller_identity(authorization, None))
        if not allowance.allowed:
            return None
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        results = self.verifier.answer(caller, [request], rid)
        if results is None:
            status, view = 503, UNAVAILABLE
        else:
            status, view = 200, decision_view(*results[0])
        payload = (json.dumps(view, separators=(",", ":")) + "\n").encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *allowance.headers,
            ("X-Request-ID", rid),
        ]
        observe_request("POST", PATH, status, time.perf_counter() - started, rid, self.log_requests)
        return ("200 OK" if status == 200 else "503 SERVICE UNAVAILABLE"), headers, payload


def init_app(app: Flask) -> None:
    """Put the hot path in front of the app (Flask's own ``wsgi_app``), unless ``VERIFY_HOT_PATH`` is off."""
    if app.config["VERIFY_HOT_PATH"]:
        app.wsgi_app = HotPath(app, app.wsgi_app)  # type: ignore[method-assign]
