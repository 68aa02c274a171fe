"""Link tokens in URLs (``/report/<token>``, ``/g/<token>``, ``/p/<token>``) never reach the logs, and a report
link has one spelling: any other (padded, another alphabet, stray bits, the high-S twin of its signature)
answers the invalid link's 404 page, never an error."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from service.keys.report_links import encode_report_link
from service.keys.signing import issuer, key_set
from service.keys.tokens import P256_ORDER, b64url
from service.models import utcnow

if TYPE_CHECKING:
    from tests.support import Tenant

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _link_token(app: Flask, org_id: str, link_id: str = "link-1") -> str:
    with app.app_context():
        now = utcnow().replace(microsecond=0)
        return encode_report_link(
            key_set(),
            issuer=issuer(),
            org_id=org_id,
            link_id=link_id,
            issued_at=now,
            expires_at=now + timedelta(hours=2),
        )


def _signature(token: str) -> bytes:
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _with_signature(token: str, segment: str) -> str:
    return token.rsplit(".", 1)[0] + "." + segment


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def _invalid_page(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404, (path[-12:], answer.status_code)
    assert 'id="link-invalid"' in answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Content-Type-Options"] == "nosniff"


def test_other_spellings_of_a_live_report_link_answer_the_invalid_page_and_log_nothing(
    tenant: Tenant, app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _link_token(app, tenant.org_id)
    assert client.get(f"/report/{token}").status_code == 200  # the link itself is live
    signature = _signature(token)
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    high_s_twin = _with_signature(token, b64url(r + (P256_ORDER - s).to_bytes(32, "big")))
    # The last character's unused low bits changed: the same bytes, spelled otherwise.
    stray_bits = token[:-1] + ALPHABET[ALPHABET.index(token[-1]) ^ 1]
    assert _signature(stray_bits) == signature
    too_long = _with_signature(token, b64url(b"\xff" * 100))  # a "signature" beyond the group order
    for spelling in (token + "==", token + "=", high_s_twin, stray_bits, too_long, token + "."):
        _invalid_page(client, f"/report/{spelling}")
    # The standard alphabet's "+" for "-" (its "/" would end the path): signatures are random, so sign until
    # one has a "-".
    for attempt in range(200):
        other = _link_token(app, tenant.org_id, link_id=f"link-{attempt}")
        segment = other.rsplit(".", 1)[1]
        if "-" in segment:
            _invalid_page(client, f"/report/{_with_signature(other, segment.replace('-', '+'))}")
            break
    else:
        pytest.fail("no signature with '-' in 200 tries")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert token.rsplit(".", 1)[1] not in _logged(caplog)


@pytest.fixture()
def exceptions_answer_500(app_config: dict[str, Any]) -> None:
    """As in production: an unhandled exception is logged and answers 500, rather than reaching the test."""
    app_config["PROPAGATE_EXCEPTIONS"] = False


def test_an_unhandled_exception_on_a_token_route_logs_the_route_never_the_token(
    exceptions_answer_500: None, tenant: Tenant, app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.before_request
    def fail_on_request() -> None:  # after routing: the real route, its real token, then a failure
        if request.headers.get("X-Fail") == "yes":
            raise RuntimeError("a failure inside the page")

    caplog.set_level(logging.DEBUG)
    report_token = _link_token(app, tenant.org_id)
    page_token = b64url(b"a page token of 32 random bytes!")
    for path, rule in (
        (f"/report/{report_token}", "/report/<token>"),
        (f"/g/{page_token}", "/g/<token>"),
        (f"/p/{page_token}", "/p/<token>"),
        (f"/p/{page_token}/copy.json", "/p/<token>/copy.json"),
    ):
        caplog.clear()
        answer = client.get(path, headers={"X-Fail": "yes"})
        assert answer.status_code == 500, path
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
        assert errors and all(rule in r.getMessage() for r in errors), _logged(caplog)
        logged = _logged(caplog)
        assert "a failure inside the page" in logged  # the exception itself is still logged, with its traceback
        for secret in (report_token, report_token.rsplit(".", 1)[1], page_token):
            assert secret not in logged, rule
