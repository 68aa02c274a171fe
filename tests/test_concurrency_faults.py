"""Concurrency and faults: races resolve to one outcome, the verify path fails closed, nothing half-done."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from service import db
from service.domain.audit import verify_all
from service.models import AuditEvent, Consent
from tests.conftest import Tenant


def _threads(target: Any, count: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_no_allow_after_a_revoke_has_committed(tenant: Tenant, app: Flask) -> None:
    no_allow_after_revoke(tenant, app)


def no_allow_after_revoke(tenant: Tenant, app: Flask) -> None:
    """Verifiers in three threads; once the revoke has answered, every verification started later denies."""
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    order = iter(range(1_000_000))
    revoked_at: list[int] = []
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def verifier(_index: int) -> None:
        local = app.test_client()
        while not stop.is_set():
            started = next(order)
            response = local.post(
                "/v1/verifications",
                json={"purpose": "door_access", "token": consent["token"]},
                headers=tenant.headers("verify"),
            )
            answers.append((started, response.json["decision"]))

    threads = [threading.Thread(target=verifier, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    while len(answers) < 10:
        time.sleep(0.01)
    assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").status_code == 200
    revoked_at.append(next(order))
    while len([a for a in answers if a[0] > revoked_at[0]]) < 10:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    after = [decision for started, decision in answers if started > revoked_at[0]]
    assert after and set(after) == {"deny"}
    assert "allow" in {decision for started, decision in answers if started < revoked_at[0]}


def test_concurrent_grants_with_one_idempotency_key_make_one_consent(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    person = tenant.subject()
    ids: list[str] = []
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def grant(_index: int) -> None:
        local = app.test_client()
        barrier.wait()
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
        statuses.append(response.status_code)
        if response.status_code == 201:
            ids.append(response.json["id"])

    _threads(grant, 6)
    assert set(statuses) == {201}, statuses
    assert len(set(ids)) == 1
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Consent)) == 1


def test_audit_chain_stays_valid_under_concurrent_writes(tenant: Tenant, other_tenant: Tenant, app: Flask) -> None:
    def register(index: int) -> None:
        local = app.test_client()
        owner = tenant if index % 2 else other_tenant
        for n in range(5):
            response = local.post(
                "/v1/subjects",
                json={"external_ref": f"t{index}-{n}", "birth_date": "1990-01-01"},
                headers=owner.headers("consents"),
            )
            assert response.status_code == 201, response.json

    _threads(register, 6)
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
    short_timeouts: None, tenant: Tenant, app: Flask
) -> None:
    locked_database_denies_then_recovers(tenant, app)


def locked_database_denies_then_recovers(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        holder: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        release = holder.rollback
    else:
        engine = create_engine(url)
        holder = engine.connect()
        holder.execute(text("LOCK TABLE verifications IN ACCESS EXCLUSIVE MODE"))

        def release() -> None:
            holder.rollback()
            holder.close()
            engine.dispose()

    try:
        response = tenant.verify("door_access", token=consent["token"])
        assert response.status_code == 503
        assert (response.json["decision"], response.json["reason"]) == ("deny", "unavailable")
    finally:
        release()
        holder.close()
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"


GRANT_LOOP = textwrap.dedent(
    """
    import sys
    from datetime import date
    from service import create_app, db
    from service.domain.consents import grant_consent
    from service.domain.subjects import register_subject

    app = create_app({"DATABASE_URL": sys.argv[1], "INSTANCE_PATH": sys.argv[2], "ENV": "test",
                      "LOG_REQUESTS": False})
    with app.app_context():
        session = db.session()
        for n in range(100000):
            subject = register_subject(session, org_id=sys.argv[3], actor="loop", external_ref=f"loop-{n}",
                                       birth_date=date(1990, 1, 1), guardian_age=14)
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
