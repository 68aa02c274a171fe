"""The app factory, configuration, operations endpoints, and the committed OpenAPI document."""

from __future__ import annotations

import ast
import importlib
import json
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.config import ConfigError, from_environment
from service.domain.guardian.codes import CodeCheck
from service.error_catalogue import CATALOGUE
from service.errors import ERROR_CODES, HTTP_CODES, DomainError

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


@dataclass(frozen=True)
class CodeUse:
    """An error code the code answers with, as the scan found it: how it was written, where, and the HTTP
    status it answers with there when the source says (its class's, a literal's)."""

    code: str
    pattern: str
    where: str
    status: int | None = None


#: Codes built by an f-string: the codes each can make. The scan fails on one it does not know.
BUILT_CODES = {
    'f"code_{check.value}"': {f"code_{check.value}" for check in CodeCheck if check is not CodeCheck.OK},
}
#: Not error answers: SMS delivery outcomes (``GuardianRequest.delivery_error``), the spec's examples.
NOT_ERROR_ANSWERS = ("service/sms/", "service/api/examples.py")
_CODE = re.compile(r"[a-z][a-z_]*")


def _module_of(source: Path) -> Any:
    name = ".".join(source.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    return importlib.import_module(name)


def _status_of(module: Any, node: ast.expr | None) -> int | None:
    """The status of the DomainError class ``node`` names in ``module`` (``Conflict``, ``flow.LinkGone``)."""
    if not isinstance(node, ast.Name | ast.Attribute):
        return None
    found: Any = module
    for part in ast.unparse(node).split("."):  # module attributes only: never a request-bound proxy
        found = vars(found).get(part) if isinstance(found, types.ModuleType) else None
    return found.status if isinstance(found, type) and issubclass(found, DomainError) else None


def _strings(node: ast.expr) -> list[str]:
    """The codes a value can be: a string, either branch of ``"a" if … else "b"``."""
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.fullmatch(node.value):
        return [node.value]
    return []


def _uses_in(source: Path) -> Iterator[CodeUse]:
    module = _module_of(source)
    text = source.read_text()
    tree = ast.parse(text)
    classes = {id(node): cls for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for node in ast.walk(cls)}

    def where(node: ast.AST) -> str:
        return f"{source.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"

    def enclosing_status(node: ast.AST) -> int | None:
        cls = classes.get(id(node))
        return _status_of(module, ast.Name(cls.name)) if cls is not None else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            callee = None if isinstance(func, ast.Attribute) and ast.unparse(func) == "super().__init__" else func
            status = _status_of(module, callee) if callee is not None else enclosing_status(node)
            for keyword in node.keywords:
                if keyword.arg != "code":
                    continue
                if isinstance(keyword.value, ast.JoinedStr):
                    built = ast.get_source_segment(text, keyword.value)
                    assert built in BUILT_CODES, f"{where(node)}: teach the scan the codes {built} makes"
                    for code in BUILT_CODES[built]:
                        yield CodeUse(code, "f-string", where(node), status)
                for code in _strings(keyword.value):
                    yield CodeUse(code, "keyword", where(node), status)
            if ast.unparse(func).endswith("error_body") and len(node.args) >= 2:
                first = node.args[0]
                literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, int) else None
                for code in _strings(node.args[1]):
                    yield CodeUse(code, "error_body", where(node), literal)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == "code" for target in targets):
                cls = classes.get(id(node))
                in_class_body = cls is not None and node in cls.body
                pattern = "class attribute" if in_class_body else "assignment"
                status = enclosing_status(node) if in_class_body else None
                for code in _strings(node.value):
                    yield CodeUse(code, pattern, where(node), status)
        elif isinstance(node, ast.Dict):
            fields = {
                key.value: value
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant)
            }
            if "code" in fields:
                given = fields.get("status")
                status = given.value if isinstance(given, ast.Constant) and isinstance(given.value, int) else None
                for code in _strings(fields["code"]):
                    yield CodeUse(code, "dict literal", where(node), status)


def error_codes_in_the_code() -> list[CodeUse]:
    """Every error code the code base answers with, however it is written: ``code="…"`` arguments (and
    f-strings, through ``BUILT_CODES``), ``code = "…"`` class attributes and assignments, ``{"code": "…"}``
    bodies built by hand, ``error_body(status, "…", …)``, and the codes of the framework's statuses."""
    uses = [CodeUse(code, "HTTP_CODES", "service/errors.py", status) for status, code in HTTP_CODES.items()]
    for source in sorted((ROOT / "service").rglob("*.py")):
        if not str(source.relative_to(ROOT)).startswith(NOT_ERROR_ANSWERS):
            uses.extend(_uses_in(source))
    return uses


def test_the_code_scan_finds_codes_however_they_are_written() -> None:
    found: dict[str, set[str]] = {}
    for use in error_codes_in_the_code():
        found.setdefault(use.pattern, set()).add(use.code)
    assert {"subject_exists", "invalid_idempotency_key", "link_expired", "attestation_required"} <= found["keyword"]
    assert {"code_missing", "code_expired", "code_wrong", "code_locked"} <= found["f-string"]
    assert {"invalid_cursor", "state_changed", "recently_declined", "json_too_deep"} <= found["class attribute"]
    assert {"malformed_json"} <= found["assignment"]
    assert {"service_unavailable"} <= found["dict literal"]  # the verification endpoint's 503 deny
    assert {"database_unavailable", "service_unavailable", "conflict"} <= found["error_body"]
    assert {"method_not_allowed", "payload_too_large"} <= found["HTTP_CODES"]
    assert not {"door_access", "sms_rejected", "sms_invalid_number"} & set().union(*found.values())


def test_every_error_code_in_the_code_is_documented() -> None:
    """``ERROR_CODES`` (and so the catalogue, the README and the spec) is exactly what the code answers."""
    used = {use.code for use in error_codes_in_the_code()}
    assert used <= set(ERROR_CODES), f"add to ERROR_CODES and the catalogue: {sorted(used - set(ERROR_CODES))}"
    assert set(ERROR_CODES) <= used, f"nothing answers these any more: {sorted(set(ERROR_CODES) - used)}"


def test_every_code_answers_the_status_the_catalogue_gives() -> None:
    for use in error_codes_in_the_code():
        if use.status is not None:
            assert CATALOGUE[use.code].status == use.status, (use.where, use.code, use.status)


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
