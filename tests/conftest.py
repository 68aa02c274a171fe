"""Fixtures: every database test runs on SQLite and on PostgreSQL, with the schema built by migrations.

PostgreSQL: each test run creates its own database on 127.0.0.1:5432 and drops it at the end. When the
server is unreachable the PostgreSQL half is skipped with the reason shown, except with ``CI=true``,
where it must run.

Each test runs in a transaction rolled back at its end (savepoint mode): the app's sessions share one
connection, and a view's ``commit()`` releases a savepoint. Tests that use other connections (the verify
path, threads, other apps or processes, a served app) are marked ``committed``: they commit for real and
every table is emptied after them. In savepoint mode any other connection to the test database is refused
at once, and fails the test with a hint.

The helpers live in ``tests/support.py``; test modules reach them through the fixtures here.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from service import create_app, db
from service.db import make_engine
from service.db.migrate import upgrade
from tests import support
from tests.support import (
    DB_SESSION,
    FakeTwilio,
    GuardianKit,
    IsolatedClient,
    SavepointGuard,
    Tenant,
    TestTransaction,
    VerifyScenarios,
    empty_tables,
    serve_fake_twilio,
)

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


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """An empty, unmigrated database of each kind for this test alone (migration tests walk it themselves)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.sqlite3"
        return
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}")
    name = f"consent_gate_fresh_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_dsn(name).replace("postgresql://", "postgresql+psycopg://")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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
        # The outbox retries at once in tests: one drain() runs every attempt a message gets.
        "OUTBOX_BACKOFF_SECONDS": 0.0,
        "OUTBOX_MAX_ATTEMPTS": 3,
        "WEBHOOK_RETRY_SECONDS": "0,0",  # three attempts, like the SMS above
        "JOB_RETRY_SECONDS": "0,0",
        # Tests change keys directly in the database; the verify path's key cache is tested on its own.
        "API_KEY_CACHE_SECONDS": 0,
    }


#: Fixtures that need real commits: whatever uses them runs in committed mode.
COMMITTED_FIXTURES = frozenset({"live", "race", "verify_scenarios"})
MODES = pytest.StashKey[Counter[str]]()


def _mode(request: pytest.FixtureRequest) -> str:
    if request.node.get_closest_marker("committed") is not None or COMMITTED_FIXTURES & set(request.fixturenames):
        return "committed"
    return "savepoint"


@pytest.fixture(scope="session")
def savepoint_guard() -> Iterator[SavepointGuard]:
    guard = SavepointGuard()
    guard.install()
    yield guard
    guard.uninstall()


@pytest.fixture()
def app(app_config: dict[str, Any], request: pytest.FixtureRequest, savepoint_guard: SavepointGuard) -> Iterator[Flask]:
    """The app, its sessions in one transaction rolled back at the end of the test (savepoint mode).

    Tests marked ``committed`` (and any that use ``live``, ``race`` or ``verify_scenarios``) commit for
    real instead, and every table is emptied after them: for whatever uses other connections than the
    request's session (verifications, threads, other apps or processes, a served app).
    """
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    mode = _mode(request)
    request.config.stash.setdefault(MODES, Counter())[mode] += 1
    transaction = TestTransaction(app, savepoint_guard) if mode == "savepoint" else None
    try:
        yield app
    finally:
        try:
            if transaction is not None:
                transaction.close(app)
            else:
                empty_tables(app)
        finally:
            app.extensions["consent_gate.engine"].dispose()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    modes = config.stash.get(MODES, None)
    if modes:
        terminalreporter.write_line(
            f"database tests: {modes['savepoint']} in savepoint mode, {modes['committed']} committed"
        )


@pytest.fixture()
def db_session(app: Flask) -> Iterator[Session]:
    """A session for calling domain functions directly, in the test's transaction, in an app context.

    It is that context's ``db.session()``; requests made meanwhile still get a context and a session of
    their own. In savepoint mode it shares the requests' connection: each sees what the other flushed. In
    committed mode it is a session on the app's engine; on SQLite, where every transaction takes the one
    writer lock, commit or roll it back before calling the API (a request made while it holds the lock
    fails the test).
    """
    with app.app_context():
        session = db.session()
        app.extensions[DB_SESSION] = session
        try:
            yield session
        finally:
            app.extensions.pop(DB_SESSION, None)


@pytest.fixture()
def drain(app: Flask) -> Callable[[], int]:
    """``drain()``: run the outbox dispatcher once, as ``consent-gate dispatch --once`` does; rows attempted.

    In savepoint mode it works in the test's transaction, like the requests.
    """
    from service.outbox.dispatcher import Dispatcher

    def run() -> int:
        with app.app_context():
            return Dispatcher.of(app).drain()

    return run


@pytest.fixture()
def outbox(app: Flask, drain: Callable[[], int]) -> Any:
    """Read the console SMS provider's outbox: one dict per message sent (the dispatcher drained first)."""

    def read() -> list[dict[str, Any]]:
        drain()
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


@pytest.fixture()
def make_tenant(app: Flask, client: FlaskClient) -> Callable[..., Tenant]:
    """``make_tenant(name="Sunrise School")``: an organization with a key per scope.

    ``app=`` and ``client=`` make it on another app (its own, on the same database).
    """

    def make(name: str = "Sunrise School", *, app: Flask = app, client: FlaskClient = client) -> Tenant:
        return support.make_tenant(app, client, name)

    return make


@pytest.fixture()
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant()


@pytest.fixture()
def other_tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("Other Corp")


@pytest.fixture()
def purpose_body() -> Callable[..., dict[str, Any]]:
    """``purpose_body(code="door_access", **overrides)``: a valid body for ``POST /v1/purposes``."""
    return support.purpose_body


@pytest.fixture()
def assessment_body() -> Callable[..., dict[str, Any]]:
    """``assessment_body(codes, conducted_at=None, **contents)``: a valid body for ``POST /v1/assessments``
    (the four contents of Measures Art. 9 and a conclusion; ``contents`` replace any of them)."""
    return support.assessment_body


@pytest.fixture()
def force_expiry(app: Flask) -> Callable[[str], None]:
    """``force_expiry(consent_id)``: move a consent's end into the past, as if its retention had run out."""
    return functools.partial(support.force_expiry, app)


@pytest.fixture()
def guardian(client: FlaskClient) -> GuardianKit:
    """The guardian flow's helpers: ``setup_child``, ``browser``, ``code_from``, ``url_from``, ``link_path``."""
    return GuardianKit(client)


@pytest.fixture()
def race() -> Callable[..., list[list[object]]]:
    """``race(*callables, repeat=1)``: run callables at once in threads; each one's result or exception.

    Requesting it puts the test in committed mode: the threads' requests use connections of their own.
    """
    return support.race


@pytest.fixture()
def verify_scenarios(app: Flask) -> VerifyScenarios:
    return VerifyScenarios(app)


@pytest.fixture()
def twilio() -> Iterator[FakeTwilio]:
    """A local server that answers like Twilio's Messages API."""
    yield from serve_fake_twilio()


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
def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, for a server the test starts."""
    return _free_port()


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


@pytest.fixture()
def metrics_token(app_config: dict[str, Any]) -> str:
    """The operator's token for ``/metrics``, set before the app is built (ask for it before ``app``)."""
    token = "metrics-" + uuid.uuid4().hex
    app_config["METRICS_TOKEN"] = token
    return token


@pytest.fixture()
def aliyun() -> Iterator[Any]:
    """A local fake of Alibaba Cloud SMS's HTTP API, served for the official SDK (``tests/sms_fakes.py``)."""
    from tests.sms_fakes import FakeAliyun, serve

    yield from serve(FakeAliyun())


@pytest.fixture()
def tencent() -> Iterator[Any]:
    """A local fake of Tencent Cloud SMS's HTTP API, served for the official SDK (``tests/sms_fakes.py``)."""
    from tests.sms_fakes import FakeTencent, serve

    yield from serve(FakeTencent())
