"""Helpers for the tests. Tests reach them only through the fixtures of ``tests/conftest.py``.

A test module may import from here only under ``if TYPE_CHECKING:``, for annotations (``Tenant``,
``GuardianKit`` ...); ``tests/test_layout.py`` checks that.
"""

from __future__ import annotations

import base64
import contextvars
import fcntl
import json
import os
import re
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service import db
from tests.sms_fakes import FakeAliyun as FakeAliyun  # re-exported for the tests' annotations
from tests.sms_fakes import FakeTencent as FakeTencent

# --- Organizations and the API -----------------------------------------------------------------------------

#: The types of the factory fixtures, for annotations: ``def test_x(make_tenant: MakeTenant) -> None``.
MakeTenant = Callable[..., "Tenant"]
PurposeBody = Callable[..., dict[str, Any]]
ForceExpiry = Callable[[str], None]
Race = Callable[..., list[list[object]]]


#: The four contents of Measures Art. 9 and a conclusion, as a real assessment states them (R10).
ASSESSMENT_CONTENTS = {
    "lawfulness_necessity": "Door access by face is lawful with separate consent; a card is offered instead.",
    "rights_impact": "A person's face template is processed; anyone may refuse and use the card.",
    "security_risks": "Templates could leak from terminals or be matched against other databases.",
    "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
    "conclusion": "Proceed: the risks are low and the safeguards fit them.",
}


def assessment_body(codes: list[str], conducted_at: date | None = None, **contents: str) -> dict[str, Any]:
    """A valid body for ``POST /v1/assessments`` covering ``codes``; ``contents`` replace any of the texts."""
    return {
        "purposes": codes,
        "conducted_at": (conducted_at or date.today()).isoformat(),
        **ASSESSMENT_CONTENTS,
        **contents,
    }


def purpose_body(code: str = "door_access", **overrides: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": {"zh-CN": "校门通行", "en": "Door access"},
        "description": {"zh-CN": "刷脸打开校门", "en": "Opening the school gate by face"},
        "category": "access_control",
        "necessity": {
            "zh-CN": "高峰时段教职工无法逐一核对每位学生",
            "en": "Staff cannot check every student by sight at peak hours",
        },
        "alternative": {"zh-CN": "刷学生卡同样可以开启校门", "en": "A student card opens the same gate"},
        "processing_method": {
            "zh-CN": "闸机摄像头拍摄人脸，与登记照片比对后立即删除抓拍图像；特征值加密保存在学校服务器。",
            "en": "The gate camera takes a picture, compares it with the enrolled photo and deletes it at once; "
            "the template is stored encrypted on the school's server.",
        },
        "rights_impact": {
            "zh-CN": "人脸信息属于敏感个人信息，一旦泄露难以更改。您可随时查阅、更正、删除或撤回同意。",
            "en": "Face data is sensitive and cannot be changed if leaked. You may access, correct or delete it, "
            "or withdraw consent, at any time.",
        },
        "capture": "personal_device",
        "retention_days": 90,
        "analyses": ["liveness"],
        "notice": {"zh-CN": "我们使用人脸识别开门。", "en": "We open the gate by face."},
    }
    body.update(overrides)
    return body


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

    def assess(self, codes: list[str], conducted_at: date | None = None, **contents: str) -> dict[str, Any]:
        response = self.post("/v1/assessments", assessment_body(codes, conducted_at, **contents))
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[no-any-return]

    def incident(
        self, codes: list[str], severity: str = "major", occurred_at: datetime | None = None, **fields: Any
    ) -> Any:
        """``POST /v1/incidents`` for ``codes``; the response (a test may expect a refusal)."""
        body = {
            "occurred_at": (occurred_at or datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "description": "A terminal's template store was copied by an intruder.",
            "purposes": codes,
            "severity": severity,
            **fields,
        }
        return self.post("/v1/incidents", body)

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
        **extra: Any,
    ) -> Any:
        return self.post(
            "/v1/guardian-requests",
            {
                "subject_id": subject_id,
                "purposes": purposes,
                "delivery": delivery,
                "locale": locale,
                "guardian": {"phone": phone, "relationship": relationship},
                **extra,
            },
            scope="consents",
        )


def make_tenant(app: Flask, client: FlaskClient, name: str = "Sunrise School") -> Tenant:
    from service.domain.organizations import create_api_key, create_organization

    with app.app_context():
        session = db.session()
        org = create_organization(session, name=name, contact="privacy@sunrise.example")
        keys = {}
        for scope in ("admin", "consents", "verify"):
            _, keys[scope] = create_api_key(session, org_id=org.id, scopes=[scope])
        session.commit()
        return Tenant(client=client, org_id=org.id, keys=keys)


def force_expiry(app: Flask, consent_id: str) -> None:
    """Move a consent's end into the past, as if its retention period had run out."""
    from service.models import Consent, utcnow

    with app.app_context():
        session = db.session()
        row = session.get(Consent, consent_id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()


# --- The guardian pages ------------------------------------------------------------------------------------


def setup_child(tenant: Tenant, *, age_years: int = 9) -> dict[str, Any]:
    tenant.purpose("door_access")
    tenant.purpose(
        "canteen_payment",
        category="payment",
        name={"zh-CN": "食堂刷脸支付", "en": "Canteen payment"},
        description={"zh-CN": "在食堂刷脸支付餐费", "en": "Paying for meals in the canteen by face"},
        necessity={"zh-CN": "午餐高峰时段排队时间过长", "en": "Queues at lunchtime are too long"},
        processing_method={
            "zh-CN": "收银终端拍摄人脸，与登记照片比对后立即删除抓拍图像；比对由支付服务商在其服务器上完成。",
            "en": "The till takes a picture, compares it with the enrolled photo and deletes it at once; the "
            "payment provider does the comparison on its servers.",
        },
        transmits_face_data=True,
        alternative={"zh-CN": "使用食堂饭卡支付", "en": "Pay with the canteen card"},
    )
    return tenant.subject(age_years=age_years)


def link_path(url: str) -> str:
    return urlparse(url).path


def code_from(message: dict[str, Any]) -> str:
    found = re.search(r"(?<!\d)(\d{6})(?!\d)", message["body"])  # 验证码123456, no word boundary in Chinese
    assert found, message
    return found.group(1)


def url_from(message: dict[str, Any]) -> str:
    found = re.search(r"https?://\S+/g/[A-Za-z0-9_-]+", message["body"])
    assert found, message
    return found.group(0)


@dataclass
class GuardianBrowser:
    """Drives the guardian pages the way a phone without JavaScript would: GET, then POST the form."""

    client: FlaskClient
    path: str

    def open(self, query: str = "") -> Any:
        return self.client.get(self.path + query)

    def csrf(self) -> str:
        page = self.open()
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.get_data(as_text=True))
        assert found, page.get_data(as_text=True)
        return found.group(1)

    def submit(self, **form: Any) -> Any:
        """POST the form and follow the redirect a browser follows (a decision's 303 to its receipt)."""
        data = {"csrf_token": self.csrf(), **form}
        return self.client.post(self.path, data=data, follow_redirects=True)


@dataclass
class GuardianKit:
    """The guardian flow's helpers, for the ``guardian`` fixture."""

    client: FlaskClient

    def setup_child(self, tenant: Tenant, *, age_years: int = 9) -> dict[str, Any]:
        """Two assessed purposes (door access, canteen payment) and a child of ``age_years``."""
        return setup_child(tenant, age_years=age_years)

    def browser(self, path_or_url: str, *, client: FlaskClient | None = None) -> GuardianBrowser:
        """A guardian at a link (a full URL or its path), on the test client or on ``client``."""
        return GuardianBrowser(client or self.client, link_path(path_or_url))

    @staticmethod
    def code_from(message: dict[str, Any]) -> str:
        return code_from(message)

    @staticmethod
    def url_from(message: dict[str, Any]) -> str:
        return url_from(message)

    @staticmethod
    def link_path(url: str) -> str:
        return link_path(url)


# --- The test's transaction ---------------------------------------------------------------------------------


class OtherConnectionRefused(RuntimeError):
    """Another connection to the test's database, while the test runs in a transaction (savepoint mode)."""


def _database_key(url: URL) -> tuple[Any, ...]:
    return (url.get_backend_name(), url.host, url.port, url.database)


class SavepointGuard:
    """Refuses, at once, any other connection to the test database while a test runs in savepoint mode.

    The test's one connection then holds an uncommitted transaction (on SQLite, the write lock and the
    ``flock`` beside the database too): another connection would not see the test's rows, would write
    rows of its own that no rollback removes (the verify path commits on connections of its own), and on
    SQLite would wait for the lock until ``DB_TIMEOUT_MS`` and fail. Listened to on the ``Engine`` class,
    so that it covers engines made during the test too. Whoever asked gets an error; the error may be
    swallowed (the verify path answers ``deny``), so each refusal is also kept, and the ``app`` fixture
    fails the test with them.
    """

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.database: tuple[Any, ...] | None = None
        self.refused: list[str] = []

    def watch(self, connection: Connection) -> None:
        self.connection, self.database, self.refused = connection, _database_key(connection.engine.url), []

    def stop(self) -> list[str]:
        refused, self.connection, self.database, self.refused = self.refused, None, None, []
        return refused

    def __call__(self, conn: Connection) -> None:
        if self.connection is None or conn is self.connection or _database_key(conn.engine.url) != self.database:
            return
        conn.close()  # back to the pool: whoever asked never gets it
        where = "".join(traceback.format_stack(limit=12)[:-1])
        self.refused.append(f"in thread {threading.current_thread().name}:\n{where}")
        raise OtherConnectionRefused(
            "another connection to the test database, while the test runs in a transaction rolled back at its "
            "end: mark the test @pytest.mark.committed"
        )

    def install(self) -> None:
        event.listen(Engine, "engine_connect", self)

    def uninstall(self) -> None:
        event.remove(Engine, "engine_connect", self)


class TestTransaction:
    """The app's sessions bound to one connection whose transaction is rolled back when the test ends.

    ``session.commit()`` in a view then only releases a savepoint (warehouse's pattern). On SQLite the
    outer transaction is a deferred ``BEGIN``, without the ``flock`` the service takes for its writers:
    with one connection there is nobody to queue with, and another process that writes to the database
    meanwhile (a test that should have been marked ``committed``) then fails after SQLite's busy timeout.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(self, app: Flask, guard: SavepointGuard):
        self.guard = guard
        engine: Engine = app.extensions["consent_gate.engine"]
        self.connection = engine.connect()
        if engine.dialect.name == "sqlite":
            self.connection.execution_options(**{db.DEFERRED_OPTION: True})
        self.transaction = self.connection.begin()
        self.sessionmaker = app.extensions["consent_gate.sessionmaker"]
        self.sessionmaker.configure(bind=self.connection, join_transaction_mode="create_savepoint")
        guard.watch(self.connection)

    def close(self, app: Flask) -> None:
        """Roll back everything the test did; fail it if it used other connections meanwhile.

        In-process connections were refused as they came; other processes are seen by what they left.
        """
        refused = self.guard.stop()
        try:
            if self.transaction.is_active:
                self.transaction.rollback()
            with self.connection.begin():
                left = list(self.connection.execute(text(left_behind_query())).scalars())
        finally:
            self.connection.close()
        if left:
            empty_tables(app)
        problems = []
        if refused:
            problems.append(
                f"{len(refused)} other connection(s) to the test database were refused (a verification, a "
                f"thread, another app ...); the first was asked for {refused[0]}"
            )
        if left:
            problems.append(
                f"rows in {', '.join(left)} outlived the rollback: another process wrote them (or an earlier "
                "test wrote without the app fixture); the tables are now emptied"
            )
        if problems:
            pytest.fail(
                "this test runs in a transaction rolled back at its end (savepoint mode), but "
                + "; and ".join(problems)
                + ". Mark it @pytest.mark.committed.",
                pytrace=False,
            )


def left_behind_query() -> str:
    """The names of the tables that have any row, in one round trip."""
    import service.models  # noqa: F401 (the tables of the metadata)

    return " UNION ALL ".join(
        f"SELECT '{table.name}' FROM (SELECT 1 FROM {table.name} LIMIT 1) AS {table.name}_any"  # noqa: S608
        for table in db.Base.metadata.sorted_tables
    )


def empty_tables(app: Flask) -> None:
    engine = app.extensions["consent_gate.engine"]
    with engine.begin() as conn:
        for table in reversed(db.Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))  # noqa: S608 (names from our own metadata)


DB_SESSION = "tests.db_session"


def sqlite_write_lock_held(session: Session) -> bool:
    """Whether ``session`` is in a transaction that holds the service's SQLite writer lock."""
    transaction = session.get_transaction()
    return (
        transaction is not None
        and transaction.is_active
        and any(conn.info.get("write_locked") and not conn.closed for conn in transaction.connections)
    )


class IsolatedClient(FlaskClient):
    """A test client whose every request has an app context (and ``g``, and a session) of its own.

    Flask reuses an app context already pushed for the same app, so under ``db_session`` (which keeps one
    pushed for the whole test) requests would share ``g``, and with it one session and its identity map.
    A request here runs in a fresh ``contextvars`` context when one is pushed, as it would in a server.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        held: Session | None = self.application.extensions.get(DB_SESSION)
        if held is not None and sqlite_write_lock_held(held):
            # The request would wait for the lock (DB_TIMEOUT_MS) and fail: SQLite has one writer at a time.
            pytest.fail(
                "db_session holds SQLite's write lock (every transaction on SQLite takes it, reads too): "
                "commit or roll it back before calling the API",
                pytrace=False,
            )
        if not current_app or current_app._get_current_object() is not self.application:  # type: ignore[attr-defined]
            return super().open(*args, **kwargs)
        request = super().open
        return contextvars.Context().run(request, *args, **kwargs)


# --- Concurrency --------------------------------------------------------------------------------------------

RACE_TIMEOUT = 60.0


def race(*callables: Callable[[], object], repeat: int = 1, timeout: float = RACE_TIMEOUT) -> list[list[object]]:
    """Run ``callables`` at the same instant, in threads behind a barrier, ``repeat`` times.

    Returns, for each repetition, each callable's return value or the exception it raised. A thread still
    running ``timeout`` seconds after the start fails the test.
    """
    if not callables:
        raise ValueError("race needs at least one callable")
    rounds: list[list[object]] = []
    for repetition in range(repeat):
        barrier = threading.Barrier(len(callables))
        results: list[object] = [None] * len(callables)

        def run(index: int, call: Callable[[], object], barrier: threading.Barrier, results: list[object]) -> None:
            try:
                barrier.wait(timeout)
                results[index] = call()
            except BaseException as exc:  # captured for the test to look at, never lost
                results[index] = exc

        threads = [
            threading.Thread(target=run, args=(i, call, barrier, results), name=f"race-{repetition}-{i}", daemon=True)
            for i, call in enumerate(callables)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        hung = [thread.name for thread in threads if thread.is_alive()]
        if hung:
            pytest.fail(f"race: {', '.join(hung)} still running after {timeout:g} s", pytrace=False)
        rounds.append(results)
    return rounds


JOIN_TIMEOUT = 60.0


class VerifyScenarios:
    """Verification scenarios under faults and concurrency (test_concurrency_faults)."""

    def __init__(self, app: Flask):
        self.app = app

    def no_allow_after_revoke(self, tenant: Tenant) -> None:
        """Verifiers in three threads; once the revoke has answered, every verification started later denies."""
        app = self.app
        tenant.purpose()
        consent = tenant.consent(tenant.subject()["id"]).json
        order = iter(range(1_000_000))
        revoked_at: list[int] = []
        answers: list[tuple[int, str]] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def verifier() -> None:
            local = app.test_client()
            try:
                while not stop.is_set():
                    started = next(order)
                    response = local.post(
                        "/v1/verifications",
                        json={"purpose": "door_access", "token": consent["token"]},
                        headers=tenant.headers("verify"),
                    )
                    answers.append((started, response.json["decision"]))
            except BaseException as exc:  # reported by the test's thread, below
                failures.append(exc)

        def wait_for(condition: Callable[[], bool]) -> None:
            deadline = time.monotonic() + JOIN_TIMEOUT
            while not condition():
                assert not failures, failures
                assert time.monotonic() < deadline, "the verifier threads stopped answering"
                time.sleep(0.01)

        threads = [threading.Thread(target=verifier, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(answers) >= 10)
            assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").status_code == 200
            revoked_at.append(next(order))
            wait_for(lambda: len([a for a in answers if a[0] > revoked_at[0]]) >= 10)
        finally:
            stop.set()
            for thread in threads:
                thread.join(JOIN_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a verifier thread hung"
        assert not failures, failures
        after = [decision for started, decision in answers if started > revoked_at[0]]
        assert after and set(after) == {"deny"}
        assert "allow" in {decision for started, decision in answers if started < revoked_at[0]}

    def locked_database_denies_then_recovers(self, tenant: Tenant) -> None:
        """With the database locked by another connection, verify answers 503 deny; then allows again."""
        app = self.app
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

    def writer_lock_held_denies_then_recovers(self, tenant: Tenant, holder: str) -> None:
        """SQLite's writer lock held elsewhere: a write fails and verify answers 503 deny, within the timeout.

        ``holder`` is ``process`` (an ``flock`` of the lock file on an open file of its own, which the
        kernel treats as another process's) or ``thread`` (a write transaction of another connection of
        this process). ``flock`` has no timeout of its own: unbounded, both calls waited as long as the
        holder held it. Each runs in a thread that fails the test if it hangs; once the lock is released,
        writes and verifications work again.
        """
        app = self.app
        engine: Engine = app.extensions["consent_gate.engine"]
        tenant.purpose()
        consent = tenant.consent(tenant.subject()["id"]).json
        assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(text("UPDATE organizations SET name = name WHERE id = :id"), {"id": tenant.org_id})

        def verify() -> Any:
            return tenant.verify("door_access", token=consent["token"])

        if holder == "process":
            lock = os.open(f"{engine.url.database}.writelock", os.O_RDWR)
            fcntl.flock(lock, fcntl.LOCK_EX)

            def release() -> None:
                fcntl.flock(lock, fcntl.LOCK_UN)
                os.close(lock)

        else:
            writer = engine.connect()
            writer.begin()
            release = writer.close  # rolls back, and lets the next writer in
        try:
            [[failed]] = race(write)
            assert isinstance(failed, OperationalError) and "database is locked" in str(failed), failed
            [[response]] = race(verify)
            assert not isinstance(response, BaseException), response
            assert response.status_code == 503, response.json
            assert (response.json["decision"], response.json["reason"]) == ("deny", "unavailable")
        finally:
            release()
        assert race(write) == [[None]]
        assert verify().json["decision"] == "allow"


# --- A fake Twilio ------------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    username: str
    password: str
    form: dict[str, str]


@dataclass
class FakeTwilio:
    """A local HTTP server that answers like Twilio's Messages API, for the official twilio client."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-auth-token"
    received: list[Received] = field(default_factory=list)
    #: Answers to give, in order, before falling back to 201 Created: (status, twilio error code or None).
    script: list[tuple[int, int | None]] = field(default_factory=list)
    base_url: str = ""

    def answer(self) -> tuple[int, dict[str, Any]]:
        if self.script:
            status, code = self.script.pop(0)
            if status >= 300:
                return status, {"code": code, "message": f"scripted {status}", "more_info": "", "status": status}
        return 201, {}


def serve_fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            auth = self.headers.get("Authorization", "")
            username = password = ""
            if auth.startswith("Basic "):
                username, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            form = {k: v[0] for k, v in parse_qs(body).items()}
            fake.received.append(Received("POST", self.path, username, password, form))
            expected = f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
            if self.path != expected:
                self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                return
            if (username, password) != (fake.account_sid, fake.auth_token):
                self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            status, payload = fake.answer()
            if status == 201:
                payload = {
                    "sid": "SM" + uuid.uuid4().hex,
                    "account_sid": fake.account_sid,
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "status": "queued",
                    "num_segments": "1",
                }
            self._reply(status, payload)

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
