"""Link tokens in URLs (``/report/<token>``, ``/g/<token>``, ``/p/<token>``) never reach the logs; a report
link has one spelling: any other (padded, another alphabet, stray bits, the high-S twin of its signature)
answers the invalid link's 404 page, never an error; and an organization can revoke its report links."""

from __future__ import annotations

import base64
import logging
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from service import db
from service.domain.report_links import issue_report_link, revoke_report_links
from service.errors import Conflict
from service.keys.crypto import token_hash
from service.keys.report_links import encode_report_link
from service.keys.signing import issuer, key_set
from service.keys.tokens import P256_ORDER, b64url
from service.models import AccessLink, GuardianLink, GuardianRequest, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

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


# --- Texted links fit a mainland SMS template's variable ---------------------------------------------------


def _token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def _bits(token: str) -> int:
    assert set(token) <= set(ALPHABET), token
    return len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8


def test_texted_links_carry_128_bits_in_22_characters_and_older_longer_ones_still_open(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask, client: FlaskClient
) -> None:
    """DESIGN asks ≥ 128 bits; a template variable holds 35 characters at most (Alibaba Cloud)."""
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    decision = _token_of(guardian.url_from(outbox()[-1]))
    assert (len(decision), _bits(decision)) == (22, 128)
    parent = guardian.browser(guardian.url_from(outbox()[-1]))
    receipt = parent.submit(action="approve", attest_guardian="yes", purpose="door_access")
    withdrawal = _token_of(guardian.url_from(outbox()[-1]))
    assert (len(withdrawal), _bits(withdrawal)) == (22, 128)
    # The receipt is never texted: it keeps 256 bits.
    receipt_token = receipt.request.path.rsplit("/", 1)[1]
    assert (len(receipt_token), _bits(receipt_token)) == (43, 256)
    adult = tenant.subject()
    page = _token_of(tenant.post(f"/v1/subjects/{adult['id']}/access-link", scope="consents").json["url"])
    assert (len(page), _bits(page)) == (22, 128)

    # Links issued before, with 43 characters, are found by their hash as ever.
    old_decision, old_page = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    second = tenant.guardian_request(tenant.subject(age_years=8)["id"], ["door_access"], phone="+8613912345678").json
    with app.app_context():
        session = db.session()
        request_row = session.get(GuardianRequest, second["id"])
        assert request_row is not None
        session.add(
            GuardianLink(
                request_id=request_row.id,
                kind="decision",
                token_hash=token_hash(old_decision),
                expires_at=request_row.expires_at,
            )
        )
        session.add(
            AccessLink(
                org_id=tenant.org_id,
                subject_id=adult["id"],
                token_hash=token_hash(old_page),
                holder="person",
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        session.commit()
    assert len(old_decision) == 43
    assert 'value="approve"' in client.get(f"/g/{old_decision}").get_data(as_text=True)
    assert client.get(f"/p/{old_page}").status_code == 200
    assert created["id"] != second["id"]


# --- Report links are revoked all at once (S2) -----------------------------------------------------------


def _events(tenant: Tenant, action: str) -> list[dict[str, Any]]:
    return [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == action]


def test_revoking_report_links_stops_every_link_issued_so_far(
    tenant: Tenant, other_tenant: Tenant, app: Flask, client: FlaskClient
) -> None:
    issued = tenant.post("/v1/reports/compliance/links", {"hours": 24}).json["url"]
    path = "/report/" + issued.rsplit("/", 1)[1]
    theirs = "/report/" + _link_token(app, other_tenant.org_id)
    assert client.get(path).status_code == 200 and client.get(theirs).status_code == 200
    assert tenant.delete("/v1/reports/compliance/links", scope="admin").status_code == 204
    _invalid_page(client, path)
    assert client.get(theirs).status_code == 200  # another organization's links are theirs to revoke
    [event] = _events(tenant, "report_links.revoked")
    assert event["actor"].startswith("api_key:") and event["object_id"] == tenant.org_id


def _signed_at(app: Flask, org_id: str, issued_at: datetime) -> str:
    with app.app_context():
        return encode_report_link(
            key_set(),
            issuer=issuer(),
            org_id=org_id,
            link_id=f"link-{issued_at.timestamp()}",
            issued_at=issued_at,
            expires_at=issued_at + timedelta(hours=2),
        )


def test_links_up_to_the_second_of_the_revocation_stop_and_later_ones_open(
    tenant: Tenant, app: Flask, client: FlaskClient, db_session: Session
) -> None:
    """The revocation is placed ten seconds in the past, rather than waiting for the clock to move on."""
    now = utcnow().replace(microsecond=0)
    revoked_at = now - timedelta(seconds=10)
    revoke_report_links(db_session, org_id=tenant.org_id, actor="cli", now=revoked_at + timedelta(milliseconds=300))
    db_session.flush()
    for issued_at in (revoked_at - timedelta(seconds=1), revoked_at):
        _invalid_page(client, "/report/" + _signed_at(app, tenant.org_id, issued_at))
    later = "/report/" + _signed_at(app, tenant.org_id, revoked_at + timedelta(seconds=1))
    assert client.get(later).status_code == 200
    assert client.get("/report/" + _link_token(app, tenant.org_id)).status_code == 200
    # A revocation stamped earlier (an instance whose clock is behind) brings no link back to life.
    revoke_report_links(db_session, org_id=tenant.org_id, actor="cli", now=revoked_at - timedelta(seconds=60))
    db_session.flush()
    _invalid_page(client, "/report/" + _signed_at(app, tenant.org_id, revoked_at))
    assert client.get(later).status_code == 200


def test_a_link_asked_for_in_the_second_of_a_revocation_is_refused_not_dead(
    tenant: Tenant, app: Flask, db_session: Session
) -> None:
    now = utcnow().replace(microsecond=0)
    revoke_report_links(db_session, org_id=tenant.org_id, actor="cli", now=now + timedelta(milliseconds=500))
    with app.app_context(), pytest.raises(Conflict):
        issue_report_link(
            db_session,
            org_id=tenant.org_id,
            actor="cli",
            hours=1,
            keys=key_set(),
            issuer=issuer(),
            public_url="http://consent-gate.test",
            now=now + timedelta(milliseconds=900),
        )


def test_only_an_admin_key_revokes_report_links(tenant: Tenant, client: FlaskClient) -> None:
    url = tenant.post("/v1/reports/compliance/links", {"hours": 2}).json["url"]
    for scope in ("consents", "verify"):
        refused = tenant.delete("/v1/reports/compliance/links", scope=scope)
        assert refused.status_code == 403, scope
    assert client.delete("/v1/reports/compliance/links").status_code == 401
    assert client.get("/report/" + url.rsplit("/", 1)[1]).status_code == 200
    assert not _events(tenant, "report_links.revoked")
