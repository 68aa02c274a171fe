"""The security headers ride on every error too: a body too large (413), not JSON (415), an unhandled
exception (500), and the report link's 404 page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

if TYPE_CHECKING:
    from tests.support import Tenant

HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@pytest.fixture()
def exceptions_answer_500(app_config: dict[str, Any]) -> None:
    """As in production: an unhandled exception answers 500, rather than reaching the test."""
    app_config["PROPAGATE_EXCEPTIONS"] = False


def test_errors_carry_the_security_headers(
    exceptions_answer_500: None, app: Flask, tenant: Tenant, client: FlaskClient
) -> None:
    @app.before_request
    def fail_on_request() -> None:
        if request.headers.get("X-Fail") == "yes":
            raise RuntimeError("a failure inside the view")

    json_type = tenant.headers("consents", {"Content-Type": "application/json"})
    answers = {
        413: client.post("/v1/subjects", data="x" * (app.config["MAX_CONTENT_LENGTH"] + 1), headers=json_type),
        415: client.post("/v1/subjects", data="external_ref=a", headers=tenant.headers("consents")),
        500: client.get("/v1/subjects", headers=tenant.headers("consents", {"X-Fail": "yes"})),
        404: client.get("/report/not-a-link"),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, (status, answer.status_code)
        for name, value in HEADERS.items():
            assert answer.headers.get(name) == value, (status, name, answer.headers.get(name))
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"], status
    assert answers[500].json["code"] == "internal_error" and "a failure" not in answers[500].get_data(as_text=True)
    assert answers[404].headers["X-Robots-Tag"] == "noindex, nofollow"
