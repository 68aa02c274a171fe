"""The app factory, configuration, operations endpoints, and the committed OpenAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.config import ConfigError, from_environment
from service.errors import ERROR_CODES

ROOT = Path(__file__).resolve().parent.parent


def test_factory_uses_embedded_defaults(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("CONSENT_GATE_"):
            monkeypatch.delenv(name)
    app = create_app({"ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:8000"
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path}/consent-gate.sqlite3"
    assert app.config["SMS_PROVIDER"] == "console"
    assert app.config["SMS_OUTBOX"] == f"{tmp_path}/sms-outbox.jsonl"
    assert app.config["GUARDIAN_AGE"] == 14
    assert app.config["ASSESSMENT_VALID_DAYS"] == 365
    assert app.config["FILING_THRESHOLD"] == 100000
    assert not app.testing


def test_environment_overrides_with_one_prefix() -> None:
    settings = from_environment(
        {"CONSENT_GATE_GUARDIAN_AGE": "16", "CONSENT_GATE_PUBLIC_URL": "https://cg.example", "GUARDIAN_AGE": "99"}
    )
    assert settings["GUARDIAN_AGE"] == 16
    assert settings["PUBLIC_URL"] == "https://cg.example"
    with pytest.raises(ConfigError):
        from_environment({"CONSENT_GATE_ASSESSMENT_VALID_DAYS": "a year"})


def test_the_pool_is_sized_from_the_threads_of_each_process(tmp_path: Any) -> None:
    """Each thread may hold two connections at once (its request's, the verify path's), a PostgreSQL batch
    a third: the pool keeps the first two open for every thread and opens the third when needed."""
    threads = create_app({"ENV": "test", "INSTANCE_PATH": str(tmp_path), "WORKER_THREADS": 16})
    assert threads.config["DB_POOL_SIZE"] == 2 * 16 + 2
    pool = threads.extensions["consent_gate.engine"].pool
    assert pool.size() == 34 and pool.size() + pool._max_overflow >= 3 * 16  # type: ignore[attr-defined]
    one = create_app({"ENV": "test", "INSTANCE_PATH": str(tmp_path)})  # not served by `consent-gate serve`: as before
    assert (one.config["WORKER_THREADS"], one.config["DB_POOL_SIZE"]) == (1, 5)
    assert one.extensions["consent_gate.engine"].pool._max_overflow == 10  # type: ignore[attr-defined]
    chosen = create_app({"ENV": "test", "INSTANCE_PATH": str(tmp_path), "WORKER_THREADS": 16, "DB_POOL_SIZE": 20})
    assert chosen.extensions["consent_gate.engine"].pool.size() == 20
    settings = from_environment({"CONSENT_GATE_WORKER_THREADS": "8", "CONSENT_GATE_DB_POOL_SIZE": "40"})
    assert (settings["WORKER_THREADS"], settings["DB_POOL_SIZE"]) == (8, 40)
    for wrong in ({"WORKER_THREADS": 0}, {"DB_POOL_SIZE": 0}):
        with pytest.raises(ConfigError):
            create_app({"ENV": "test", "INSTANCE_PATH": str(tmp_path), **wrong})
    for app in (threads, one, chosen):
        app.extensions["consent_gate.engine"].dispose()


def test_unsafe_sms_provider_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ConfigError):
        create_app({"ENV": "test", "INSTANCE_PATH": str(tmp_path), "SMS_PROVIDER": "carrier-pigeon"})


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ok"}


def test_readiness_reports_an_unreachable_database(app: Flask, client: FlaskClient) -> None:
    from service.db import make_engine

    sessions = app.extensions["consent_gate.sessionmaker"]
    bound = sessions.kw["bind"]  # the engine, or the test's connection in savepoint mode
    broken = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    sessions.configure(bind=broken)
    try:
        response = client.get("/readyz")
    finally:
        sessions.configure(bind=bound)
        broken.dispose()
    assert response.status_code == 503
    assert response.json["code"] == "database_unavailable"
    assert client.get("/readyz").status_code == 200


def test_docs_and_spec_are_served(client: FlaskClient) -> None:
    assert client.get("/openapi.json").json["info"]["title"] == "Consent Gate"
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def test_committed_openapi_matches_the_app(client: FlaskClient) -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    served = client.get("/openapi.json").json
    assert committed == served, "openapi/openapi.json is stale: run `make openapi`"


def test_every_error_response_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            statuses = set(operation["responses"])
            assert "default" in statuses, (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= statuses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= statuses, (method, path)
            if "{" in path:
                assert "404" in statuses, (method, path)


def test_every_error_code_in_the_code_is_documented() -> None:
    used: set[str] = set()
    for source in (ROOT / "service").rglob("*.py"):
        used.update(re.findall(r'\bcode="([a-z_]+)"', source.read_text()))
        used.update(re.findall(r'"code": "([a-z_]+)"', source.read_text()))
    assert used, "the pattern found no error codes"
    assert used <= set(ERROR_CODES), used - set(ERROR_CODES)


def test_sqlite_runs_with_wal_and_foreign_keys(app: Flask) -> None:
    from sqlalchemy import text

    from service import db

    with app.app_context():
        session = db.session()
        if session.get_bind().dialect.name != "sqlite":
            assert session.get_bind().dialect.driver == "psycopg"
            return
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
