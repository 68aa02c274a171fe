"""Fixtures: every database test runs on SQLite and on PostgreSQL, with the schema built by migrations.

PostgreSQL: each test run creates its own database on 127.0.0.1:5432 and drops it at the end. When the
server is unreachable the PostgreSQL half is skipped with the reason shown, except with ``CI=true``,
where it must run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server

from service import create_app
from service.db import Base, make_engine
from service.db.migrate import upgrade

CHROMIUM = "/usr/bin/chromium"
PG_ADMIN_DSN = os.environ.get("CONSENT_GATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_dsn(dbname: str) -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def instance_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, instance_root: Any) -> Iterator[str]:
    """A migrated, empty database of each kind, for the whole run."""
    if request.param == "sqlite":
        url = f"sqlite:///{instance_root}/test.sqlite3"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}")
    name = f"consent_gate_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = _pg_dsn(name).replace("postgresql://", "postgresql+psycopg://")
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _empty_tables(app: Flask) -> None:
    engine = app.extensions["consent_gate.engine"]
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))  # noqa: S608 (names from our own metadata)


@pytest.fixture()
def app_config(database_url: str, instance_root: Any, tmp_path: Any) -> dict[str, Any]:
    """The test app's settings; a test may change them before ``app`` is built."""
    return {
        "ENV": "test",
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance_root),
        "PUBLIC_URL": "http://consent-gate.test",
        "SMS_OUTBOX": str(tmp_path / "sms-outbox.jsonl"),
        "SMS_RETRY_BACKOFF": 0.0,
        # Tests change keys directly in the database; the verify path's key cache is tested on its own.
        "API_KEY_CACHE_SECONDS": 0,
    }


@pytest.fixture()
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(app_config)
    yield app
    _empty_tables(app)
    app.extensions["consent_gate.engine"].dispose()


@pytest.fixture()
def outbox(app: Flask) -> Any:
    """Read the console SMS provider's outbox: one dict per message sent."""

    def read() -> list[dict[str, Any]]:
        path = Path(app.config["SMS_OUTBOX"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    return read


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@dataclass
class Tenant:
    """An organization with one key per scope, and shortcuts to call the API as it."""

    client: FlaskClient
    org_id: str
    keys: dict[str, str] = field(default_factory=dict)

    def headers(self, scope: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **(extra or {})}

    def get(self, path: str, scope: str = "admin", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(scope), **kwargs)

    def post(
        self, path: str, json: Any = None, scope: str = "admin", headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        return self.client.post(path, json=json, headers=self.headers(scope, headers), **kwargs)

    def delete(self, path: str, scope: str = "consents") -> Any:
        return self.client.delete(path, headers=self.headers(scope))

    # Shortcuts for the common journey.

    def purpose(self, code: str = "door_access", *, assess: bool = True, **overrides: Any) -> dict[str, Any]:
        body = purpose_body(code, **overrides)
        response = self.post("/v1/purposes", body)
        assert response.status_code == 201, response.json
        if assess:
            self.assess([code])
        return response.json  # type: ignore[no-any-return]

    def assess(self, codes: list[str], conducted_at: date | None = None) -> dict[str, Any]:
        response = self.post(
            "/v1/assessments",
            {
                "purposes": codes,
                "conducted_at": (conducted_at or date.today()).isoformat(),
                "summary": "PIA of door access by face",
                "risk_level": "medium",
                "measures": "on-device templates; encrypted transport; 90-day retention",
            },
        )
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[no-any-return]

    def subject(self, ref: str | None = None, *, age_years: int = 30) -> dict[str, Any]:
        birth = date.today() - timedelta(days=int(age_years * 365.25) + 1)
        response = self.post(
            "/v1/subjects",
            {"external_ref": ref or uuid.uuid4().hex, "birth_date": birth.isoformat()},
            scope="consents",
        )
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[no-any-return]

    def consent(
        self,
        subject_id: str,
        purpose: str = "door_access",
        notice_version: int = 1,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.post(
            "/v1/consents",
            {
                "subject_id": subject_id,
                "purpose": purpose,
                "notice_version": notice_version,
                "evidence": {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN"},
            },
            scope="consents",
            headers=headers,
        )

    def verify(self, purpose: str, *, token: str | None = None, subject_id: str | None = None, **extra: Any) -> Any:
        body: dict[str, Any] = {"purpose": purpose, **extra}
        if token is not None:
            body["token"] = token
        if subject_id is not None:
            body["subject_id"] = subject_id
        return self.post("/v1/verifications", body, scope="verify")

    def guardian_request(
        self,
        subject_id: str,
        purposes: list[str],
        *,
        delivery: str = "sms",
        phone: str = "+8613812345678",
        relationship: str = "parent",
        locale: str = "zh-CN",
    ) -> Any:
        return self.post(
            "/v1/guardian-requests",
            {
                "subject_id": subject_id,
                "purposes": purposes,
                "delivery": delivery,
                "locale": locale,
                "guardian": {"phone": phone, "relationship": relationship},
            },
            scope="consents",
        )


def purpose_body(code: str = "door_access", **overrides: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": "Door access",
        "description": "Opening the school gate by face",
        "category": "access_control",
        "necessity": "Staff cannot check every student by sight at peak hours",
        "alternative": "A student card opens the same gate",
        "retention_days": 90,
        "analyses": ["liveness"],
        "notice": {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."},
    }
    body.update(overrides)
    return body


def make_tenant(app: Flask, client: FlaskClient, name: str = "Sunrise School") -> Tenant:
    from service import db
    from service.domain.organizations import create_api_key, create_organization

    with app.app_context():
        session = db.session()
        org = create_organization(session, name=name, contact="privacy@sunrise.example")
        keys = {}
        for scope in ("admin", "consents", "verify"):
            _, keys[scope] = create_api_key(session, org_id=org.id, scopes=[scope])
        session.commit()
        return Tenant(client=client, org_id=org.id, keys=keys)


@pytest.fixture()
def tenant(app: Flask, client: FlaskClient) -> Tenant:
    return make_tenant(app, client)


@pytest.fixture()
def other_tenant(app: Flask, client: FlaskClient) -> Tenant:
    return make_tenant(app, client, name="Other Corp")


# Browser tests: Debian's Chromium driven by Playwright, against the app served on a loopback port.


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def live_port(app_config: dict[str, Any]) -> int:
    port = _free_port()
    app_config["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    return port


@pytest.fixture()
def live(live_port: int, app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", live_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{live_port}"
    server.shutdown()
    thread.join()


def force_expiry(app: Flask, consent_id: str) -> None:
    """Move a consent's end into the past, as if its retention period had run out."""
    from service import db
    from service.models import Consent, utcnow

    with app.app_context():
        session = db.session()
        row = session.get(Consent, consent_id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
