"""API keys under attack (the security review of issue 14): a revoked key cannot come back through the cache,
an organization's active keys are capped, names cannot drive a terminal, only admin keys revoke, two
revocations at once record one, and each key says which key created it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain.api_keys import MAX_ACTIVE_KEYS, new_api_key
from service.domain.organizations import find_active_key, hash_api_key
from service.keys.api_keys import Caller, KeyCache
from service.models import ApiKey, AuditEvent

if TYPE_CHECKING:
    from tests.support import Race, Tenant


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- S1: a revoked key cannot be put back into this process's cache --------------------------------------


def test_a_key_read_before_its_revocation_is_not_cached_after_it(db_session: Session, tenant: Tenant) -> None:
    """The racy order: a request reads the key as active; the revocation commits and forgets it; the request
    then remembers what it read. It goes on (it began first), but the key is not cached: the next request
    reads the database and is refused."""
    clock = Clock()
    cache = KeyCache(300, clock=clock)
    secret = tenant.keys["consents"]
    read_at = clock()
    api_key = find_active_key(db_session, secret)  # the in-flight request's read: active
    assert api_key is not None
    caller = Caller(api_key.id, api_key.org_id, api_key.scope_set)
    api_key.revoked_at = func.now()  # the revocation commits...
    db_session.flush()
    clock.now += 0.01
    cache.forget_key(api_key.id)  # ...and forgets the key here
    clock.now += 0.01
    assert cache.remember(secret, caller, read_at=read_at) == caller  # the in-flight request goes on
    assert cache.peek(secret) is None
    assert cache.lookup(secret) is None  # the next request reads the database
    clock.now += 301  # long after: still never cached (the key is revoked in the database)
    assert cache.lookup(secret) is None and cache.peek(secret) is None


def test_cache_entries_live_the_bound_from_their_read_and_revocations_drop_them() -> None:
    clock = Clock()
    cache = KeyCache(5, clock=clock)
    caller = Caller("key-1", "org-1", frozenset({"verify"}))
    # Remembered, then revoked: dropped at once.
    cache.remember("cg_one", caller, read_at=clock())
    assert cache.peek("cg_one") == caller
    cache.forget_key("key-1")
    assert cache.peek("cg_one") is None
    # A slow read: an entry lives 5 s from the read, not from when it is remembered.
    other = Caller("key-2", "org-1", frozenset({"verify"}))
    read_at = clock()
    clock.now += 4
    cache.remember("cg_two", other, read_at=read_at)
    assert cache.peek("cg_two") == other
    clock.now += 1
    assert cache.peek("cg_two") is None
    read_at = clock()
    clock.now += 6  # read more than the bound ago: not cached at all
    assert cache.remember("cg_two", other, read_at=read_at) == other and cache.peek("cg_two") is None
    # Unknown or revoked keys found in the database are forgotten.
    cache.remember("cg_two", other, read_at=clock())
    cache.remember("cg_two", None, read_at=clock())
    assert cache.peek("cg_two") is None


@pytest.fixture()
def keys_cached_300s(app_config: dict[str, Any]) -> None:
    """Keys cached for 300 s by the app under test (ask for it before ``app``)."""
    app_config["API_KEY_CACHE_SECONDS"] = 300


@pytest.mark.committed
def test_revoking_a_key_while_a_request_reads_it_leaves_no_cached_key(
    keys_cached_300s: None, app: Flask, tenant: Tenant
) -> None:
    """Through the API, on an instance that caches keys for 300 s: the request that read the key before the
    DELETE committed remembers it after; the key still answers 401 from then on."""
    from service import db
    from service.keys.api_keys import key_cache

    made = tenant.post("/v1/keys", {"name": "terminal", "scopes": ["consents"]}).json
    with app.test_request_context():
        cache = key_cache()
        assert cache.ttl == 300
        read_at = cache.clock()
        row = find_active_key(db.session(), made["key"])  # the in-flight request's read: active
        assert row is not None
        caller = Caller(row.id, row.org_id, row.scope_set)
        db.session().rollback()
    assert tenant.delete(f"/v1/keys/{made['id']}", scope="admin").status_code == 204
    with app.app_context():
        key_cache().remember(made["key"], caller, read_at=read_at)  # the in-flight request, after the DELETE
    assert tenant.client.get("/v1/subjects", headers=_bearer(made["key"])).status_code == 401


# --- M2: at most MAX_ACTIVE_KEYS active keys per organization ---------------------------------------------


def _fill_keys(session: Session, org_id: str, up_to: int) -> None:
    active = session.scalar(select(func.count()).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None)))
    for number in range(up_to - (active or 0)):
        new_api_key(session, org_id=org_id, actor="cli", name=f"terminal {number}", scopes=["verify"], created_by=None)
    session.flush()


def test_an_organization_holds_at_most_max_active_keys(
    db_session: Session, tenant: Tenant, other_tenant: Tenant, runner: Any
) -> None:
    _fill_keys(db_session, tenant.org_id, MAX_ACTIVE_KEYS)
    refused = tenant.post("/v1/keys", {"name": "one too many", "scopes": ["verify"]})
    assert refused.status_code == 422 and refused.json["code"] == "too_many_keys", refused.json
    cli = runner.invoke(args=["keys", "create", tenant.org_id, "--scopes", "verify", "--name", "cli too"])
    assert cli.exit_code == 1 and "at most" in cli.output and "Traceback" not in cli.output
    assert (
        db_session.scalar(select(func.count()).where(ApiKey.org_id == tenant.org_id, ApiKey.revoked_at.is_(None)))
        == MAX_ACTIVE_KEYS
    )
    # Another organization is not held back; a revoked key frees a place.
    assert other_tenant.post("/v1/keys", {"name": "theirs", "scopes": ["verify"]}).status_code == 201
    victim = db_session.scalars(select(ApiKey).where(ApiKey.org_id == tenant.org_id, ApiKey.name == "terminal 0"))
    assert tenant.delete(f"/v1/keys/{victim.one().id}", scope="admin").status_code == 204
    assert tenant.post("/v1/keys", {"name": "in its place", "scopes": ["verify"]}).status_code == 201


@pytest.mark.committed
def test_two_creations_at_once_cannot_both_take_the_last_place(
    app: Flask, db_session: Session, tenant: Tenant, race: Race
) -> None:
    _fill_keys(db_session, tenant.org_id, MAX_ACTIVE_KEYS - 1)
    db_session.commit()

    def create(name: str) -> Any:
        return lambda: tenant.post("/v1/keys", {"name": name, "scopes": ["verify"]}).status_code

    [statuses] = race(create("first"), create("second"))
    assert sorted(statuses) == [201, 422], statuses  # type: ignore[type-var]
    active = db_session.scalar(select(func.count()).where(ApiKey.org_id == tenant.org_id, ApiKey.revoked_at.is_(None)))
    assert active == MAX_ACTIVE_KEYS


# --- S5: one validation of names, for the API and the command line; names escaped on a terminal -----------

HOSTILE_NAMES = (
    "",
    "   ",
    "x" * 101,
    "red\x1b[31m",  # a terminal escape
    "title\x1b]0;owned\x07",
    "bell\x07",
    "del\x7f",
    "line\u2028break",
    "rtl\u202egnp.exe",  # a bidirectional override
    "zero\u200bwidth",
    "bom\ufeff",
)


def test_hostile_key_names_are_refused_by_the_api(tenant: Tenant) -> None:
    for name in HOSTILE_NAMES:
        refused = tenant.post("/v1/keys", {"name": name, "scopes": ["verify"]})
        assert refused.status_code == 422, repr(name)
        assert refused.json["code"] in {"invalid_name", "validation_error"}, repr(name)
    assert len(tenant.get("/v1/keys").json["items"]) == 3
    kept = tenant.post("/v1/keys", {"name": "  校门 闸机 A — 东门 ✓  ", "scopes": ["verify"]})
    assert kept.status_code == 201 and kept.json["name"] == "校门 闸机 A — 东门 ✓"


def test_hostile_key_names_are_refused_by_the_command_line(runner: Any, tenant: Tenant, db_session: Session) -> None:
    for name in HOSTILE_NAMES:
        result = runner.invoke(args=["keys", "create", tenant.org_id, "--scopes", "verify", "--name", name])
        assert result.exit_code == 1 and "Traceback" not in result.output, (repr(name), result.output)
        assert "name" in result.output
    assert db_session.scalar(select(func.count()).where(ApiKey.org_id == tenant.org_id)) == 3
    made = runner.invoke(args=["keys", "create", tenant.org_id, "--scopes", "verify", "--name", " 东门 ", "--json"])
    assert made.exit_code == 0, made.output
    assert db_session.get(ApiKey, json.loads(made.output)["id"]).name == "东门"  # type: ignore[union-attr]
    unnamed = runner.invoke(args=["keys", "create", tenant.org_id, "--scopes", "verify"])
    assert unnamed.exit_code == 0  # the command line may still leave the name out


def test_keys_list_escapes_names_stored_before_they_were_checked(
    runner: Any, tenant: Tenant, db_session: Session
) -> None:
    hostile = "gate\x1b]0;owned\x07\x1b[2J\u202eexe.txt"
    db_session.add(
        ApiKey(org_id=tenant.org_id, key_hash=hash_api_key("cg_old"), prefix="cg_old", scopes="verify", name=hostile)
    )
    db_session.flush()
    listed = runner.invoke(args=["keys", "list", tenant.org_id])
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\x07" not in listed.output and "\u202e" not in listed.output
    assert "gate\\u001b]0;owned\\u0007\\u001b[2J\\u202eexe.txt" in listed.output
    as_json = runner.invoke(args=["keys", "list", tenant.org_id, "--json"])
    assert hostile in [row["name"] for row in json.loads(as_json.output)]  # JSON carries it, escaped by JSON


# --- S3: which key created a key ----------------------------------------------------------------------


def test_each_key_says_which_key_created_it(tenant: Tenant, runner: Any) -> None:
    made = tenant.post("/v1/keys", {"name": "made by admin", "scopes": ["verify"]}).json
    admin_id = next(k["id"] for k in tenant.get("/v1/keys").json["items"] if k["scopes"] == ["admin"])
    by_id = {k["id"]: k for k in tenant.get("/v1/keys").json["items"]}
    assert by_id[made["id"]]["created_by"] == admin_id
    assert by_id[admin_id]["created_by"] == "cli"  # the fixture's keys were made as on the command line
    grandchild = tenant.client.post(
        "/v1/keys", json={"name": "second generation", "scopes": ["verify"]}, headers=_bearer(made["key"])
    )
    assert grandchild.status_code == 403  # a verify key creates nothing
    listed = json.loads(runner.invoke(args=["keys", "list", tenant.org_id, "--json"]).output)
    assert {row["id"]: row["created_by"] for row in listed}[made["id"]] == admin_id
    text = runner.invoke(args=["keys", "list", tenant.org_id]).output
    assert f"by {admin_id}  made by admin" in text and "by cli" in text


# --- Revocation: admin keys only, and once ----------------------------------------------------------------


def test_only_an_admin_key_revokes_a_key(tenant: Tenant) -> None:
    made = tenant.post("/v1/keys", {"name": "target", "scopes": ["consents"]}).json
    for scope in ("consents", "verify"):
        refused = tenant.delete(f"/v1/keys/{made['id']}", scope=scope)
        assert refused.status_code == 403 and refused.json["code"] == "forbidden", scope
    own = tenant.keys["consents"]
    own_id = next(k["id"] for k in tenant.get("/v1/keys").json["items"] if k["scopes"] == ["consents"])
    assert tenant.client.delete(f"/v1/keys/{own_id}", headers=_bearer(own)).status_code == 403  # not even itself
    assert tenant.client.get("/v1/subjects", headers=_bearer(made["key"])).status_code == 200
    assert all(k["revoked_at"] is None for k in tenant.get("/v1/keys").json["items"])


@pytest.mark.committed
def test_two_revocations_at_once_record_one(app: Flask, tenant: Tenant, race: Race) -> None:
    made = tenant.post("/v1/keys", {"name": "leaked", "scopes": ["verify"]}).json

    def revoke() -> int:
        return int(tenant.delete(f"/v1/keys/{made['id']}", scope="admin").status_code)

    [statuses] = race(revoke, revoke, revoke)
    assert statuses == [204, 204, 204]
    with app.app_context():
        from service import db

        revoked = db.session().scalars(
            select(AuditEvent).where(AuditEvent.action == "api_key.revoked", AuditEvent.object_id == made["id"])
        )
        assert len(revoked.all()) == 1
    assert tenant.client.get("/v1/keys", headers=_bearer(made["key"])).status_code == 401
