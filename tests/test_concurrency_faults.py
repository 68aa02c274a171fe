"""Concurrency and faults: races resolve to one outcome, the verify path fails closed, nothing half-done."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from service import db
from service.domain.audit import verify_all
from service.models import AuditEvent, Consent

if TYPE_CHECKING:
    from tests.support import Race, Tenant, VerifyScenarios


#: Threads, other connections and a killed process: nothing here can run in a rolled-back transaction.
pytestmark = pytest.mark.committed


def test_no_allow_after_a_revoke_has_committed(tenant: Tenant, verify_scenarios: VerifyScenarios) -> None:
    verify_scenarios.no_allow_after_revoke(tenant)


def test_concurrent_grants_with_one_idempotency_key_make_one_consent(tenant: Tenant, app: Flask, race: Race) -> None:
    tenant.purpose()
    person = tenant.subject()

    def grant() -> tuple[int, Any]:
        local = app.test_client()
        response = local.post(
            "/v1/consents",
            json={
                "subject_id": person["id"],
                "purpose": "door_access",
                "notice_version": 1,
                "evidence": {"method": "checkbox", "channel": "web", "locale": "en"},
            },
            headers=tenant.headers("consents", {"Idempotency-Key": "same-key"}),
        )
        return response.status_code, response.json

    [answers] = race(*[grant] * 6)
    statuses: list[int] = []
    ids: list[str] = []
    for answer in answers:
        assert isinstance(answer, tuple), answer  # not an exception
        status, body = answer
        statuses.append(status)
        if status == 201:
            ids.append(body["id"])
    assert set(statuses) == {201}, statuses
    assert len(set(ids)) == 1
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Consent)) == 1


def test_audit_chain_stays_valid_under_concurrent_writes(
    tenant: Tenant, other_tenant: Tenant, app: Flask, race: Race
) -> None:
    def register(index: int) -> list[int]:
        local = app.test_client()
        owner = tenant if index % 2 else other_tenant
        statuses = []
        for n in range(5):
            response = local.post(
                "/v1/subjects",
                json={"external_ref": f"t{index}-{n}", "birth_date": "1990-01-01"},
                headers=owner.headers("consents"),
            )
            assert response.status_code == 201, response.json
            statuses.append(response.status_code)
        return statuses

    [results] = race(*(functools.partial(register, i) for i in range(6)))
    assert results == [[201] * 5] * 6, results  # an assertion failed in a thread is reported here
    with app.app_context():
        session = db.session()
        assert verify_all(session) == []
        for org in (tenant.org_id, other_tenant.org_id):
            seqs = session.scalars(
                select(AuditEvent.seq).where(AuditEvent.org_id == org).order_by(AuditEvent.seq)
            ).all()
            assert list(seqs) == list(range(1, len(seqs) + 1))


@pytest.fixture()
def short_timeouts(app_config: dict[str, Any]) -> None:
    app_config["DB_TIMEOUT_MS"] = 300


def test_locked_or_stuck_database_makes_verify_deny_then_recover(
    short_timeouts: None, tenant: Tenant, verify_scenarios: VerifyScenarios
) -> None:
    verify_scenarios.locked_database_denies_then_recovers(tenant)


@pytest.mark.parametrize("holder", ["process", "thread"])
def test_a_held_sqlite_writer_lock_makes_writes_fail_and_verify_deny_then_recover(
    short_timeouts: None, holder: str, app: Flask, tenant: Tenant, verify_scenarios: VerifyScenarios
) -> None:
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("the writer lock (an flock beside the database file) is SQLite's")
    verify_scenarios.writer_lock_held_denies_then_recovers(tenant, holder)


@pytest.fixture()
def sixteen_threads(app_config: dict[str, Any]) -> None:
    app_config.update(WORKER_THREADS=16, DB_TIMEOUT_MS=200)  # a thread waits for a connection 200 ms at most


def test_sixteen_threads_each_hold_every_connection_they_may_need_at_once(
    sixteen_threads: None, app: Flask, race: Race
) -> None:
    """What one serving thread may hold at once: the verification endpoint's connection, which it keeps
    between verifications, its request's session, and one more of the pool's overflow (a peak)."""
    engine = app.extensions["consent_gate.engine"]
    held = app.extensions["consent_gate.verifier"].held
    held_at_once: list[int] = []
    all_in = threading.Barrier(16, action=lambda: held_at_once.append(engine.pool.checkedout()))

    def thread() -> None:
        session = app.extensions["consent_gate.sessionmaker"]()
        try:
            with held.connection() as kept, engine.connect() as extra:
                db.begin_read(session)
                for conn in (session.connection(), extra, kept):  # reads: on SQLite no writer lock
                    conn.execution_options(**{db.DEFERRED_OPTION: True}).exec_driver_sql("SELECT 1")
                all_in.wait(timeout=30)  # nobody returns a connection before all hold theirs
        finally:
            session.close()

    assert race(*[thread] * 16) == [[None] * 16]  # a thread without a connection within 200 ms: TimeoutError
    assert held_at_once == [3 * 16]


def test_no_free_connection_within_the_timeout_answers_503_and_verify_denies(
    short_timeouts: None, app: Flask, tenant: Tenant
) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    engine = app.extensions["consent_gate.engine"]
    pool = engine.pool
    taken = [engine.connect() for _ in range(pool.size() + pool._max_overflow - pool.checkedout())]
    try:  # each request waits DB_TIMEOUT_MS for a connection, then fails closed
        listed = tenant.get("/v1/purposes")
        verified = tenant.verify("door_access", token=consent["token"])
    finally:
        for conn in taken:
            conn.close()
    assert (listed.status_code, listed.json["code"]) == (503, "service_unavailable")
    assert verified.status_code == 503
    assert (verified.json["decision"], verified.json["reason"]) == ("deny", "unavailable")
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"


GRANT_LOOP = textwrap.dedent(
    """
    import sys
    from datetime import date
    from service import create_app, db
    from service.domain.consents import grant_consent
    from service.domain.subjects import register_subject
    from service.keys.data_key import protector

    app = create_app({"DATABASE_URL": sys.argv[1], "INSTANCE_PATH": sys.argv[2], "ENV": "test",
                      "LOG_REQUESTS": False})
    with app.app_context():
        session = db.session()
        for n in range(100000):
            subject = register_subject(session, org_id=sys.argv[3], actor="loop", external_ref=f"loop-{n}",
                                       birth_date=date(1990, 1, 1), guardian_age=14, protector=protector())
            grant_consent(session, org_id=sys.argv[3], actor="loop", subject_id=subject.id,
                          purpose_code="door_access", notice_version=1,
                          evidence={"method": "button", "channel": "kiosk", "locale": "en"})
            session.commit()
            print(n, flush=True)
    """
)


def test_a_process_killed_mid_grant_leaves_all_or_nothing(tenant: Tenant, app: Flask, runner: Any) -> None:
    tenant.purpose()
    process = subprocess.Popen(
        [sys.executable, "-c", GRANT_LOOP, app.config["DATABASE_URL"], app.config["INSTANCE_PATH"], tenant.org_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for _ in range(15):  # let it commit a few grants, then kill it without warning, mid-flight
        process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    with app.app_context():
        session = db.session()
        consents = set(session.scalars(select(Consent.id).where(Consent.org_id == tenant.org_id)))
        granted = set(
            session.scalars(
                select(AuditEvent.object_id).where(
                    AuditEvent.org_id == tenant.org_id, AuditEvent.action == "consent.granted"
                )
            )
        )
        assert len(consents) >= 15
        assert consents == granted
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    # The service carries on after the crash: the chain accepts new events.
    assert tenant.consent(tenant.subject()["id"]).status_code == 201
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
