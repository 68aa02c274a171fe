"""The consent-gate command: the CLI contract of DESIGN.md, and serving with gunicorn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.server import ConsentGateServer, worker_app

BIN = Path(sys.executable).parent / "consent-gate"
METRICS_TOKEN = "metrics-token-of-the-served-app"

#: Other processes use the database: every test here commits for real.
pytestmark = pytest.mark.committed


def cli_env(app: Flask) -> dict[str, str]:
    return {
        **os.environ,
        "CONSENT_GATE_DATABASE_URL": app.config["DATABASE_URL"],
        "CONSENT_GATE_INSTANCE_PATH": app.config["INSTANCE_PATH"],
        "CONSENT_GATE_ENV": "test",
        "CONSENT_GATE_PUBLIC_URL": app.config["PUBLIC_URL"],
        "CONSENT_GATE_METRICS_TOKEN": METRICS_TOKEN,
    }


def run_cli(app: Flask, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=cli_env(app), capture_output=True, text=True, timeout=60, check=False)


def test_orgs_and_keys_create_print_json(app: Flask) -> None:
    org = run_cli(app, "orgs", "create", "Sunrise School", "--contact", "privacy@sunrise.example", "--json")
    assert org.returncode == 0, org.stderr
    org_id = json.loads(org.stdout)["id"]
    key = run_cli(app, "keys", "create", org_id, "--scopes", "admin,consents,verify", "--json")
    assert key.returncode == 0, key.stderr
    created = json.loads(key.stdout)
    assert set(created) == {"id", "key"}
    assert created["key"].startswith("cg_")
    # The key works at once, with all three scopes.
    client = app.test_client()
    assert client.get("/v1/purposes", headers={"Authorization": f"Bearer {created['key']}"}).status_code == 200
    bad = run_cli(app, "keys", "create", org_id, "--scopes", "root", "--json")
    assert bad.returncode != 0
    unknown = run_cli(app, "keys", "create", "no-such-org", "--scopes", "admin", "--json")
    assert unknown.returncode != 0


def test_db_upgrade_is_idempotent(app: Flask) -> None:
    result = run_cli(app, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "head" in result.stdout


def test_serve_sizes_each_workers_pool_for_its_threads(
    app: Flask, runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ConsentGateServer] = []
    monkeypatch.setattr(ConsentGateServer, "run", lambda server: started.append(server))  # configured, not started
    with app.app_context():  # as FlaskGroup runs it
        result = runner.invoke(args=["serve", "--workers", "3", "--threads", "16"])
    assert result.exit_code == 0, result.output
    [server] = started
    assert (server.cfg.workers, server.cfg.threads, server.cfg.worker_class_str) == (3, 16, "gthread")
    for name, value in cli_env(app).items():  # what a worker reads from its environment
        monkeypatch.setenv(name, value)
    worker = worker_app(server.app_config)  # as each worker builds its app
    try:
        assert worker.config["WORKER_THREADS"] == 16
        assert worker.extensions["consent_gate.engine"].pool.size() == worker.config["DB_POOL_SIZE"] == 34
    finally:
        worker.extensions["consent_gate.engine"].dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(base: str, method: str, path: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _start_server(app: Flask, log_path: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=cli_env(app),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):  # readiness wait, not a timing assertion
        try:
            if call(base, "GET", "/readyz")[0] == 200:
                return process, base
        except OSError:
            pass
        if process.poll() is not None:
            raise AssertionError(log_path.read_text())
        time.sleep(0.05)
    raise AssertionError("server did not become ready")


@pytest.fixture()
def served(app: Flask, tmp_path: Path) -> Iterator[str]:
    process, base = _start_server(app, tmp_path / "server.log", workers=2)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture()
def two_servers(app: Flask, tmp_path: Path) -> Iterator[tuple[str, str]]:
    first, first_base = _start_server(app, tmp_path / "first.log", workers=1)
    second, second_base = _start_server(app, tmp_path / "second.log", workers=1)
    try:
        yield first_base, second_base
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=20)


def _journey_key(app: Flask, base: str) -> tuple[str, dict[str, Any]]:
    org_id = json.loads(run_cli(app, "orgs", "create", "Gate Co", "--contact", "help@gate.example", "--json").stdout)[
        "id"
    ]
    created = run_cli(app, "keys", "create", org_id, "--scopes", "admin,consents,verify", "--json")
    key = json.loads(created.stdout)["key"]
    purpose = {
        "code": "door_access",
        "name": {"zh-CN": "门禁", "en": "Door"},
        "description": {"zh-CN": "刷脸开门", "en": "Door by face"},
        "category": "access_control",
        "necessity": {"zh-CN": "人多", "en": "n"},
        "alternative": {"zh-CN": "刷卡开门", "en": "card"},
        "processing_method": {"zh-CN": "比对后删除", "en": "compared, then deleted"},
        "rights_impact": {"zh-CN": "可随时撤回", "en": "withdraw at any time"},
        "capture": "personal_device",
        "retention_days": 30,
        "notice": {"zh-CN": "我们刷脸开门", "en": "We open doors by face"},
    }
    assert call(base, "POST", "/v1/purposes", key, purpose)[0] == 201
    assessment = {
        "purposes": ["door_access"],
        "conducted_at": date.today().isoformat(),
        "lawfulness_necessity": "Door access by face is lawful with separate consent; a card is offered.",
        "rights_impact": "A face template is processed; anyone may refuse and use the card instead.",
        "security_risks": "Templates could leak from terminals or be matched against other databases.",
        "safeguards": "On-device templates, encrypted transport, 90-day retention, no transmission.",
        "conclusion": "Proceed: the risks are low and the safeguards fit them.",
    }
    assert call(base, "POST", "/v1/assessments", key, assessment)[0] == 201
    status, subject = call(base, "POST", "/v1/subjects", key, {"external_ref": "e-1", "birth_date": "1990-05-01"})
    assert status == 201
    evidence = {"method": "button", "channel": "kiosk", "locale": "en"}
    status, consent = call(
        base,
        "POST",
        "/v1/consents",
        key,
        {"subject_id": subject["id"], "purpose": "door_access", "notice_version": 1, "evidence": evidence},
    )
    assert status == 201
    return key, consent


def test_two_app_processes_on_one_database(app: Flask, two_servers: tuple[str, str]) -> None:
    first, second = two_servers
    key, consent = _journey_key(app, first)
    ask = {"purpose": "door_access", "token": consent["token"]}
    assert call(second, "POST", "/v1/verifications", key, ask)[1]["decision"] == "allow"
    assert call(first, "POST", f"/v1/consents/{consent['id']}/revoke", key, {})[0] == 200
    answer = call(second, "POST", "/v1/verifications", key, ask)[1]
    assert (answer["decision"], answer["reason"]) == ("deny", "revoked")


def test_metrics_add_up_across_gunicorn_workers(app: Flask, served: str) -> None:
    for _ in range(12):
        call(served, "GET", "/healthz")
    request = urllib.request.Request(served + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    counted = [
        line
        for line in text.splitlines()
        if line.startswith('consent_gate_requests_total{method="GET",route="/healthz",status="200"}')
    ]
    assert counted and float(counted[0].split()[-1]) >= 12


def test_serve_with_gunicorn_then_revoke_is_seen_by_every_worker(app: Flask, served: str) -> None:
    key, consent = _journey_key(app, served)
    ask = {"purpose": "door_access", "token": consent["token"]}
    assert all(call(served, "POST", "/v1/verifications", key, ask)[1]["decision"] == "allow" for _ in range(6))
    assert call(served, "POST", f"/v1/consents/{consent['id']}/revoke", key, {})[0] == 200
    answers = [call(served, "POST", "/v1/verifications", key, ask)[1] for _ in range(20)]
    assert all((a["decision"], a["reason"]) == ("deny", "revoked") for a in answers)
