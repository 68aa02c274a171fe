"""Operators (issue 14): production by default and refusing its unsafe defaults, and a command line of our own."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from flask import Flask

from service.cli import cli, served_settings
from service.config import DEFAULTS, production_problems
from service.db.migrate import migrations_folder
from service.keys.crypto import generate_data_key
from service.keys.tokens import ensure_key_file, generate_private_key_pem

BIN = Path(sys.executable).parent / "consent-gate"
#: What production refuses when nothing is set, and the words naming each.
UNSAFE_DEFAULTS = ("SIGNING_KEY_FILE", "DATA_KEY", "PUBLIC_URL", "DATABASE_URL", "SMS_PROVIDER is console")


def bare_environment(**settings: str) -> dict[str, str]:
    """The process environment without any CONSENT_GATE_ setting, then ``settings`` (names without prefix)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONSENT_GATE_")}
    env.update({f"CONSENT_GATE_{name}": value for name, value in settings.items()})
    return env


def consent_gate(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def production_settings(tmp_path: Path) -> dict[str, str]:
    """Everything production asks for, for real: a provisioned key file, a data key, https, a database, SMS."""
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(generate_private_key_pem())
    return {
        "ENV": "production",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SIGNING_KEY_FILE": str(key_file),
        "DATA_KEY": generate_data_key(),
        "PUBLIC_URL": "https://consent.example",
        "DATABASE_URL": f"sqlite:///{tmp_path}/production.sqlite3",
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_FROM": "+8613800000000",
    }


def test_serve_alone_runs_as_production_and_refuses_naming_every_unsafe_default(tmp_path: Path) -> None:
    assert DEFAULTS["ENV"] == "production"
    result = consent_gate("serve", env=bare_environment(INSTANCE_PATH=str(tmp_path / "instance")))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: refusing to start in production")
    for named in UNSAFE_DEFAULTS:
        assert named in result.stderr
    assert "CONSENT_GATE_ENV=development" in result.stderr  # the way out, on one's own machine
    assert not (tmp_path / "instance" / "signing-key.pem").exists()  # no key generated in production
    # Every command refuses alike: an operator's environment is the same for all of them.
    upgrade = consent_gate("db", "upgrade", env=bare_environment(INSTANCE_PATH=str(tmp_path / "instance")))
    assert (upgrade.returncode, upgrade.stderr) == (2, result.stderr)


def test_production_names_only_what_is_wrong(tmp_path: Path) -> None:
    good = production_settings(tmp_path)
    assert production_problems({**DEFAULTS, **good}) == []
    generated = tmp_path / "generated.pem"
    ensure_key_file(str(generated), allow_generate=True)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"SIGNING_KEY_FILE": str(tmp_path / "absent.pem")}, "absent.pem does not exist"),
        ({"SIGNING_KEY_FILE": str(generated)}, "was generated for development"),
        ({"DATA_KEY": "c2hvcnQ="}, "DATA_KEY is unusable"),
        ({"PUBLIC_URL": "http://consent.example"}, "PUBLIC_URL must be an https address"),
        ({"PUBLIC_URL": "https://"}, "PUBLIC_URL must be an https address"),
        ({"SMS_PROVIDER": "console"}, "SMS_PROVIDER is console"),
        ({"TWILIO_FROM": None}, "TWILIO_FROM is not set"),
    ]
    for change, named in cases:
        problems = production_problems({**DEFAULTS, **good, **change})
        assert len(problems) == 1 and named in problems[0], (change, problems)
    hmac_secret = tmp_path / "hmac.pem"
    hmac_secret.write_text("a-shared-hmac-secret-of-32-bytes!!")
    [problem] = production_problems({**DEFAULTS, **good, "SIGNING_KEY_FILE": str(hmac_secret)})
    assert "holds no usable ES256 key" in problem


def test_production_with_everything_set_migrates_and_refuses_a_plain_http_address(tmp_path: Path) -> None:
    settings = production_settings(tmp_path)
    upgraded = consent_gate("db", "upgrade", env=bare_environment(**settings))
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.startswith("database at head (")
    plain = consent_gate("db", "upgrade", env=bare_environment(**{**settings, "PUBLIC_URL": "http://consent.example"}))
    assert plain.returncode == 2
    assert "PUBLIC_URL must be an https address" in plain.stderr
    assert "DATA_KEY" not in plain.stderr


@pytest.mark.committed
def test_db_upgrade_prints_one_line_unless_verbose(app: Flask) -> None:
    env = bare_environment(
        ENV="test", DATABASE_URL=app.config["DATABASE_URL"], INSTANCE_PATH=app.config["INSTANCE_PATH"]
    )
    head = ScriptDirectory(migrations_folder()).get_current_head()
    quiet = consent_gate("db", "upgrade", env=env)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, f"database at head ({head})\n", "")
    verbose = consent_gate("db", "upgrade", "--verbose", env=env)
    assert verbose.returncode == 0
    assert "alembic" in verbose.stderr


def test_help_and_version_are_ours_and_need_no_database(tmp_path: Path) -> None:
    # Production with nothing set and an unreachable database: help and version still answer.
    env = bare_environment(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    version = consent_gate("--version", env=env)
    assert (version.returncode, version.stdout) == (0, f"consent-gate {metadata.version('consent-gate')}\n")
    shown = consent_gate("--help", env=env)
    assert shown.returncode == 0, shown.stderr
    commands = shown.stdout.split("Commands:")[1]
    for ours in ("audit", "db", "keys", "openapi", "orgs", "report", "serve", "subjects", "sweep"):
        assert f"\n  {ours} " in commands
    for flasks in ("limiter", "--app", "--debug", "--env-file", "routes", "shell", "run "):
        assert flasks not in shown.stdout
    assert consent_gate("keys", "--help", env=env).returncode == 0


def test_serve_refuses_numbers_out_of_range() -> None:
    runner = CliRunner()
    for args in (["--workers", "0"], ["--threads", "0"], ["--port", "0"], ["--port", "65536"]):
        result = runner.invoke(cli, ["serve", *args])
        assert result.exit_code == 2, args
        assert "Invalid value" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.committed
def test_bad_input_is_an_error_message_not_a_traceback(app: Flask, tmp_path: Path) -> None:
    env = bare_environment(
        ENV="test", DATABASE_URL=app.config["DATABASE_URL"], INSTANCE_PATH=app.config["INSTANCE_PATH"]
    )
    cases = [
        (["orgs", "create", "", "--contact", "privacy@example.org"], 1, "an organization needs a name"),
        (["orgs", "create", "Sunrise", "--contact", " "], 1, "contact"),
        (["keys", "create", "no-such-org", "--scopes", "admin"], 1, "organization no-such-org does not exist"),
        (["db", "upgrade"], 2, "DATA_KEY must"),
    ]
    for args, code, message in cases:
        wrong_key = {"CONSENT_GATE_DATA_KEY": "not a key"} if args == ["db", "upgrade"] else {}
        result = consent_gate(*args, env={**env, **wrong_key})
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    wrong_url = consent_gate("sweep", env={**env, "CONSENT_GATE_DATABASE_URL": "no database here"})
    assert wrong_url.returncode == 2
    assert wrong_url.stderr.startswith("Error: CONSENT_GATE_DATABASE_URL")


def test_in_development_guardian_links_point_to_the_served_address(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CONSENT_GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONSENT_GATE_ENV", "development")
    assert served_settings("127.0.0.1", 8123) == {"PUBLIC_URL": "http://127.0.0.1:8123"}
    assert served_settings("0.0.0.0", 8123) == {"PUBLIC_URL": "http://127.0.0.1:8123"}  # noqa: S104
    assert served_settings("::1", 8123) == {"PUBLIC_URL": "http://[::1]:8123"}
    monkeypatch.setenv("CONSENT_GATE_PUBLIC_URL", "http://192.168.1.20:8123")
    assert served_settings("0.0.0.0", 8123) == {}  # noqa: S104 (an explicit PUBLIC_URL wins)
    monkeypatch.delenv("CONSENT_GATE_PUBLIC_URL")
    monkeypatch.setenv("CONSENT_GATE_ENV", "production")
    assert served_settings("127.0.0.1", 8123) == {}  # production never guesses it
