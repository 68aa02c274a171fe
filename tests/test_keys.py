"""An organization's own API keys (issue 14): listed without secrets, created, revoked, audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from service import create_app

if TYPE_CHECKING:
    from tests.support import Tenant


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _actions(tenant: Tenant) -> list[str]:
    return [e["action"] for e in tenant.get("/v1/audit/events").json["events"] if e["action"].startswith("api_key.")]


def test_keys_are_created_listed_without_secret_and_revoked(tenant: Tenant) -> None:
    created = tenant.post("/v1/keys", {"name": "gate terminals", "scopes": ["verify", "consents"]})
    assert created.status_code == 201, created.json
    assert set(created.json) == {"id", "key", "name", "scopes"} and created.json["scopes"] == ["consents", "verify"]
    secret = created.json["key"]
    assert tenant.client.get("/v1/subjects", headers=_bearer(secret)).status_code == 200
    listed = tenant.get("/v1/keys")
    assert listed.status_code == 200 and listed.json["next_cursor"] is None
    mine = next(k for k in listed.json["items"] if k["id"] == created.json["id"])
    assert set(mine) == {"id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at", "created_by"}
    assert mine["name"] == "gate terminals" and mine["revoked_at"] is None
    assert secret not in listed.get_data(as_text=True) and secret[:10] == mine["prefix"]
    assert len(listed.json["items"]) == 4  # the three of the fixture, and this one

    assert tenant.delete(f"/v1/keys/{created.json['id']}", scope="admin").status_code == 204
    assert tenant.client.get("/v1/subjects", headers=_bearer(secret)).status_code == 401
    assert tenant.delete(f"/v1/keys/{created.json['id']}", scope="admin").status_code == 204  # again: nothing new
    revoked = next(k for k in tenant.get("/v1/keys").json["items"] if k["id"] == created.json["id"])
    assert revoked["revoked_at"] is not None
    assert _actions(tenant).count("api_key.revoked") == 1 and "api_key.created" in _actions(tenant)


def test_keys_need_admin_and_valid_input_and_change_nothing_when_refused(tenant: Tenant) -> None:
    assert tenant.get("/v1/keys", scope="consents").status_code == 403
    assert tenant.post("/v1/keys", {"name": "x", "scopes": ["verify"]}, scope="verify").status_code == 403
    for body in (
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": "x"},
        {"scopes": ["verify"]},
        {"name": "   ", "scopes": ["verify"]},
        {"name": "x" * 101, "scopes": ["verify"]},
        {"name": "x", "scopes": ["verify"], "key_hash": "0" * 64},
        {"name": "a\x00b", "scopes": ["verify"]},
    ):
        refused = tenant.post("/v1/keys", body)
        assert refused.status_code == 422, (body, refused.status_code)
        assert refused.json["code"] in {"validation_error", "invalid_name"}
    assert len(tenant.get("/v1/keys").json["items"]) == 3
    assert tenant.delete("/v1/keys/" + "x" * 300, scope="admin").status_code == 404


def test_admin_may_create_an_admin_key_and_a_key_may_revoke_itself(tenant: Tenant) -> None:
    made = tenant.post("/v1/keys", {"name": "second admin", "scopes": ["admin"]}).json
    headers = _bearer(made["key"])
    assert tenant.client.delete(f"/v1/keys/{made['id']}", headers=headers).status_code == 204  # the leak case
    assert tenant.client.get("/v1/keys", headers=headers).status_code == 401


def test_another_organizations_key_answers_404_and_stays_valid(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = other_tenant.post("/v1/keys", {"name": "theirs", "scopes": ["consents"]}).json
    assert tenant.delete(f"/v1/keys/{theirs['id']}", scope="admin").status_code == 404
    assert tenant.delete(f"/v1/keys/{theirs['id']}", scope="admin").json["code"] == "not_found"
    assert theirs["id"] not in tenant.get("/v1/keys").get_data(as_text=True)
    assert other_tenant.client.get("/v1/subjects", headers=_bearer(theirs["key"])).status_code == 200
    assert all(k["revoked_at"] is None for k in other_tenant.get("/v1/keys").json["items"])


def test_last_used_at_is_written_after_use_at_most_once_a_minute(tenant: Tenant) -> None:
    made = tenant.post("/v1/keys", {"name": "reader", "scopes": ["consents"]}).json

    def last_used() -> Any:
        return next(k for k in tenant.get("/v1/keys").json["items"] if k["id"] == made["id"])["last_used_at"]

    assert last_used() is None
    assert tenant.client.get("/v1/subjects", headers=_bearer(made["key"])).status_code == 200
    first = last_used()
    assert first is not None
    assert tenant.client.get("/v1/subjects", headers=_bearer(made["key"])).status_code == 200
    assert last_used() == first  # within the minute: not written again


@pytest.mark.committed
def test_a_key_revoked_through_the_api_stops_at_once_here_and_within_the_cache_bound_elsewhere(
    app_config: dict[str, Any], tenant: Tenant
) -> None:
    """This process drops the key from its cache at once, whatever ``API_KEY_CACHE_SECONDS``; another
    process stops within its own cache bound (0 here: at once)."""
    here = create_app({**app_config, "API_KEY_CACHE_SECONDS": 300})
    elsewhere = create_app({**app_config, "API_KEY_CACHE_SECONDS": 0})
    try:
        made = tenant.post("/v1/keys", {"name": "terminal", "scopes": ["admin", "verify"]}).json
        headers = _bearer(made["key"])
        ours, theirs = here.test_client(), elsewhere.test_client()
        assert ours.get("/v1/keys", headers=headers).status_code == 200  # now cached for 300 s here
        assert ours.post("/v1/verifications", json={"purpose": "x", "token": "y"}, headers=headers).status_code == 200
        assert theirs.get("/v1/keys", headers=headers).status_code == 200
        assert ours.delete(f"/v1/keys/{made['id']}", headers=headers).status_code == 204
        assert ours.get("/v1/keys", headers=headers).status_code == 401
        assert ours.post("/v1/verifications", json={"purpose": "x", "token": "y"}, headers=headers).status_code == 401
        assert theirs.get("/v1/keys", headers=headers).status_code == 401
        assert theirs.post("/v1/verifications", json={"purpose": "x", "token": "y"}, headers=headers).status_code == 401
    finally:
        for one in (here, elsewhere):
            one.extensions["consent_gate.engine"].dispose()


@pytest.mark.committed
def test_the_verify_path_records_last_used_at(app: Flask, tenant: Tenant) -> None:
    answered = tenant.verify("door_access", token="not-a-token")
    assert answered.status_code == 200
    answered.close()  # as a server does once the body is sent: the use is recorded then, off the answer's path
    listed = tenant.get("/v1/keys").json["items"]
    verify_key = next(k for k in listed if k["scopes"] == ["verify"])
    assert verify_key["last_used_at"] is not None


def test_cli_lists_orgs_and_keys_and_revokes(runner: Any, tenant: Tenant) -> None:
    import json

    orgs = json.loads(runner.invoke(args=["orgs", "list", "--json"]).output)
    assert tenant.org_id in [o["id"] for o in orgs]
    listed = runner.invoke(args=["keys", "list", tenant.org_id, "--json"])
    assert listed.exit_code == 0, listed.output
    keys = json.loads(listed.output)
    assert len(keys) == 3 and all("key" not in k and "key_hash" not in k for k in keys)
    assert not any(secret in listed.output for secret in tenant.keys.values())
    consents_key = next(k for k in keys if k["scopes"] == ["consents"])
    revoked = runner.invoke(args=["keys", "revoke", consents_key["id"]])
    assert revoked.exit_code == 0, revoked.output
    assert tenant.get("/v1/subjects", scope="consents").status_code == 401
    assert runner.invoke(args=["keys", "revoke", consents_key["id"]]).exit_code == 0  # again: nothing changes
    unknown = runner.invoke(args=["keys", "revoke", "no-such-key"])
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output
    assert runner.invoke(args=["keys", "list", "no-such-org"]).exit_code != 0
