"""What every answer carries, whoever wrote it: security headers, JSON in UTF-8, ``Retry-After`` only when due.

Flask's answers get them in an ``after_request`` hook (404s, 405s and errors too); the verification
endpoint, which answers in front of Flask, sends :data:`ANSWER_HEADERS` as they stand. A view or
blueprint that sets its own (the guardian pages' stricter policy, the status lists' public caching, the
docs page's policy) keeps its own.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider

#: No caching (answers name people and consents), no content sniffing, no referrer, no framing.
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
#: An answer that is not a page loads nothing and is never framed.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
#: A page that sets no policy of its own is never framed, at least.
PAGE_POLICY = "frame-ancestors 'none'"
#: JSON is UTF-8 (RFC 8259); saying so spares clients that would guess otherwise.
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: The verification endpoint's answers (all JSON), precomputed (with HSTS: answer_headers): it skips Flask's hooks.
ANSWER_HEADERS = (*SECURITY_HEADERS, ("Content-Security-Policy", DATA_POLICY))
#: Sent when ``PUBLIC_URL`` is https: browsers then reach this host over https only, for a year (pages for
#: guardians and people carry link tokens, which a downgraded first request would expose).
HSTS = ("Strict-Transport-Security", "max-age=31536000")
#: The only statuses whose ``Retry-After`` means something to a client.
RETRY_STATUSES = frozenset({429, 503})

_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON, not ``\\u``-escaped: Chinese travels as UTF-8.

    A lone surrogate (which a client may send, escaped, in a field name or value that an error echoes)
    cannot be encoded as UTF-8: it alone stays escaped, as ``ensure_ascii`` would have written it.
    """

    ensure_ascii = False
    sort_keys = False
    mimetype = JSON_CONTENT_TYPE

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        if not text.isascii() and _SURROGATE.search(text):
            # Surrogates can only be inside JSON strings (the rest is ASCII): escape them where they are.
            return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
        return text


def transport_headers(config: Any) -> tuple[tuple[str, str], ...]:
    """``Strict-Transport-Security`` when the service is reached over https (``PUBLIC_URL``), else nothing."""
    return (HSTS,) if urlsplit(config["PUBLIC_URL"]).scheme == "https" else ()


def answer_headers(config: Any) -> tuple[tuple[str, str], ...]:
    """The verification endpoint's headers for this app: :data:`ANSWER_HEADERS`, and HSTS over https."""
    return (*ANSWER_HEADERS, *transport_headers(config))


def protect_answer(response: Response, transport: tuple[tuple[str, str], ...] = ()) -> Response:
    headers = response.headers
    for name, value in (*SECURITY_HEADERS, *transport):
        headers.setdefault(name, value)
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = PAGE_POLICY if response.mimetype == "text/html" else DATA_POLICY
    if response.status_code not in RETRY_STATUSES:
        # flask-limiter sends one with every answer it counts, as the time its window resets.
        headers.pop("Retry-After", None)
    return response


def init_app(app: Flask) -> None:
    """Install the JSON provider and the headers hook.

    Call before ``limits.init_app``: Flask runs ``after_request`` hooks last-registered first, and this
    one must see flask-limiter's headers to remove its ``Retry-After``.
    """
    app.json = JsonProvider(app)
    transport = transport_headers(app.config)
    app.after_request(lambda response: protect_answer(response, transport))
