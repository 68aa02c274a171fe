"""What the verify path's storage shortcuts must not change: rows, ids, checkpoints, stale connections."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from service import db
from service.db import make_engine, start_wal_checkpoints
from service.db.prepared import Prepared
from service.domain.organizations import hash_api_key
from service.models import Verification, new_sequential_id, utcnow
from service.verification.store import DECIDE_AND_RECORD, FIND_CALLER, _one_item, _statement

if TYPE_CHECKING:
    from tests.support import ForceExpiry, Tenant


@pytest.mark.committed
def test_prepared_statements_return_what_sqlalchemy_returns(
    tenant: Tenant, app: Flask, force_expiry: ForceExpiry
) -> None:
    tenant.purpose()
    person = tenant.subject()
    consent = tenant.consent(person["id"]).json
    force_expiry(consent["id"])  # a timestamp in the row, which needs the type's processing
    now = utcnow()
    item = {
        "purpose": "door_access",
        "consent_id": None,
        "subject_id": person["id"],
        "token_sub": None,
        "device_id": None,
        "verdict": None,
    }
    shared = {"org_id": tenant.org_id, "api_key_id": "k", "now": now, "today": now.date()}
    with app.app_context(), db.engine().connect() as conn, conn.begin():
        fast = DECIDE_AND_RECORD.rows(conn, {**item, **shared, "vid": "v-fast"})
        slow = [tuple(row) for row in conn.execute(_statement(_one_item()), {**item, **shared, "vid": "v-slow"})]
        assert fast == [("v-fast", "expired", consent["id"])] and slow == [("v-slow", "expired", consent["id"])]
        recorded = conn.execute(select(Verification.created_at).where(Verification.id == "v-fast")).scalar_one()
        assert isinstance(recorded, datetime) and recorded.tzinfo is not None and recorded == now
        other_org = DECIDE_AND_RECORD.rows(conn, {**item, **shared, "vid": "v-other", "org_id": str(uuid.uuid4())})
        assert other_org == [("v-other", "no_consent", None)], "nothing of another organization is read"
        key = tenant.keys["verify"]
        found = FIND_CALLER.rows(conn, {"key_hash": hash_api_key(key)})
        assert found == [tuple(row) for row in conn.execute(FIND_CALLER.statement, {"key_hash": hash_api_key(key)})]
        with pytest.raises(ValueError, match="expanding"):
            Prepared(select(Verification.id).where(Verification.id.in_(["a"]))).rows(conn, {})
        conn.rollback()


@pytest.mark.committed
def test_verification_ids_are_time_ordered_uuid7(tenant: Tenant, app: Flask) -> None:
    first = tenant.verify("door_access", token="x").json["verification_id"]
    time.sleep(0.002)  # the next millisecond
    second = tenant.verify("door_access", subject_id=str(uuid.uuid4())).json["verification_id"]
    assert first < second
    assert {uuid.UUID(first).version, uuid.UUID(second).version} == {7}
    assert uuid.UUID(first).variant == uuid.RFC_4122
    with app.app_context():
        assert set(db.session().scalars(select(Verification.id))) == {first, second}
    ids = [new_sequential_id() for _ in range(1000)]
    assert len(set(ids)) == 1000


def test_served_sqlite_checkpoints_its_log_in_the_background(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/cg.sqlite3")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
            conn.exec_driver_sql("INSERT INTO t SELECT hex(randomblob(100)) FROM (SELECT 1)")
        database = tmp_path / "cg.sqlite3"
        before = database.stat().st_size
        with engine.begin() as conn:  # far below the automatic threshold: only a checkpoint moves it
            for _ in range(50):
                conn.exec_driver_sql("INSERT INTO t VALUES (hex(randomblob(500)))")
        assert database.stat().st_size == before, "the rows wait in the log"
        thread = start_wal_checkpoints(engine, interval=0.01)
        assert thread is not None and thread.daemon
        deadline = time.monotonic() + 30
        while database.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert database.stat().st_size > before, "the checkpointer copied the log into the database"
    finally:
        engine.dispose()
    assert start_wal_checkpoints(make_engine("sqlite://")) is None


#: PostgreSQL only: SQLite's connections are files in this process and do not go stale.
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture()
def pg_url(database_url: str) -> str:
    return database_url


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@postgresql_only
def test_a_connection_idle_for_a_while_is_pinged_and_replaced(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            killed = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        _terminate(pg_url, int(killed))
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # "idle a while" is now
        with engine.connect() as conn:
            fresh = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert fresh != killed
    finally:
        engine.dispose()


@postgresql_only
def test_a_connection_used_moments_ago_fails_once_then_the_pool_recovers(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            killed = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        _terminate(pg_url, int(killed))
        with pytest.raises(DBAPIError), engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != killed
    finally:
        engine.dispose()


@pytest.mark.committed
@postgresql_only
def test_a_killed_connection_makes_one_verification_deny_then_verifying_recovers(
    pg_url: str, tenant: Tenant, app: Flask
) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    with app.app_context(), db.engine().connect() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalars()
        for pid in list(pids):
            _terminate(pg_url, int(pid))
    answers = [tenant.verify("door_access", token=consent["token"]) for _ in range(3)]
    assert all(a.json["decision"] in {"allow", "deny"} for a in answers)
    assert all(a.json["reason"] in {"consent_active", "unavailable"} for a in answers)
    assert answers[-1].json["decision"] == "allow", "the pool reconnects"


def test_held_connections_are_reused_released_when_idle_discarded_on_failure_and_closed_on_dispose(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    held = db.HeldConnections(engine)
    with held.connection() as first:
        first.exec_driver_sql("SELECT 1")
    with held.connection() as again:
        assert again is first, "kept between uses"
    with pytest.raises(RuntimeError), held.connection() as failing:
        raise RuntimeError("boom")
    assert failing.closed, "never reused after a failure"
    with held.connection() as fresh:
        assert fresh is not first
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", -1.0)  # every connection has now been idle too long
    with held.connection() as after_idle:
        assert after_idle is not fresh and fresh.closed, "handed back to the pool, to be tested on checkout"
    monkeypatch.undo()
    with held.connection() as kept:
        pass
    engine.dispose()
    assert kept.closed


def test_sqlite_writers_queue_is_released_only_after_commit(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Released before ``COMMIT`` ran, the next writer would meet SQLite still locked and sleep-poll."""
    events: list[str] = []
    driver_sql = db._driver_sql
    flock = db.fcntl.flock

    def logged_sql(conn: Any, sql: str) -> None:
        events.append(sql)
        driver_sql(conn, sql)

    def logged_flock(fd: int, operation: int) -> None:
        events.append("unlock" if operation == db.fcntl.LOCK_UN else "lock")
        flock(fd, operation)

    monkeypatch.setattr(db, "_driver_sql", logged_sql)
    monkeypatch.setattr(db.fcntl, "flock", logged_flock)
    engine = make_engine(f"sqlite:///{tmp_path}/queue.sqlite3")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert events == ["lock", "BEGIN IMMEDIATE", "COMMIT", "unlock"]
    finally:
        engine.dispose()


@postgresql_only
def test_verification_records_have_their_own_durability_class(pg_url: str) -> None:
    """The verifier's connections commit with VERIFICATION_SYNCHRONOUS_COMMIT; the pool gets them back reset."""
    engine = make_engine(pg_url)
    session = "SET synchronous_commit TO off; SET plan_cache_mode TO force_generic_plan"
    held = db.HeldConnections(engine, options={"isolation_level": "AUTOCOMMIT"}, session_sql=session)
    try:
        with held.connection() as conn:
            settings = conn.exec_driver_sql(
                "SELECT current_setting('synchronous_commit'), current_setting('plan_cache_mode')"
            )
            assert tuple(settings.one()) == ("off", "force_generic_plan")
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        held._release(conn, close=False)  # as after an idle while: back to the pool
        with engine.connect() as other:
            assert other.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid, "the same connection, pooled"
            assert other.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert other.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    finally:
        engine.dispose()


def test_the_verification_durability_class_is_checked(app_config: dict[str, Any]) -> None:
    from service import create_app
    from service.config import ConfigError

    with pytest.raises(ConfigError, match="VERIFICATION_SYNCHRONOUS_COMMIT"):
        create_app({**app_config, "VERIFICATION_SYNCHRONOUS_COMMIT": "off; DROP TABLE consents"})


def test_connections_held_by_threads_that_ended_go_back_to_the_pool(tmp_path: Any) -> None:
    """A server with a thread per request (werkzeug's) starts a new thread for each: none may keep its
    connection once it has ended, or the pool runs dry."""
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path}/held.sqlite3", pool_size=1, max_overflow=0, pool_timeout=5)
    held = db.HeldConnections(engine)
    answers: list[int] = []

    def one_request() -> None:
        with held.connection() as conn:
            answers.append(conn.exec_driver_sql("SELECT 1").scalar())

    try:
        for _ in range(5):  # one connection in the pool, five threads one after another
            thread = threading.Thread(target=one_request)
            thread.start()
            thread.join(30)
            assert not thread.is_alive()
        assert answers == [1] * 5
    finally:
        engine.dispose()
