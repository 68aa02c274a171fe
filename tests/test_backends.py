"""Recognition backends at scale: batch verification, status lists, the change feed, key rotation."""

from __future__ import annotations

import base64
import functools
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import jwt
import pytest
from flask import Flask
from sqlalchemy import func, select

from service import db
from service.models import Verification

if TYPE_CHECKING:
    from tests.support import ForceExpiry, Race, Tenant


def _people(tenant: Tenant, count: int) -> list[dict[str, Any]]:
    tenant.purpose("door_access")
    people = []
    for _ in range(count):
        person = tenant.subject()
        people.append({"subject": person, "consent": tenant.consent(person["id"]).json})
    return people


def _batch(tenant: Tenant, items: list[dict[str, Any]]) -> Any:
    return tenant.post("/v1/verifications/batch", {"items": items}, scope="verify")


@pytest.mark.committed
def test_batch_answers_each_item_in_order_and_records_each(tenant: Tenant, app: Flask) -> None:
    people = _people(tenant, 3)
    tenant.post(f"/v1/consents/{people[1]['consent']['id']}/revoke", scope="consents")
    items = [
        {"purpose": "door_access", "token": people[0]["consent"]["token"]},
        {"purpose": "door_access", "token": people[1]["consent"]["token"]},
        {"purpose": "door_access", "token": "garbage"},
        {"purpose": "door_access", "subject_id": people[2]["subject"]["id"]},
        {"purpose": "nope", "subject_id": people[2]["subject"]["id"]},
        {"purpose": "other", "token": people[0]["consent"]["token"]},
        {"purpose": "door_access", "subject_id": people[0]["subject"]["id"]},
    ]
    response = _batch(tenant, items)
    assert response.status_code == 200
    results = response.json["results"]
    assert [(r["decision"], r["reason"]) for r in results] == [
        ("allow", "consent_active"),
        ("deny", "revoked"),
        ("deny", "invalid_token"),
        ("allow", "consent_active"),
        ("deny", "unknown_purpose"),
        ("deny", "purpose_mismatch"),
        ("allow", "consent_active"),
    ]
    # The same answers as single verification, one by one.
    for item, result in zip(items, results, strict=True):
        single = tenant.post("/v1/verifications", item, scope="verify").json
        assert (single["decision"], single["reason"]) == (result["decision"], result["reason"])
    with app.app_context():
        recorded = {v.id: v.reason for v in db.session().scalars(select(Verification))}
    assert [recorded[r["verification_id"]] for r in results] == [r["reason"] for r in results]


@pytest.mark.committed
def test_batch_limits(tenant: Tenant, app: Flask) -> None:
    people = _people(tenant, 1)
    token = people[0]["consent"]["token"]
    full = _batch(tenant, [{"purpose": "door_access", "token": token}] * 1000)
    assert full.status_code == 200 and len(full.json["results"]) == 1000
    assert {r["decision"] for r in full.json["results"]} == {"allow"}
    too_many = _batch(tenant, [{"purpose": "door_access", "token": token}] * 1001)
    assert too_many.status_code == 422 and too_many.json["code"] == "validation_error"
    assert _batch(tenant, []).status_code == 422
    bad_item = _batch(tenant, [{"purpose": "door_access"}])
    assert bad_item.status_code == 422
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Verification)) == 1000
    assert tenant.post("/v1/verifications/batch", {"items": []}, scope="consents").status_code == 403


def _decode_list(client: Any, uri: str) -> tuple[dict[str, Any], bytes]:
    response = client.get(urlparse(uri).path)
    assert response.status_code == 200 and response.mimetype == "application/statuslist+jwt"
    token = response.get_data(as_text=True)
    assert jwt.get_unverified_header(token)["typ"] == "statuslist+jwt"
    claims = jwt.decode(token, options={"verify_signature": False})
    lst = claims["status_list"]["lst"]
    # Decoded independently of the service's own helpers: base64url, then zlib.
    raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    return claims, raw


def _bit(raw: bytes, index: int) -> int:
    return (raw[index // 8] >> (index % 8)) & 1


def test_status_list_bits_follow_revocation_expiry_and_erasure(
    tenant: Tenant, app: Flask, force_expiry: ForceExpiry
) -> None:
    people = _people(tenant, 4)
    entries = []
    for person in people:
        claims = jwt.decode(person["consent"]["token"], options={"verify_signature": False})
        entries.append(claims["status"]["status_list"])
    assert len({e["uri"] for e in entries}) == 1
    assert len({e["idx"] for e in entries}) == 4
    uri = entries[0]["uri"]
    assert uri.startswith("http://consent-gate.test/v1/status-lists/")
    claims, raw = _decode_list(tenant.client, uri)
    assert claims["sub"] == uri and claims["ttl"] == 60 and claims["status_list"]["bits"] == 1
    assert claims["exp"] > claims["iat"]
    assert len(raw) * 8 >= 65536
    assert [_bit(raw, e["idx"]) for e in entries] == [0, 0, 0, 0]

    tenant.post(f"/v1/consents/{people[0]['consent']['id']}/revoke", scope="consents")
    tenant.delete(f"/v1/subjects/{people[1]['subject']['id']}")
    force_expiry(people[2]["consent"]["id"])
    _, raw = _decode_list(tenant.client, uri)
    assert [_bit(raw, e["idx"]) for e in entries] == [1, 1, 1, 0]
    # Every other bit stays 0.
    assert sum(bin(byte).count("1") for byte in raw) == 3
    assert tenant.client.get("/v1/status-lists/00000000-0000-0000-0000-000000000000").status_code == 404


def test_status_list_is_signed_with_the_token_key(tenant: Tenant) -> None:
    person = _people(tenant, 1)[0]
    uri = jwt.decode(person["consent"]["token"], options={"verify_signature": False})["status"]["status_list"]["uri"]
    token = tenant.client.get(urlparse(uri).path).get_data(as_text=True)
    jwks = tenant.client.get("/.well-known/jwks.json").json["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks if k["kid"] == kid)).key
    assert jwt.decode(token, key, algorithms=["ES256"])["sub"] == uri


def test_status_indexes_never_collide_under_concurrent_grants(app: Flask, tenant: Tenant, race: Race) -> None:
    tenant.purpose("door_access")
    subjects = [tenant.subject()["id"] for _ in range(12)]

    def grant(chunk: list[str]) -> list[Any]:
        local = app.test_client()
        answers = []
        for subject_id in chunk:
            response = local.post(
                "/v1/consents",
                json={
                    "subject_id": subject_id,
                    "purpose": "door_access",
                    "notice_version": 1,
                    "evidence": {"method": "checkbox", "channel": "web", "locale": "en"},
                },
                headers=tenant.headers("consents"),
            )
            answers.append((response.status_code, response.json))
        return answers

    [results] = race(*(functools.partial(grant, subjects[i::4]) for i in range(4)))
    answers = []
    for result in results:
        assert isinstance(result, list), result  # not an exception
        answers.extend(result)
    errors = [body for status, body in answers if status != 201]
    assert errors == []
    tokens = [body["token"] for _, body in answers]
    entries = [jwt.decode(t, options={"verify_signature": False})["status"]["status_list"] for t in tokens]
    assert len({(e["uri"], e["idx"]) for e in entries}) == 12


def test_change_feed_is_ordered_and_resumable(tenant: Tenant) -> None:
    people = _people(tenant, 2)
    tenant.post(f"/v1/consents/{people[0]['consent']['id']}/revoke", scope="consents")
    tenant.delete(f"/v1/subjects/{people[1]['subject']['id']}")
    feed = tenant.get("/v1/consent-events?after=0&limit=1000", scope="verify").json
    events = feed["events"]
    assert [e["type"] for e in events] == ["granted", "granted", "revoked", "revoked", "erased"]
    assert [e["cursor"] for e in events] == sorted(e["cursor"] for e in events)
    assert events[2]["consent_id"] == people[0]["consent"]["id"]
    assert events[2]["subject_id"] == people[0]["subject"]["id"] and events[2]["purpose"] == "door_access"
    assert events[4]["subject_id"] == people[1]["subject"]["id"] and events[4]["consent_id"] is None
    # Resume after the second event: exactly the rest.
    rest = tenant.get(f"/v1/consent-events?after={events[1]['cursor']}&limit=2", scope="admin").json
    assert [e["cursor"] for e in rest["events"]] == [events[2]["cursor"], events[3]["cursor"]]
    tail = tenant.get(f"/v1/consent-events?after={rest['next_after']}", scope="verify").json
    assert [e["type"] for e in tail["events"]] == ["erased"]
    empty = tenant.get(f"/v1/consent-events?after={tail['next_after']}", scope="verify").json
    assert empty == {"events": [], "next_after": tail["next_after"]}
    assert tenant.get("/v1/consent-events", scope="consents").status_code == 403


def test_change_feed_reports_reconsent(tenant: Tenant) -> None:
    people = _people(tenant, 1)
    tenant.post("/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新版告知", "en": "changed"}, "material": True})
    events = tenant.get("/v1/consent-events", scope="verify").json["events"]
    assert events[-1]["type"] == "reconsent_required"
    assert events[-1]["subject_id"] == people[0]["subject"]["id"]


@pytest.mark.committed
def test_key_rotation_keeps_old_tokens_valid(own_signing_key: None, tenant: Tenant, runner: Any, app: Flask) -> None:
    people = _people(tenant, 1)
    old_token = people[0]["consent"]["token"]
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    result = runner.invoke(args=["keys", "rotate-signing"])
    assert result.exit_code == 0, result.output
    jwks = {k["kid"] for k in tenant.client.get("/.well-known/jwks.json").json["keys"]}
    assert old_kid in jwks and len(jwks) >= 2
    person = tenant.subject()
    new_token = tenant.consent(person["id"]).json["token"]
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid and new_kid in jwks
    assert tenant.verify("door_access", token=old_token).json["decision"] == "allow"
    assert tenant.verify("door_access", token=new_token).json["decision"] == "allow"


@pytest.fixture()
def own_signing_key(app_config: dict[str, Any], tmp_path: Any) -> None:
    # Rotation rewrites the key file: give this test its own, so the other tests' key stays put.
    app_config["SIGNING_KEY_FILE"] = str(tmp_path / "signing-key.pem")


def test_rotation_is_picked_up_by_running_instances(own_signing_key: None, app: Flask, monkeypatch: Any) -> None:
    from service.keys import signing

    ring = app.extensions["consent_gate.keyring"]
    before = ring.current().kid
    signing.rotate_key_file(app.config["SIGNING_KEY_FILE"])
    assert ring.current().kid == before  # within the reload interval nothing changes ...
    monkeypatch.setattr(signing, "RELOAD_SECONDS", 0.0)
    after = ring.current()
    assert after.kid != before and before in after.public_keys  # ... then the new key signs, the old verifies
