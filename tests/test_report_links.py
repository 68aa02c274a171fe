"""Signed links to the compliance report (``consent-gate report --link``, ``POST /v1/reports/compliance/links``):
they open one organization's HTML report without an API key until they expire, and nothing else opens it."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.keys.report_links import LINK_TYPE, audience, encode_report_link
from service.keys.signing import issuer, key_set
from service.keys.tokens import ALGORITHM, KeySet, canonical, generate_private_key_pem
from service.models import utcnow

if TYPE_CHECKING:
    from tests.support import Tenant


def _issue(runner: Any, org_id: str, *extra: str) -> str:
    result = runner.invoke(args=["report", "--link", "--org", org_id, *extra])
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip())


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _sign(app: Flask, claims: dict[str, Any], *, typ: str = LINK_TYPE, keys: KeySet | None = None) -> str:
    with app.app_context():
        keys = keys or key_set()
        token = jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM, headers={"typ": typ, "kid": keys.kid})
    return canonical(token)


def _claims(app: Flask, org_id: str, **overrides: Any) -> dict[str, Any]:
    with app.app_context():
        now = int(utcnow().timestamp())
        return {
            "iss": issuer(),
            "aud": audience(issuer()),
            "sub": org_id,
            "jti": "link-1",
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }


def _refused(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    page = answer.get_data(as_text=True)
    assert 'id="link-invalid"' in page and "Sunrise" not in page and "Other" not in page
    assert answer.headers["Cache-Control"] == "no-store"


def test_cli_link_opens_the_report_without_a_key_and_is_audited(
    tenant: Tenant, runner: Any, client: FlaskClient
) -> None:
    tenant.purpose()
    url = _issue(runner, tenant.org_id, "--hours", "2")
    assert url.startswith("http://consent-gate.test/report/")
    answer = client.get(_path(url))  # no Authorization header
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "合规报告：Sunrise School" in page and 'id="link-until"' in page
    # The token is in the URL: never cached, never sent on, never indexed, never framed.
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    english = client.get(_path(url) + "?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Compliance report: Sunrise School" in english
    [event] = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "report_link.issued"]
    assert event["actor"] == "cli" and event["object_type"] == "report_link"
    assert event["data"]["hours"] == 2 and event["data"]["expires_at"] > event["occurred_at"]
    assert event["object_id"] in _payload(url)["jti"]
    assert url.rsplit("/", 1)[1] not in json.dumps(event)  # the token itself is never recorded
    only = runner.invoke(args=["report", "--link"])  # one organization: --org may be left out
    assert only.exit_code == 0 and _payload(only.stdout.strip())["sub"] == tenant.org_id


def _payload(url: str) -> dict[str, Any]:
    segment = url.rsplit("/", 1)[1].split("?")[0].split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def test_cli_link_language_and_bounds(tenant: Tenant, other_tenant: Tenant, runner: Any, client: FlaskClient) -> None:
    url = _issue(runner, tenant.org_id, "--hours", "720", "--lang", "en")
    assert url.endswith("?lang=en")
    assert '<html lang="en">' in client.get(_path(url)).get_data(as_text=True)
    payload = _payload(url)
    assert payload["exp"] - payload["iat"] == 720 * 3600 and payload["sub"] == tenant.org_id
    for hours in ("0", "721", "-1", "x"):
        refused = runner.invoke(args=["report", "--link", "--org", tenant.org_id, "--hours", hours])
        assert refused.exit_code == 2 and "Traceback" not in refused.output, hours
    assert runner.invoke(args=["report", "--link", "--org", tenant.org_id, "--lang", "fr"]).exit_code == 2
    assert runner.invoke(args=["report", "--hours", "2"]).exit_code == 2  # --hours without --link
    several = runner.invoke(args=["report", "--link"])  # two organizations: which one?
    assert several.exit_code == 2 and "--org" in several.output
    missing = runner.invoke(args=["report", "--link", "--org", "nope"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_a_link_opens_only_its_own_organization(
    tenant: Tenant, other_tenant: Tenant, runner: Any, client: FlaskClient, app: Flask
) -> None:
    url = _issue(runner, other_tenant.org_id)
    page = client.get(_path(url)).get_data(as_text=True)
    assert "Other" in page and "Sunrise" not in page
    # The organization is signed: pointing the payload at another one breaks the signature.
    header, _, signature = url.rsplit("/", 1)[1].split(".")
    claims = _payload(url) | {"sub": tenant.org_id}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _refused(client, f"/report/{header}.{forged}.{signature}")


def test_expired_tampered_and_foreign_tokens_answer_the_same_404(
    tenant: Tenant, runner: Any, client: FlaskClient, app: Flask
) -> None:
    url = _issue(runner, tenant.org_id)
    token = url.rsplit("/", 1)[1]
    now = int(utcnow().timestamp())
    # Expired (an hour ago), extended (its exp rewritten), altered signature, garbage.
    _refused(client, "/report/" + _sign(app, _claims(app, tenant.org_id, iat=now - 7200, exp=now - 3600)))
    header, payload, signature = token.split(".")
    longer = _payload(url) | {"exp": _payload(url)["exp"] + 86400}
    extended = base64.urlsafe_b64encode(json.dumps(longer).encode()).rstrip(b"=").decode()
    _refused(client, f"/report/{header}.{extended}.{signature}")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    _refused(client, f"/report/{header}.{payload}.{flipped}")
    _refused(client, "/report/not-a-token")
    # Signed by a key the service does not hold; or by its own key but longer than 720 hours.
    stranger = KeySet.from_pem_blob(generate_private_key_pem())
    _refused(client, "/report/" + _sign(app, _claims(app, tenant.org_id), keys=stranger))
    _refused(client, "/report/" + _sign(app, _claims(app, tenant.org_id, exp=now + 721 * 3600)))
    # Another kind of token, or a report link with a consent token's audience.
    _refused(client, "/report/" + _sign(app, _claims(app, tenant.org_id), typ="consent+jwt"))
    _refused(client, "/report/" + _sign(app, _claims(app, tenant.org_id, aud=tenant.org_id)))
    _refused(client, "/report/" + _sign(app, _claims(app, tenant.org_id, aud=[audience("x"), tenant.org_id])))
    with app.app_context(), pytest.raises(ValueError):
        encode_report_link(
            key_set(),
            issuer=issuer(),
            org_id=tenant.org_id,
            link_id="x",
            issued_at=utcnow(),
            expires_at=utcnow() + timedelta(hours=721),
        )


@pytest.mark.committed
def test_a_consent_token_is_no_report_link_and_a_report_link_no_consent_token(
    tenant: Tenant, runner: Any, client: FlaskClient
) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    _refused(client, f"/report/{consent['token']}")
    link_token = _issue(runner, tenant.org_id).rsplit("/", 1)[1]
    denied = tenant.verify("door_access", token=link_token).json
    assert (denied["decision"], denied["reason"]) == ("deny", "invalid_token")


def test_admin_api_issues_a_link(tenant: Tenant, client: FlaskClient) -> None:
    issued = tenant.post("/v1/reports/compliance/links", {"hours": 24, "lang": "en"})
    assert issued.status_code == 201, issued.json
    assert set(issued.json) == {"url", "expires_at"} and issued.json["url"].endswith("?lang=en")
    assert client.get(_path(issued.json["url"])).status_code == 200
    [event] = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "report_link.issued"]
    assert event["actor"].startswith("api_key:") and event["data"]["expires_at"][:19] == issued.json["expires_at"][:19]
    for body in ({"hours": 0}, {"hours": 721}, {}, {"hours": 2, "lang": "fr"}, {"hours": 2, "org_id": "x"}):
        assert tenant.post("/v1/reports/compliance/links", body).status_code == 422, body
    assert tenant.post("/v1/reports/compliance/links", {"hours": 2}, scope="consents").status_code == 403


def test_report_page_with_a_key_speaks_both_languages(tenant: Tenant) -> None:
    tenant.purpose()
    chinese = tenant.get("/v1/reports/compliance.html").get_data(as_text=True)
    assert '<html lang="zh-CN">' in chinese and "向网信部门备案" in chinese and "无需备案" in chinese
    english = tenant.get("/v1/reports/compliance.html?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Filing with the cyberspace office" in english
    assert "not required" in english
    assert tenant.get("/v1/reports/compliance.html?lang=fr").status_code == 422
