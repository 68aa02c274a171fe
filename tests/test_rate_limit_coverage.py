"""Every route is rate-limited, or exempt by name for a stated reason: a new blueprint or route cannot be left
unlimited by accident. With every limit at one request a minute, each route's second request answers 429."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from service import limits

if TYPE_CHECKING:
    from tests.support import Tenant

#: Blueprints no limit counts, and why.
EXEMPT_BLUEPRINTS = {
    "health": "liveness and readiness probes: the orchestrator must reach them when everything else is busy",
    "api-docs": "the OpenAPI document: the same static answer for everyone",
    "docs": "the documentation page and its vendored files: static",
}
#: Routes outside any blueprint no limit counts, and why.
EXEMPT_ENDPOINTS = {
    "static": "Flask's static folder: files only",
    "metrics": "the operator's scraper: 404 without METRICS_TOKEN, a constant-time token check otherwise",
}
LIMITED = {
    *limits.API_BLUEPRINTS,
    *limits.VERIFY_BLUEPRINTS,
    *limits.KEY_LIMITED_BLUEPRINTS,
    *limits.PUBLIC_BLUEPRINTS,
    *limits.PAGE_BLUEPRINTS,
    "guardian",
}


@pytest.fixture()
def one_a_minute(app_config: dict[str, Any]) -> None:
    app_config.update(
        {
            name: "1/minute"
            for name in (
                "RATE_LIMIT_API",
                "RATE_LIMIT_VERIFY",
                "RATE_LIMIT_PUBLIC",
                "RATE_LIMIT_GUARDIAN",
                "RATE_LIMIT_PEOPLE",
            )
        },
        RATE_LIMIT_PREFIX=f"cg-test-{uuid.uuid4().hex}",
    )


def test_every_blueprint_is_limited_or_exempt_for_a_stated_reason(app: Flask) -> None:
    for name in app.blueprints:
        assert (name in LIMITED) != (name in EXEMPT_BLUEPRINTS), f"blueprint {name!r}: limit it or exempt it here"
    assert set(limits.EXEMPT_BLUEPRINTS) <= set(EXEMPT_BLUEPRINTS), "an exemption in the service needs a reason here"
    assert all(reason for reason in (*EXEMPT_BLUEPRINTS.values(), *EXEMPT_ENDPOINTS.values()))


def _path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "x" * 43, rule)


@pytest.mark.committed  # the verification endpoint answers on its own connection
def test_every_route_answers_429_on_its_second_request_in_a_minute(
    one_a_minute: None, app: Flask, tenant: Tenant
) -> None:
    unlimited = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0] or None
        if rule.endpoint in EXEMPT_ENDPOINTS or blueprint in EXEMPT_BLUEPRINTS:
            continue
        assert blueprint is not None, f"{rule.rule}: a route outside a blueprint, neither limited nor exempt"
        scope = "verify" if blueprint in ("verifications", "consent-events") else "admin"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            answers = [
                tenant.client.open(_path(rule.rule), method=method, headers=tenant.headers(scope)) for _ in range(2)
            ]
            if answers[1].status_code != 429:
                unlimited.append(f"{method} {rule.rule}: {[a.status_code for a in answers]}")
    assert not unlimited, unlimited
