"""Migrations on databases that hold rows, not only on empty ones: 0005 → 0006 → 0005 → head, devices
through 0007p and back, assessments through 0007a and back, keys through 0008k and 0009s and back, on SQLite
(foreign keys on, as the service runs it) and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from service.db import make_engine
from service.db.migrate import downgrade, upgrade


def _seed_0005(conn: Any) -> None:
    """An organization, a purpose with its notice and a consent, as version 0005 stored them."""
    conn.execute(
        text("INSERT INTO organizations (id, name, contact, created_at) VALUES ('o1', '学校', '010-1', :now)"),
        {"now": "2026-01-01 00:00:00"},
    )
    conn.execute(
        text(
            "INSERT INTO purposes (id, org_id, code, name, description, category, necessity, alternative, "
            "retention_days, analyses, transmits_face_data, notice_version, created_at) VALUES "
            "('p1', 'o1', 'door_access', '校门通行', '刷脸开门', 'access_control', '人多', '刷卡开门', 90, '[]', "
            "false, 1, :now)"
        ),
        {"now": "2026-01-01 00:00:00"},
    )
    conn.execute(
        text(
            "INSERT INTO notices (id, purpose_id, version, texts, digest, material, created_at) VALUES "
            "('n1', 'p1', 1, :texts, :digest, true, :now)"
        ),
        {"texts": json.dumps({"zh-CN": "告知"}), "digest": "0" * 64, "now": "2026-01-01 00:00:00"},
    )
    conn.execute(
        text("INSERT INTO subjects (id, org_id, external_ref, created_at) VALUES ('s1', 'o1', 'ref-1', :now)"),
        {"now": "2026-01-01 00:00:00"},
    )
    conn.execute(
        text(
            "INSERT INTO consents (id, org_id, subject_id, purpose_id, status, notice_version, notice_digest, "
            "guardian_authorized, evidence, created_at, updated_at) VALUES ('c1', 'o1', 's1', 'p1', 'active', 1, "
            ":digest, false, '{}', :now, :now)"
        ),
        {"digest": "0" * 64, "now": "2026-01-01 00:00:00"},
    )


def _purpose(conn: Any) -> dict[str, Any]:
    row = conn.execute(text("SELECT * FROM purposes WHERE id = 'p1'")).mappings().one()
    return {
        key: json.loads(value) if isinstance(value, str) and value.startswith("{") else value
        for key, value in row.items()
    }


def test_migration_0006_keeps_existing_purposes_and_goes_back(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            _seed_0005(conn)
        upgrade(engine, "0006")
        with engine.connect() as conn:
            purpose = _purpose(conn)
            assert purpose["name"] == {"zh-CN": "校门通行"}
            assert purpose["alternative"] == {"zh-CN": "刷卡开门"}
            assert purpose["processing_method"] == {} and purpose["rights_impact"] == {}
            assert purpose["capture"] == "device"
            org = conn.execute(text("SELECT pipo_name, complaint_channel FROM organizations")).one()
            assert tuple(org) == (None, None)
            assert conn.execute(text("SELECT count(*) FROM consents")).scalar() == 1
        downgrade(engine, "0005")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT name, alternative FROM purposes WHERE id = 'p1'")).one()
            assert tuple(row) == ("校门通行", "刷卡开门")
        upgrade(engine)
        with engine.connect() as conn:
            assert _purpose(conn)["necessity"] == {"zh-CN": "人多"}
    finally:
        engine.dispose()


def _seed_devices_0006(conn: Any) -> None:
    """Devices as 0006 stored them: declared public places with a yes for signs, and private ones."""
    rows = [
        ("d-school", "school", "", False, False, True),
        ("d-declared", "school", "", True, True, True),  # declared public by its organization
        ("d-station", "transport_hub", "", True, True, True),  # a yes, but no evidence
        ("d-shop", "retail_store", "", False, False, True),  # public by its type, never declared
        ("d-other", "other", "展览馆入口", False, False, True),
        ("d-off", "street", "", True, True, False),
    ]
    for device_id, location_type, location, public_place, signage_posted, active in rows:
        conn.execute(
            text(
                "INSERT INTO devices (id, org_id, name, location_type, location, public_place, signage_posted, "
                "active, created_at) VALUES (:id, 'o1', 'Gate', :type, :location, :public, :signs, :active, :now)"
            ),
            {
                "id": device_id,
                "type": location_type,
                "location": location,
                "public": public_place,
                "signs": signage_posted,
                "active": active,
                "now": "2026-01-01 00:00:00",
            },
        )


def _devices(conn: Any) -> dict[str, dict[str, Any]]:
    rows = conn.execute(text("SELECT * FROM devices")).mappings()
    return {row["id"]: dict(row) for row in rows}


def test_r7_migration_0007_deactivates_public_places_without_evidence_and_goes_back(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            _seed_0005(conn)
        upgrade(engine, "0006")
        with engine.begin() as conn:
            _seed_devices_0006(conn)
        upgrade(engine, "0007p")
        with engine.connect() as conn:
            devices = _devices(conn)
            assert "signage_posted" not in devices["d-school"]
            assert {d: bool(row["active"]) for d, row in devices.items()} == {
                "d-school": True,
                "d-declared": False,
                "d-station": False,
                "d-shop": False,
                "d-other": False,
                "d-off": False,
            }
            assert {d for d, row in devices.items() if row["public_place"]} == {
                "d-station",
                "d-shop",
                "d-other",
                "d-off",
            }
            assert devices["d-station"]["deactivated_at"] is not None
            assert devices["d-school"]["deactivated_at"] is None and devices["d-off"]["deactivated_at"] is None
            assert devices["d-other"]["location_description"] == "展览馆入口"
            assert devices["d-station"]["signage_photo_sha256"] is None
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE devices SET signage_posted_on = '2026-01-02', signage_text = 'Cameras here', "
                    "signage_photo_sha256 = :sha, collection_area = 'Gates' WHERE id = 'd-shop'"
                ),
                {"sha": "ab" * 32},
            )
        downgrade(engine, "0006")
        with engine.connect() as conn:
            devices = _devices(conn)
            assert {d for d, row in devices.items() if row["signage_posted"]} == {"d-shop"}
            assert "location_description" not in devices["d-shop"]
        upgrade(engine)
        with engine.connect() as conn:
            assert len(_devices(conn)) == 6
    finally:
        engine.dispose()


def _seed_0006_assessment(conn: Any) -> None:
    """An assessment as version 0006 stored it (summary, risk level, measures), making the purpose current."""
    conn.execute(
        text(
            "INSERT INTO assessments (id, org_id, conducted_at, valid_until, summary, risk_level, measures, "
            "created_at) VALUES ('a1', 'o1', '2026-01-01', '2027-01-01', '校门刷脸评估', 'medium', '模板加密', :now)"
        ),
        {"now": "2026-01-01 00:00:00"},
    )
    conn.execute(text("INSERT INTO assessment_purposes (assessment_id, purpose_id) VALUES ('a1', 'p1')"))
    conn.execute(text("UPDATE purposes SET assessed_until = '2027-01-01' WHERE id = 'p1'"))


def test_migration_0007_keeps_old_assessments_words_and_asks_for_art9_ones(fresh_url: str) -> None:
    """R10: an assessment without the four contents of Measures Art. 9 stops counting, and is kept."""
    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            _seed_0005(conn)
        upgrade(engine, "0006")
        with engine.begin() as conn:
            _seed_0006_assessment(conn)
        upgrade(engine, "0007a")
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT conclusion, safeguards, lawfulness_necessity, outdated_at, outdated_reason "
                    "FROM assessments WHERE id = 'a1'"
                )
            ).one()
            assert row.conclusion == "校门刷脸评估 (risk level: medium)" and row.safeguards == "模板加密"
            assert row.lawfulness_necessity is None
            assert row.outdated_at is not None and "Art. 9" in row.outdated_reason
            purpose = conn.execute(text("SELECT assessed_until, reassess_by FROM purposes WHERE id = 'p1'")).one()
            assert tuple(purpose) == (None, None)
            assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 0
        downgrade(engine, "0006")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT summary, measures, risk_level FROM assessments WHERE id = 'a1'")).one()
            assert tuple(row) == ("校门刷脸评估 (risk level: medium)", "模板加密", "high")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT safeguards FROM assessments WHERE id = 'a1'")).scalar() == "模板加密"
    finally:
        engine.dispose()


def test_migration_0007f_adds_the_filing_tables_and_goes_back(fresh_url: str) -> None:
    """Issue 13 (R12): new tables only, on a database that holds rows; down and up again."""
    engine = make_engine(fresh_url)
    now = {"now": "2026-01-01 00:00:00"}
    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, contact, created_at) VALUES ('o1', '学校', '010-1', :now)"),
                now,
            )
        upgrade(engine, "0007f")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO filing_counts (org_id, day, people, counted_at) VALUES ('o1', '2026-01-01', 5, :now)"
                ),
                now,
            )
            conn.execute(
                text(
                    "INSERT INTO filings (id, org_id, kind, filed_on, authority, filing_number, purpose_codes, "
                    "created_at) VALUES ('f1', 'o1', 'initial', '2026-01-02', '网信办', 'N-1', '[]', :now)"
                ),
                now,
            )
        downgrade(engine, "0006")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM organizations")).scalar_one() == "学校"
        upgrade(engine, "0007f")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM filings")).scalar_one() == 0
    finally:
        engine.dispose()


def _seed_keys_0007e(conn: Any) -> None:
    """An organization with three keys, one revoked, as 0007e stored them; and the audit events of their
    creation: two on the command line, one through the API by the first key (as 0008k's API wrote it)."""
    now = {"now": "2026-01-01 00:00:00"}
    conn.execute(
        text("INSERT INTO organizations (id, name, contact, created_at) VALUES ('o1', '学校', '010-1', :now)"), now
    )
    for key_id, revoked in (("k1", None), ("k2", None), ("k3", "2026-01-02 00:00:00")):
        conn.execute(
            text(
                "INSERT INTO api_keys (id, org_id, key_hash, prefix, scopes, created_at, revoked_at) VALUES "
                "(:id, 'o1', :hash, 'cg_abc', 'admin', :now, :revoked)"
            ),
            {"id": key_id, "hash": key_id * 32, "revoked": revoked, **now},
        )
    for seq, (actor, key_id) in enumerate((("cli", "k1"), ("api_key:k1", "k2"), ("cli", "k3")), start=1):
        conn.execute(
            text(
                "INSERT INTO audit_events (org_id, seq, occurred_at, actor, action, object_type, object_id, data, "
                "prev_hash, hash) VALUES ('o1', :seq, :now, :actor, 'api_key.created', 'api_key', :key, '{}', "
                ":prev, :hash)"
            ),
            {"seq": seq, "actor": actor, "key": key_id, "prev": "0" * 64, "hash": f"{seq}" * 64, **now},
        )


def _keys(conn: Any) -> dict[str, dict[str, Any]]:
    return {row["id"]: dict(row) for row in conn.execute(text("SELECT * FROM api_keys")).mappings()}


def _foreign_keys_hold(conn: Any) -> None:
    if conn.dialect.name == "sqlite":
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on, as the service runs SQLite
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []


def test_migrations_0008k_and_0009s_keep_existing_keys_and_go_back(fresh_url: str) -> None:
    """Issue 14 and its security review, on a database that holds keys: names and last uses (0008k), which
    key created each (0009s, from the audit trail) and the lists' indexes; down to 0007e and up again,
    SQLite with its foreign keys on."""
    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0007e")
        with engine.begin() as conn:
            _seed_keys_0007e(conn)
        upgrade(engine, "0008k")
        with engine.begin() as conn:
            keys = _keys(conn)
            assert set(keys) == {"k1", "k2", "k3"} and keys["k3"]["revoked_at"] is not None
            assert all(key["name"] is None and key["last_used_at"] is None for key in keys.values())
            conn.execute(
                text("UPDATE api_keys SET name = '东门', last_used_at = :now WHERE id = 'k1'"), {"now": "2026-01-03"}
            )
            _foreign_keys_hold(conn)
        upgrade(engine, "0009s")
        with engine.connect() as conn:
            keys = _keys(conn)
            assert {key_id: key["created_by"] for key_id, key in keys.items()} == {"k1": None, "k2": "k1", "k3": None}
            assert keys["k1"]["name"] == "东门"
            org = conn.execute(text("SELECT * FROM organizations")).mappings().one()
            assert org["report_links_valid_after"] is None and org["name"] == "学校"
            indexes = {index["name"] for index in inspect(conn).get_indexes("subjects")}
            assert "ix_subjects_org_created_id" in indexes
            _foreign_keys_hold(conn)
        downgrade(engine, "0008k")
        with engine.connect() as conn:
            keys = _keys(conn)
            assert "created_by" not in keys["k1"] and keys["k1"]["name"] == "东门" and len(keys) == 3
            assert "ix_subjects_org_created_id" not in {i["name"] for i in inspect(conn).get_indexes("subjects")}
            org = conn.execute(text("SELECT * FROM organizations")).mappings().one()
            assert "report_links_valid_after" not in org and org["name"] == "学校"
            _foreign_keys_hold(conn)
        downgrade(engine, "0007e")
        with engine.connect() as conn:
            keys = _keys(conn)
            assert set(keys) == {"k1", "k2", "k3"} and "name" not in keys["k1"] and "last_used_at" not in keys["k1"]
            assert keys["k3"]["revoked_at"] is not None and keys["k2"]["key_hash"] == "k2" * 32
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 3
            _foreign_keys_hold(conn)
        upgrade(engine)
        with engine.connect() as conn:
            assert {key_id: key["created_by"] for key_id, key in _keys(conn).items()}["k2"] == "k1"
            _foreign_keys_hold(conn)
    finally:
        engine.dispose()


def test_migration_0009s_rebuilds_an_index_a_failed_concurrent_build_left_invalid(fresh_url: str) -> None:
    """PostgreSQL builds 0009s's indexes concurrently, outside a transaction: a build that failed leaves an
    invalid index of that name behind, which a second run must rebuild, never take for done."""
    if fresh_url.startswith("sqlite"):
        pytest.skip("SQLite builds indexes inside the migration's transaction: nothing is left half-built")
    engine = make_engine(fresh_url)
    try:
        upgrade(engine, "0008k")
        with engine.begin() as conn:
            _seed_keys_0007e(conn)
            for subject_id in ("s1", "s2"):
                conn.execute(
                    text("INSERT INTO subjects (id, org_id, created_at) VALUES (:id, 'o1', '2026-01-01')"),
                    {"id": subject_id},
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            with pytest.raises(IntegrityError):  # two subjects of one organization: the unique build fails
                conn.execute(text("CREATE UNIQUE INDEX CONCURRENTLY ix_subjects_org_created_id ON subjects (org_id)"))
            valid = "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid WHERE relname = :name"
            assert conn.execute(text(valid), {"name": "ix_subjects_org_created_id"}).scalar_one() is False
        upgrade(engine, "0009s")
        with engine.connect() as conn:
            assert conn.execute(text(valid), {"name": "ix_subjects_org_created_id"}).scalar_one() is True
            [index] = [i for i in inspect(conn).get_indexes("subjects") if i["name"] == "ix_subjects_org_created_id"]
            assert index["column_names"] == ["org_id", "created_at", "id"] and not index["unique"]
    finally:
        engine.dispose()


def test_migration_0010o_adds_the_outbox_and_webhooks_and_goes_back(fresh_url: str) -> None:
    """Issue 15: new tables only, on a database that holds rows; down and up again."""
    engine = make_engine(fresh_url)
    now = {"now": "2026-01-01 00:00:00"}
    try:
        upgrade(engine, "0009s")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO organizations (id, name, contact, created_at) VALUES ('o1', '学校', '010-1', :now)"),
                now,
            )
        upgrade(engine, "0010o")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO webhooks (id, org_id, url, events, secret_ciphertext, created_at) "
                    "VALUES ('w1', 'o1', 'https://hooks.example.cn/x', 'consent.revoked', 'c', :now)"
                ),
                now,
            )
            conn.execute(
                text(
                    "INSERT INTO outbox (id, org_id, channel, kind, webhook_id, status, attempts, next_attempt_at, "
                    "created_at) VALUES ('m1', 'o1', 'webhook', 'consent.revoked', 'w1', 'queued', 0, :now, :now)"
                ),
                now,
            )
            _foreign_keys_hold(conn)
        downgrade(engine, "0009s")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM organizations")).scalar_one() == "学校"
            assert "outbox" not in inspect(conn).get_table_names()
        upgrade(engine, "0010o")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0
    finally:
        engine.dispose()
