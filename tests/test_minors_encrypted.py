"""Children's data encrypted at rest (R14; PIPL 28): a minor's birth date, reference and display name never
reach the database in clear; a reference is found by its keyed hash, within its organization only."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from service import create_app, db
from service.db import make_engine
from service.db.migrate import downgrade, upgrade
from service.domain.subjects import add_years, is_minor, reference_hash, register_subject
from service.keys.data_key import protector
from service.models import Subject

if TYPE_CHECKING:
    from tests.support import GuardianKit, Race, Tenant

CHILD_NAME = "张晓雯"


def _raw_subject(session: Session, subject_id: str) -> Any:
    return (
        session.execute(
            text(
                "SELECT external_ref, birth_date, guardian_required_until, external_ref_ciphertext, "
                "birth_date_ciphertext, guardian_required_until_ciphertext, external_ref_hash "
                "FROM subjects WHERE id = :id"
            ),
            {"id": subject_id},
        )
        .mappings()
        .one()
    )


def _spellings(day: date) -> list[bytes]:
    """A day as a database or a careless app might write it: ISO, compact, slashed."""
    return [day.isoformat().encode(), day.strftime("%Y%m%d").encode(), day.strftime("%Y/%m/%d").encode()]


def test_r14_minors_data_encrypted_at_rest_domain(app: Flask, db_session: Session, tenant: Tenant) -> None:
    birth = add_years(date.today(), -9)
    ref = f"pupil-{uuid.uuid4().hex[:8]}"
    child = register_subject(
        db_session,
        org_id=tenant.org_id,
        actor="test",
        external_ref=ref,
        birth_date=birth,
        guardian_age=14,
        protector=protector(),
    )
    raw = _raw_subject(db_session, child.id)
    # Nothing in clear, in the old columns or the new ones.
    assert (raw["external_ref"], raw["birth_date"], raw["guardian_required_until"]) == (None, None, None)
    stored = " ".join(str(value) for value in raw.values())
    for needle in (ref, birth.isoformat(), add_years(birth, 14).isoformat()):
        assert needle not in stored
    # The ciphertexts open with the data key; the hash is the organization's keyed hash of the reference.
    assert protector().decrypt(raw["external_ref_ciphertext"]) == ref
    assert protector().decrypt(raw["birth_date_ciphertext"]) == birth.isoformat()
    assert protector().decrypt(raw["guardian_required_until_ciphertext"]) == add_years(birth, 14).isoformat()
    assert raw["external_ref_hash"] == reference_hash(protector(), org_id=tenant.org_id, external_ref=ref)
    assert raw["external_ref_hash"] != reference_hash(protector(), org_id=str(uuid.uuid4()), external_ref=ref)
    # Read back through the model, the age rule works as before (R4).
    db_session.expire_all()
    again = db_session.get(Subject, child.id)
    assert again is not None
    assert (again.external_ref, again.birth_date, again.guardian_required_until) == (ref, birth, add_years(birth, 14))
    assert is_minor(again, date.today())


def _database_bytes(app: Flask) -> bytes:
    """Everything the database holds, as raw as it is stored: the SQLite file (after a checkpoint, and its
    write-ahead log if any is left), or every row of every table of PostgreSQL read over a plain connection."""
    url: str = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        files = [path, Path(f"{path}-wal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
            )
        ]
        dumped = []
        for table in tables:
            for (row,) in connection.execute(f'SELECT t::text FROM "{table}" AS t'):  # noqa: S608 (catalog names)
                dumped.append(row)
    return "\n".join(dumped).encode()


@pytest.mark.committed
def test_r14_a_child_is_nowhere_in_clear_in_the_database(app: Flask, tenant: Tenant, guardian: GuardianKit) -> None:
    child = guardian.setup_child(tenant, age_years=10)
    ref = f"child-{uuid.uuid4().hex[:10]}"
    birth = date.today() - timedelta(days=int(10 * 365.25) + 3)
    registered = tenant.post("/v1/subjects", {"external_ref": ref, "birth_date": birth.isoformat()}, scope="consents")
    assert registered.status_code == 201 and registered.json["is_minor"] is True
    response = tenant.guardian_request(
        registered.json["id"], ["door_access"], delivery="paper", child_display_name=CHILD_NAME
    )
    assert response.status_code == 202, response.json
    assert child["is_minor"] is True
    stored = _database_bytes(app)
    assert b"Sunrise School" in stored  # the reading sees what is stored in clear
    assert ref.encode() not in stored
    assert CHILD_NAME.encode() not in stored
    for spelling in _spellings(birth) + _spellings(add_years(birth, 14)):
        assert spelling not in stored, spelling
    # What is encrypted still reads back, for the organization.
    read = tenant.get(f"/v1/subjects/{registered.json['id']}", scope="consents").json
    assert (read["external_ref"], read["birth_date"]) == (ref, birth.isoformat())
    assert read["guardian_required_until"] == add_years(birth, 14).isoformat()


def test_r14_find_a_subject_by_reference_within_the_organization(tenant: Tenant, other_tenant: Tenant) -> None:
    child = tenant.subject("class-3-pupil-12", age_years=8)
    found = tenant.get("/v1/subjects?external_ref=class-3-pupil-12", scope="consents")
    assert found.status_code == 200
    assert found.json == {"items": [child], "next_cursor": None}
    assert tenant.get("/v1/subjects?external_ref=class-3-pupil-13", scope="consents").json["items"] == []
    # Another organization's key finds nothing, and the same reference there is another person.
    assert other_tenant.get("/v1/subjects?external_ref=class-3-pupil-12", scope="consents").json["items"] == []
    theirs = other_tenant.subject("class-3-pupil-12", age_years=30)
    assert other_tenant.get("/v1/subjects?external_ref=class-3-pupil-12", scope="consents").json["items"] == [theirs]
    assert tenant.get("/v1/subjects?external_ref=class-3-pupil-12", scope="consents").json["items"] == [child]


def test_find_by_reference_needs_the_reference_and_the_scope(tenant: Tenant) -> None:
    assert tenant.get("/v1/subjects", scope="consents").json == {"items": [], "next_cursor": None}  # the list
    assert tenant.get("/v1/subjects?external_ref=", scope="consents").status_code == 422
    assert tenant.get("/v1/subjects?external_ref=x", scope="verify").status_code == 403


def test_r14_a_repeated_reference_is_refused(tenant: Tenant) -> None:
    tenant.subject("pupil-1", age_years=9)
    again = tenant.post("/v1/subjects", {"external_ref": "pupil-1", "birth_date": "2012-05-01"}, scope="consents")
    assert (again.status_code, again.json["code"]) == (409, "subject_exists")


def test_r14_two_registrations_racing_with_one_reference_register_one(app: Flask, tenant: Tenant, race: Race) -> None:
    def register(ref: str) -> tuple[int, str | None]:
        response = app.test_client().post(
            "/v1/subjects",
            json={"external_ref": ref, "birth_date": "2015-06-01"},
            headers=tenant.headers("consents"),
        )
        return response.status_code, (response.json or {}).get("code")

    for _ in range(5):
        ref = f"racer-{uuid.uuid4().hex[:8]}"
        [results] = race(lambda ref=ref: register(ref), lambda ref=ref: register(ref))
        assert sorted(results, key=str) == [(201, None), (409, "subject_exists")], results
        assert len(tenant.get(f"/v1/subjects?external_ref={ref}", scope="consents").json["items"]) == 1


def test_r13_r14_erasure_removes_the_encrypted_data_and_the_lookup(
    app: Flask, db_session: Session, tenant: Tenant
) -> None:
    child = tenant.subject("to-erase", age_years=7)
    assert tenant.delete(f"/v1/subjects/{child['id']}").status_code == 204
    raw = _raw_subject(db_session, child["id"])
    assert all(value is None for value in raw.values()), dict(raw)
    assert tenant.get("/v1/subjects?external_ref=to-erase", scope="consents").json["items"] == []
    erased = tenant.get(f"/v1/subjects/{child['id']}", scope="consents").json
    assert (erased["external_ref"], erased["birth_date"], erased["is_minor"]) == (None, None, False)
    # The reference is free again: a new registration is a new person.
    assert tenant.subject("to-erase", age_years=7)["id"] != child["id"]


# --- Migration 0007e, with rows present, on both databases ---------------------------------------------------


def _seed_0006(conn: Any) -> None:
    """An organization with a child and an adult, as version 0006 stored them: in clear."""
    now = "2026-01-01 00:00:00"
    conn.execute(
        text("INSERT INTO organizations (id, name, contact, created_at) VALUES ('o1', '学校', '010-1', :now)"),
        {"now": now},
    )
    for subject_id, ref, birth, until in (
        ("s1", "pupil-0007", "2016-03-09", "2030-03-09"),
        ("s2", "teacher-0007", "1985-11-30", "1999-11-30"),
    ):
        conn.execute(
            text(
                "INSERT INTO subjects (id, org_id, external_ref, birth_date, guardian_required_until, created_at) "
                "VALUES (:id, 'o1', :ref, :birth, :until, :now)"
            ),
            {"id": subject_id, "ref": ref, "birth": birth, "until": until, "now": now},
        )


def _clear_columns(conn: Any) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        text("SELECT id, external_ref, birth_date, guardian_required_until FROM subjects ORDER BY id")
    ).all()
    return [
        (row[0], row[1], None if row[2] is None else str(row[2]), None if row[3] is None else str(row[3]))
        for row in rows
    ]


def test_migration_0007e_encrypts_existing_people_and_goes_back(fresh_url: str, tmp_path: Path) -> None:
    engine = make_engine(fresh_url)
    app = create_app(
        {"ENV": "test", "TESTING": True, "DATABASE_URL": fresh_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    )
    keys = app.extensions["consent_gate.protector"]
    seeded = [
        ("s1", "pupil-0007", "2016-03-09", "2030-03-09"),
        ("s2", "teacher-0007", "1985-11-30", "1999-11-30"),
    ]
    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            _seed_0006(conn)
        # The migration alone (no key) adds the columns and leaves the rows as they were.
        upgrade(engine, "0007e")
        with engine.connect() as conn:
            assert _clear_columns(conn) == seeded
        # The app's `db upgrade` encrypts them (an already migrated database: only the encryption runs).
        result = app.test_cli_runner().invoke(args=["db", "upgrade", "--revision", "0007e"])
        assert result.exit_code == 0, result.output
        assert "encrypted the reference and birth date of 2 people" in result.output
        with engine.connect() as conn:
            assert _clear_columns(conn) == [(sid, None, None, None) for sid, *_ in seeded]
        with app.app_context():
            session = db.session()
            child, adult = session.get(Subject, "s1"), session.get(Subject, "s2")
            assert child is not None and adult is not None
            assert (child.external_ref, child.birth_date) == ("pupil-0007", date(2016, 3, 9))
            assert child.guardian_required_until == date(2030, 3, 9) and is_minor(child, date(2026, 1, 1))
            assert (adult.external_ref, adult.birth_date) == ("teacher-0007", date(1985, 11, 30))
            assert child.external_ref_hash == reference_hash(keys, org_id="o1", external_ref="pupil-0007")
            session.rollback()
        again = app.test_cli_runner().invoke(args=["subjects", "encrypt"])
        assert again.exit_code == 0 and "0 people left in clear" in again.output, again.output
        # Down: the data back in clear, which needs the key; without it a downgrade is refused.
        with pytest.raises(RuntimeError, match="encrypted data"):
            downgrade(engine, "0006")
        downgrade(engine, "0006", protector=keys)
        with engine.connect() as conn:
            assert _clear_columns(conn) == seeded
        # And up again, by the bare migration then the command for that case.
        upgrade(engine, "0007e")
        result = app.test_cli_runner().invoke(args=["subjects", "encrypt"])
        assert result.exit_code == 0 and "0 people left in clear" in result.output, result.output
        with engine.connect() as conn:
            assert _clear_columns(conn) == [(sid, None, None, None) for sid, *_ in seeded]
    finally:
        app.extensions["consent_gate.engine"].dispose()
        engine.dispose()
