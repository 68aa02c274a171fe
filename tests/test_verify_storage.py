"""What the verify path's storage shortcuts must not change: rows, ids, checkpoints, stale connections."""

from __future__ import annotations

import fcntl
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from service import db
from service.db import make_engine, start_wal_checkpoints
from service.db.prepared import Prepared
from service.domain.organizations import hash_api_key
from service.models import Verification, new_sequential_id, utcnow
from service.verification.store import DECIDE_AND_RECORD, FIND_CALLER, _rows, _statement

if TYPE_CHECKING:
    from tests.support import ForceExpiry, Race, Tenant


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
        slow = [tuple(row) for row in conn.execute(_statement(_rows(1)), {**item, **shared, "vid": "v-slow"})]
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


def _sqlite_with_a_table(tmp_path: Any, timeout_ms: int) -> tuple[Engine, str]:
    engine = make_engine(f"sqlite:///{tmp_path}/writer.sqlite3", timeout_ms=timeout_ms)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    return engine, f"{tmp_path}/writer.sqlite3.writelock"


def _insert(engine: Engine) -> Callable[[], int]:
    def write() -> int:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            return int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())

    return write


def _another_process_holds(lock_path: str) -> int:
    """An ``flock`` on an open file of its own: to the kernel, another process's."""
    lock = os.open(lock_path, os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def test_a_sqlite_writer_that_waited_for_another_process_gets_the_lock_and_keeps_its_busy_timeout(
    tmp_path: Any, race: Race
) -> None:
    """The writer is woken when the other process lets go; SQLite's busy handler got what was left of the
    timeout for ``BEGIN IMMEDIATE``, and has the whole timeout again for the transaction's statements."""
    engine, lock_path = _sqlite_with_a_table(tmp_path, timeout_ms=30_000)
    lock = _another_process_holds(lock_path)
    release = threading.Timer(0.05, lambda: fcntl.flock(lock, fcntl.LOCK_UN))
    try:
        release.start()
        assert race(_insert(engine)) == [[30_000]]
    finally:
        release.join()
        os.close(lock)
    engine.dispose()


def test_a_sqlite_writer_that_gave_up_leaves_its_place_to_the_next_and_never_the_lock_to_nobody(
    tmp_path: Any, race: Race
) -> None:
    """The helper that waits in the kernel for another process's flock outlives a writer that timed out:
    the next writer of the process takes its place; with nobody waiting, the lock is let go at once."""
    impatient, lock_path = _sqlite_with_a_table(tmp_path, timeout_ms=200)
    patient = make_engine(f"sqlite:///{tmp_path}/writer.sqlite3", timeout_ms=30_000)  # the same queue
    lock = _another_process_holds(lock_path)
    try:
        [[failed]] = race(_insert(impatient))
        assert isinstance(failed, OperationalError) and "database is locked" in str(failed), failed
        release = threading.Timer(0.05, lambda: fcntl.flock(lock, fcntl.LOCK_UN))
        release.start()
        assert race(_insert(patient)) == [[30_000]]
        release.join()

        fcntl.flock(lock, fcntl.LOCK_EX)
        [[failed]] = race(_insert(impatient))  # gives up; the helper still waits for the lock
        assert isinstance(failed, OperationalError), failed
        fcntl.flock(lock, fcntl.LOCK_UN)  # the helper gets it, for nobody: it must let it go
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the process kept the writer lock without a writer"
                time.sleep(0.01)
        fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        os.close(lock)
        impatient.dispose()
        patient.dispose()
    assert race(_insert(impatient)) == [[200]]


def test_a_sqlite_writer_dropped_mid_transaction_lets_the_next_writer_in(tmp_path: Any, race: Race) -> None:
    """A writer that is invalidated, or garbage collected without a rollback (which fires no "rollback"
    event), must let the next one in (before, closing the connection's own file released its flock)."""
    engine, _lock_path = _sqlite_with_a_table(tmp_path, timeout_ms=200)
    try:
        invalidated = engine.connect()
        invalidated.begin()
        invalidated.invalidate()
        assert race(_insert(engine)) == [[200]]
        invalidated.close()

        dropped = engine.connect()
        dropped.begin()
        del dropped
        with warnings.catch_warnings():  # SQLAlchemy warns about a connection the collector returns
            warnings.simplefilter("ignore")
            gc.collect()
        assert race(_insert(engine)) == [[200]]
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


def test_a_forked_worker_queues_behind_a_writer_of_its_parent_on_a_file_of_its_own(tmp_path: Any) -> None:
    """gunicorn forks its workers. The child must not inherit a turn held by a thread of its parent (it
    would never be released there), nor the parent's open file, which would share the parent's flock."""
    engine, lock_path = _sqlite_with_a_table(tmp_path, timeout_ms=200)
    queue = db.writer_queue(lock_path)
    writer = engine.connect()
    writer.begin()
    try:
        assert queue.turn.locked()
        with warnings.catch_warnings():  # Python 3.12 warns when a process with threads forks
            warnings.simplefilter("ignore", DeprecationWarning)
            child = os.fork()
        if child == 0:  # only look, and leave without running anything of pytest's
            turn_free = queue.turn.acquire(blocking=False)
            try:
                fcntl.flock(queue.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                parents_lock_shared = True
            except BlockingIOError:
                parents_lock_shared = False
            os._exit(0 if turn_free and not parents_lock_shared else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        writer.close()
        engine.dispose()


EXCLUSION_LOOP = textwrap.dedent(
    """
    import os, random, sys, threading, time
    from service.db import WriterLockTimeout, writer_queue

    queue, inside, end = writer_queue(sys.argv[1]), sys.argv[2], time.monotonic() + float(sys.argv[3])
    broken = []

    def writer() -> None:
        choose = random.Random()
        while time.monotonic() < end:
            try:
                queue.acquire(choose.choice([0.0005, 0.002, 0.01, 0.5]))  # many give up, mid-wait
            except WriterLockTimeout:
                continue
            try:
                os.close(os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # fails if another is inside
                time.sleep(choose.choice([0, 0, 0.0002, 0.001]))
                os.unlink(inside)
            except FileExistsError:
                broken.append(1)
            finally:
                queue.release()

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(len(broken))
    """
)


def test_writers_of_several_processes_and_threads_that_give_up_at_random_never_overlap(tmp_path: Any) -> None:
    """The writer queue's mutual exclusion, with timeouts that abandon requests the helper still waits on."""
    lock_path, inside = str(tmp_path / "x.writelock"), str(tmp_path / "inside")
    command = [sys.executable, "-c", EXCLUSION_LOOP, lock_path, inside, "3"]  # 3 seconds
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    overlaps = [process.communicate(timeout=120)[0].strip() for process in processes]
    assert overlaps == ["0", "0", "0"]
    assert all(process.returncode == 0 for process in processes)
