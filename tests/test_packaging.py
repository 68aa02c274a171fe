"""A wheel install, not the source tree: it migrates, serves, and carries every module, template and migration."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from service.models import StatusList

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.packaging


def shipped(root: Path, folder: str, prefix: str) -> set[str]:
    """The files of the source tree's ``folder`` that belong in the wheel, named as the wheel names them."""
    return {
        prefix + path.relative_to(root / folder).as_posix()
        for path in (root / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet", "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("consent_gate-*.whl")
    return built


def test_the_wheel_carries_every_module_template_and_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = (
        shipped(ROOT, "service", "service/")
        | shipped(ROOT, "schemas", "schemas/")
        | shipped(ROOT, "migrations", "service/migrations/")
    )
    assert expected - names == set(), "add the package to pyproject's packages, or the file to its package-data"
    assert "service/migrations/script.py.mako" in names
    assert not any(name.startswith(("tests/", "migrations/", "bench/")) for name in names)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_installed_wheel_migrates_and_serves_away_from_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    # A fresh virtual environment, made from the interpreter the project's own was made from, and the wheel
    # installed into it with its dependencies, as an operator would (pip's cache makes that quick).
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    target = venv
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONSENT_GATE_")}
    env.update(
        {
            "CONSENT_GATE_ENV": "development",
            "CONSENT_GATE_INSTANCE_PATH": str(tmp_path / "instance"),
            "CONSENT_GATE_DATABASE_URL": f"sqlite:///{tmp_path}/wheel.sqlite3",
            "XDG_RUNTIME_DIR": str(run_dir),  # where gunicorn puts its control socket by default
        }
    )
    code = "import service, service.db.migrate as m; print(service.__file__, m.migrations_folder())"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(path).is_relative_to(target) for path in where), where
    command = str(target / "bin" / "consent-gate")
    upgraded = subprocess.run(
        [command, "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("database at head (")
    org = subprocess.run(
        [command, "orgs", "create", "Wheel School", "--contact", "privacy@wheel.example", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    engine = create_engine(env["CONSENT_GATE_DATABASE_URL"])
    with Session(engine) as session:  # a status list names its own URL, under PUBLIC_URL
        status_list = StatusList(org_id=json.loads(org.stdout)["id"])
        session.add(status_list)
        session.commit()
        list_id = status_list.id
    engine.dispose()

    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [command, "serve", "--port", str(port), "--workers", "1"], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):  # readiness wait, not a timing assertion
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.05)
        else:
            raise AssertionError("the installed server did not answer")
        with urllib.request.urlopen(f"{base}/v1/status-lists/{list_id}", timeout=5) as response:
            payload = response.read().decode().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        # In development, without PUBLIC_URL, links point to the address served, in the workers too.
        assert claims["sub"] == f"{base}/v1/status-lists/{list_id}"
        # gunicorn's control socket (25.1+) is the instance's own, named by its port, never the one
        # per-user path that every instance on the host would share.
        asks = "import gunicorn.config as c; print(any(s.name == 'control_socket' for s in c.KNOWN_SETTINGS))"
        installed_gunicorn = subprocess.run(
            [str(venv / "bin" / "python"), "-c", asks], env=env, capture_output=True, text=True, check=True
        )
        has_control_socket = installed_gunicorn.stdout.strip() == "True"
        control_socket = tmp_path / "instance" / f"gunicorn-{port}.ctl"
        if has_control_socket:
            for _ in range(200):  # the master opens it once its workers run: waiting, not timing
                if control_socket.is_socket():
                    break
                time.sleep(0.05)
            assert control_socket.is_socket(), (tmp_path / "serve.log").read_text()
        assert list(run_dir.iterdir()) == []
    finally:
        server.terminate()
        server.wait(timeout=30)
