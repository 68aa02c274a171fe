"""The verify hot path: ``POST /v1/verifications`` (and ``/batch``) answered in front of Flask.

Recognition systems ask before every face, so the request they send most is answered by a small WSGI
layer that does what the Flask view does, with the same functions: count it against the key's rate limit,
authenticate, validate, decide, record, commit, answer, count and log. It skips only the framework's
per-request machinery (request context, hooks, webargs, response marshalling), which costs more than the
decision itself.

It answers only what it recognises as a well-formed request from a key it already knows (one the API-key
cache holds; see ``service.keys.api_keys.KeyCache``). Anything else (malformed or unusual JSON, unknown fields, an
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

import marshmallow as ma
from flask import Flask
from marshmallow import validate

from schemas.common import unstorable
from schemas.verifications import VerificationBatchRequestSchema, VerificationRequestSchema
from service.api.verifications import UNAVAILABLE, decision_view, verifier
from service.domain.verification import VerificationRequest
from service.errors import error_body
from service.keys.api_keys import bearer_secret, key_cache
from service.limits import key_identity, verify_limit
from service.observability import observe_request, request_id

SINGLE, BATCH = "/v1/verifications", "/v1/verifications/batch"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]


def _longest(field: ma.fields.Field) -> int:
    """The ``max`` of a field's length validator: read off the schema so the two cannot drift apart."""
    return next(int(v.max) for v in field.validators if isinstance(v, validate.Length) and v.max is not None)


FIELD_LENGTHS = {name: _longest(field) for name, field in VerificationRequestSchema().fields.items()}
BATCH_MAX = _longest(VerificationBatchRequestSchema().fields["items"])


def _item(data: Any) -> VerificationRequest | None:
    if type(data) is not dict or "purpose" not in data or ("token" in data) == ("subject_id" in data):
        return None
    for name, value in data.items():
        longest = FIELD_LENGTHS.get(name)
        if longest is None or type(value) is not str or not 0 < len(value) <= longest or unstorable(value):
            return None
    return VerificationRequest(**data)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep to parse: the view answers
        return None


def parse_request(body: bytes) -> list[VerificationRequest] | None:
    """A single verification, if the schema would accept ``body`` as it stands; else ``None``."""
    found = _item(_json(body))
    return [found] if found is not None else None


def parse_batch(body: bytes) -> list[VerificationRequest] | None:
    """A batch's items, if the schema would accept ``body`` as it stands; else ``None``."""
    data = _json(body)
    if type(data) is not dict or data.keys() != {"items"} or type(data["items"]) is not list:
        return None
    if not 0 < len(data["items"]) <= BATCH_MAX:
        return None
    items = []
    for entry in data["items"]:
        item = _item(entry)
        if item is None:
            return None
        items.append(item)
    return items


class HotPath:
    """WSGI middleware: answers well-formed verifications itself, passes everything else on."""

    def __init__(self, app: Flask, downstream: WSGIApp):
        self.downstream = downstream
        self.routes: dict[str, tuple[Callable[[bytes], list[VerificationRequest] | None], int]] = {
            SINGLE: (parse_request, app.config["MAX_CONTENT_LENGTH"]),
            BATCH: (parse_batch, app.config["BATCH_MAX_CONTENT_LENGTH"]),
        }
        self.log_requests = app.config["LOG_REQUESTS"]
        self.limit = verify_limit(app)
        with app.app_context():
            self.keys = key_cache()
            self.verifier = verifier()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        route = self.routes.get(path) if environ.get("REQUEST_METHOD") == "POST" else None
        if route is None:
            return self.downstream(environ, start_response)
        started = time.perf_counter()
        parse, max_length = route
        body = self._body(environ, max_length)
        if body is None:
            return self.downstream(environ, start_response)
        answered = self._answer(environ, path, parse(body), started)
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(body)  # Flask reads the body we took
            return self.downstream(environ, start_response)
        status, headers, payload = answered
        start_response(status, headers)
        return [payload]

    @staticmethod
    def _body(environ: dict[str, Any], max_length: int) -> bytes | None:
        """The JSON body, if it has a declared length within the limit; else ``None`` (left unread)."""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        declared = environ.get("CONTENT_LENGTH", "")
        if mimetype != "application/json" or not declared.isdigit() or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        length = int(declared)
        if not 0 < length <= max_length:
            return None
        return bytes(environ["wsgi.input"].read(length))

    def _answer(
        self, environ: dict[str, Any], path: str, requests: list[VerificationRequest] | None, started: float
    ) -> Answer | None:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        secret = bearer_secret(authorization)
        caller = self.keys.peek(secret) if requests is not None and secret is not None else None
        if requests is None or caller is None or "verify" not in caller.scopes:
            return None
        # Counted once, here, by the key's id (however the header spelled it); a batch costs its items.
        allowance = self.limit.hit(key_identity(caller.key_id), len(requests))
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        if not allowance.allowed:
            body = error_body(429, "rate_limited", self.limit.message)
            payload = (json.dumps(body, separators=(",", ":")) + "\n").encode()
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                *allowance.headers,
                ("X-Request-ID", rid),
            ]
            observe_request("POST", path, 429, time.perf_counter() - started, rid, self.log_requests)
            return "429 TOO MANY REQUESTS", headers, payload
        results = self.verifier.answer(caller, requests, rid)
        view: dict[str, Any]
        if results is None:
            status, view = 503, UNAVAILABLE
        elif path == SINGLE:
            status, view = 200, decision_view(*results[0])
        else:
            status, view = 200, {"results": [decision_view(*result) for result in results]}
        payload = (json.dumps(view, separators=(",", ":")) + "\n").encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *allowance.headers,
            ("X-Request-ID", rid),
        ]
        observe_request("POST", path, status, time.perf_counter() - started, rid, self.log_requests)
        return ("200 OK" if status == 200 else "503 SERVICE UNAVAILABLE"), headers, payload


def init_app(app: Flask) -> None:
    """Put the hot path in front of the app (Flask's own ``wsgi_app``), unless ``VERIFY_HOT_PATH`` is off."""
    if app.config["VERIFY_HOT_PATH"]:
        app.wsgi_app = HotPath(app, app.wsgi_app)  # type: ignore[method-assign]
