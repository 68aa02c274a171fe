"""The layout of the tests: helpers come from fixtures, and the fixtures keep their contract.

Test modules reach the helpers of ``tests/support.py`` only through the fixtures of ``tests/conftest.py``;
they may import from ``tests.support`` under ``if TYPE_CHECKING:``, for annotations, and never import
``conftest`` or another test module.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, g, request_finished
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from service import db
from service.domain.consents import revoke_consent
from service.models import Consent, Organization

if TYPE_CHECKING:
    from tests.support import GuardianKit, MakeTenant, PurposeBody, Race, Tenant

TESTS = Path(__file__).resolve().parent


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[str, bool, int]]:
    """Every module ``node`` imports: (name, whether under ``if TYPE_CHECKING:``, line)."""
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from _imports(child, True)
        for child in node.orelse:
            yield from _imports(child, type_checking)
        return
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, type_checking, node.lineno
    elif isinstance(node, ast.ImportFrom):
        module = "." * node.level + (node.module or "")
        if module.strip(".") in ("", "tests"):  # `from tests import conftest`, `from . import x`: modules
            for alias in node.names:
                yield module + ("" if module.endswith(".") else ".") + alias.name, type_checking, node.lineno
        else:
            yield module, type_checking, node.lineno
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) in {"__import__", "import_module"}
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value, False, node.lineno
    for child in ast.iter_child_nodes(node):
        yield from _imports(child, type_checking)


def layout_problems(source: str) -> list[str]:
    """What a test module's imports break of the layout, one line each."""
    problems = []
    for module, type_checking, line in _imports(ast.parse(source)):
        parts = module.split(".")
        if module.startswith("."):
            problem = "a relative import"
        elif parts[0] == "conftest" or parts[:2] == ["tests", "conftest"]:
            problem = "imports conftest: use its fixtures"
        elif parts[0].startswith("test_") or (parts[0] == "tests" and len(parts) > 1 and parts[1].startswith("test_")):
            problem = "imports another test module: move what it shares into tests/support.py, behind a fixture"
        elif parts[0] == "support" or parts[:2] == ["tests", "support"]:
            if type_checking:
                continue
            problem = "imports tests.support outside `if TYPE_CHECKING:`: reach helpers through fixtures"
        elif parts[0] == "tests":
            problem = "imports from the tests package: reach helpers through fixtures"
        else:
            continue
        problems.append(f"line {line}: {module}: {problem}")
    return problems


def test_no_test_module_imports_conftest_another_test_or_support_at_run_time() -> None:
    modules = sorted(TESTS.glob("test_*.py"))
    assert len(modules) > 20
    found = {path.name: layout_problems(path.read_text(encoding="utf-8")) for path in modules}
    assert {name: problems for name, problems in found.items() if problems} == {}
    assert not (TESTS / "guardian_support.py").exists() and not (TESTS / "twilio_fake.py").exists()


@pytest.mark.parametrize(
    "source",
    [
        "from tests.conftest import Tenant",
        "from conftest import Tenant",
        "import tests.conftest",
        "from tests import conftest",
        "from . import conftest",
        "from .conftest import Tenant",
        "from tests.test_verification_endpoint import world",
        "import test_concurrency_faults",
        "from tests.support import Tenant",
        "import tests.support",
        "from tests import support",
        "def f():\n    from tests.support import race",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelse:\n    from tests.support import Tenant",
        "if TYPE_CHECKING:\n    from tests.conftest import Tenant",
        "from tests.guardian_support import setup_child",
        "__import__('tests.conftest')",
        "importlib.import_module('tests.support')",
    ],
)
def test_the_layout_check_finds(source: str) -> None:
    assert layout_problems(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tests.support import Tenant",
        "import typing\nif typing.TYPE_CHECKING:\n    from tests.support import GuardianKit, Tenant",
        "from service import db\nimport pytest",
        "from testing import x",
    ],
)
def test_the_layout_check_allows(source: str) -> None:
    assert layout_problems(source) == []


# The fixtures' contract.


def test_helper_fixtures(
    make_tenant: MakeTenant, tenant: Tenant, other_tenant: Tenant, purpose_body: PurposeBody, guardian: GuardianKit
) -> None:
    assert tenant.org_id != other_tenant.org_id
    made = make_tenant()
    named = make_tenant("Moonrise School")
    assert len({made.org_id, named.org_id, tenant.org_id}) == 3
    assert set(made.keys) == {"admin", "consents", "verify"}
    assert purpose_body()["code"] == "door_access"
    body = purpose_body("canteen", retention_days=30)
    assert (body["code"], body["retention_days"], body["name"]) == (
        "canteen",
        30,
        {"zh-CN": "校门通行", "en": "Door access"},
    )
    child = guardian.setup_child(tenant, age_years=8)
    assert child["is_minor"] is True
    created = tenant.guardian_request(child["id"], ["door_access"], delivery="qr").json
    url = created["approve_url"]
    assert guardian.link_path(url) == "/g/" + url.rsplit("/g/", 1)[1]
    assert guardian.browser(url).path == guardian.browser(guardian.link_path(url)).path == guardian.link_path(url)
    assert guardian.browser(url).open().status_code == 200


def test_db_session_shares_the_requests_transaction(tenant: Tenant, db_session: Session, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    assert db_session.get(Consent, consent["id"]) is not None, "a row made through the API is visible"
    assert db.session() is db_session, "the pushed app context's session"
    revoke_consent(db_session, org_id=tenant.org_id, actor="test", consent_id=consent["id"], note="domain test")
    db_session.commit()
    assert tenant.get(f"/v1/consents/{consent['id']}", scope="consents").json["status"] == "revoked"
    # Requests still get an app context, a g and a session of their own.
    seen: list[object] = []

    def record(_app: Flask, **_extra: object) -> None:
        seen.append(g.get("db_session"))

    with request_finished.connected_to(record, app):
        assert tenant.get("/v1/purposes").status_code == 200
    assert len(seen) == 1 and isinstance(seen[0], Session) and seen[0] is not db_session
    assert db.session() is db_session


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_savepoint_test_starts_on_empty_tables(tenant: Tenant, db_session: Session, run: str) -> None:
    assert db_session.scalar(select(func.count()).select_from(Organization)) == 1, run


def test_savepoint_mode_refuses_other_connections_at_once(app: Flask, savepoint_guard: Any) -> None:
    with app.app_context(), pytest.raises(RuntimeError, match="committed"):
        db.engine().connect()
    assert len(savepoint_guard.refused) == 1
    savepoint_guard.refused.clear()  # else the app fixture fails this test, as it should any other


@pytest.mark.committed
def test_committed_mode_commits_and_db_session_sees_it(tenant: Tenant, db_session: Session, app: Flask) -> None:
    with app.app_context(), db.engine().connect() as other:
        assert other.scalar(select(func.count()).select_from(Organization)) == 1, "committed, seen by others"
    assert db_session.get(Organization, tenant.org_id) is not None


def test_race_returns_each_result_or_exception(race: Race) -> None:
    started: list[float] = []
    lock = threading.Lock()

    def ok() -> str:
        with lock:
            started.append(1)
        return "ok"

    def boom() -> str:
        raise ValueError("boom")

    rounds = race(ok, boom, ok, repeat=3)
    assert len(rounds) == 3 and len(started) == 6
    for results in rounds:
        assert results[0] == results[2] == "ok"
        assert isinstance(results[1], ValueError) and str(results[1]) == "boom"


def test_race_fails_the_test_when_a_thread_hangs(race: Race) -> None:
    release = threading.Event()
    try:
        with pytest.raises(pytest.fail.Exception, match="still running"):
            race(lambda: release.wait(30), lambda: None, timeout=0.2)
    finally:
        release.set()


@pytest.mark.committed
def test_a_request_while_db_session_holds_the_sqlite_lock_fails_instead_of_waiting(
    tenant: Tenant, db_session: Session, app: Flask
) -> None:
    assert db_session.get(Organization, tenant.org_id) is not None  # a transaction: on SQLite, the writer lock
    if app.config["DATABASE_URL"].startswith("sqlite"):
        with pytest.raises(pytest.fail.Exception, match="write lock"):
            tenant.get("/v1/purposes")
        db_session.rollback()
    assert tenant.get("/v1/purposes").status_code == 200


def test_tests_run_in_a_rolled_back_transaction_by_default(app: Flask) -> None:
    assert isinstance(app.extensions["consent_gate.sessionmaker"].kw["bind"], Connection)


def test_race_puts_the_test_in_committed_mode(app: Flask, race: Race) -> None:
    assert isinstance(app.extensions["consent_gate.sessionmaker"].kw["bind"], Engine)
