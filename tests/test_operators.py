"""Operators (issue 14): production by default and refusing its unsafe defaults, and a command line of our own."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from service import __version__
from service.cli import cli, metrics_folder, served_settings
from service.config import DEFAULTS, DEVELOPMENT_PUBLIC_URL, ConfigError, finalize, production_problems
from service.db.migrate import migrations_folder
from service.keys.crypto import DataProtector, generate_data_key
from service.keys.signing import rotate_key_file
from service.keys.tokens import ensure_key_file, generate_private_key_pem, load_key_set

ROOT = Path(__file__).resolve().parent.parent
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
    # How to make what is missing, on the lines that say it is missing.
    for line, command in (("SIGNING_KEY_FILE", "consent-gate keys init-signing"), ("DATA_KEY", "keys init-data-key")):
        [said] = [one for one in result.stderr.splitlines() if f"CONSENT_GATE_{line} " in one]
        assert command in said, said
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
        ({"METRICS_TOKEN": "m" * 31}, "METRICS_TOKEN has 31 characters: give at least 32"),
    ]
    for change, named in cases:
        problems = production_problems({**DEFAULTS, **good, **change})
        assert len(problems) == 1 and named in problems[0], (change, problems)
    assert production_problems({**DEFAULTS, **good, "METRICS_TOKEN": "m" * 32}) == []
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
    # flask-smorest's openapi group (print, list-config-prefixes) is not ours: only write is.
    openapi = consent_gate("openapi", "--help", env=env)
    assert openapi.stdout.split("Commands:")[1].split()[0] == "write"
    assert "print" not in openapi.stdout and "list-config-prefixes" not in openapi.stdout


def test_one_version_for_the_package_the_command_and_the_spec() -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    assert metadata.version("consent-gate") == __version__ == committed["info"]["version"]
    assert __version__.split(".")[0] == "2"  # the contract is v2 (its paths stay under /v1)


def _every_command(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _every_command(command, (*path, name))
        else:
            yield (*path, name)


def test_help_is_plain_text_for_operators() -> None:
    """No reStructuredText markup and no rule numbers of the regulation map: words an operator reads."""
    runner = CliRunner()
    shown = 0
    for path in _every_command(cli):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "``" not in result.output, (path, result.output)
        assert not re.search(r"\bR\d+\b", result.output), (path, result.output)
        shown += 1
    assert shown > 20


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


# --- Making production's keys ------------------------------------------------------------------------------


def test_keys_init_signing_makes_the_production_key_file_with_nothing_configured(tmp_path: Path) -> None:
    env = bare_environment()  # production, nothing set: every command needing the app would refuse
    path = tmp_path / "signing-key.pem"
    made = consent_gate("keys", "init-signing", str(path), env=env)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_set(str(path)).kid in made.stdout
    assert f"CONSENT_GATE_SIGNING_KEY_FILE={path}" in made.stderr
    settings = {**production_settings(tmp_path), "SIGNING_KEY_FILE": str(path)}
    assert production_problems({**DEFAULTS, **settings}) == []
    # Never over an existing file (a key in use, or a typo in the path): exit 1, the file untouched.
    before = path.read_bytes()
    again = consent_gate("keys", "init-signing", str(path), env=env)
    assert (again.returncode, path.read_bytes()) == (1, before)
    assert again.stderr.startswith("Error: ") and "already exists" in again.stderr
    nowhere = consent_gate("keys", "init-signing", str(tmp_path / "no-such-folder" / "key.pem"), env=env)
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("Error: cannot create")
    assert "Traceback" not in again.stderr + nowhere.stderr
    # With it, production runs the signing-key commands: rotate-signing adds a key in front.
    rotated = consent_gate("keys", "rotate-signing", env=bare_environment(**settings))
    assert rotated.returncode == 0, rotated.stderr
    assert len(load_key_set(str(path)).public_keys) == 2


def test_keys_init_data_key_prints_a_key_production_accepts(tmp_path: Path) -> None:
    env = bare_environment()
    printed = [consent_gate("keys", "init-data-key", env=env) for _ in range(2)]
    assert all(result.returncode == 0 for result in printed), printed
    keys = [result.stdout.strip() for result in printed]
    assert keys[0] != keys[1]
    assert len(base64.urlsafe_b64decode(keys[0])) == 32
    settings = production_settings(tmp_path)
    assert production_problems({**DEFAULTS, **settings, "DATA_KEY": keys[0]}) == []
    # `openssl rand -base64 32` (standard base64, + and /) is read as the same 32 bytes.
    raw = bytes(range(224, 256))
    standard = base64.b64encode(raw).decode()
    assert "+" in standard or "/" in standard
    url_safe = base64.urlsafe_b64encode(raw).decode()
    assert DataProtector(standard).lookup_hash("x") == DataProtector(url_safe).lookup_hash("x")


#: What ``openssl ecparam -name prime256v1`` writes before the key (the curve's OID).
EC_PARAMETERS_P256 = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"


def test_a_key_file_made_by_openssl_ecparam_is_accepted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sec1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    path = tmp_path / "openssl.pem"
    path.write_bytes(EC_PARAMETERS_P256 + sec1)  # as `openssl ecparam -name prime256v1 -genkey` writes it
    settings = production_settings(tmp_path)
    assert production_problems({**DEFAULTS, **settings, "SIGNING_KEY_FILE": str(path)}) == []
    keys = load_key_set(str(path))
    assert keys.public_keys[keys.kid].public_numbers() == key.public_key().public_numbers()
    rotated = rotate_key_file(str(path))
    assert len(rotated.public_keys) == 2 and keys.kid in rotated.public_keys
    assert b"EC PARAMETERS" not in path.read_bytes()
    parameters_only = tmp_path / "parameters.pem"
    parameters_only.write_bytes(EC_PARAMETERS_P256)
    [problem] = production_problems({**DEFAULTS, **settings, "SIGNING_KEY_FILE": str(parameters_only)})
    assert "holds no PEM private key" in problem
    if shutil.which("openssl"):  # the command itself, where it is installed
        made = tmp_path / "made-by-openssl.pem"
        subprocess.run(
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-out", str(made)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        assert production_problems({**DEFAULTS, **settings, "SIGNING_KEY_FILE": str(made)}) == []


# --- Settings refused instead of ignored -------------------------------------------------------------------


def test_a_malformed_rate_limit_is_refused_not_ignored(tmp_path: Path) -> None:
    for name, value in (
        ("RATE_LIMIT_API", "lots"),
        ("RATE_LIMIT_GUARDIAN", "60/fortnight"),
        ("RATE_LIMIT_PUBLIC", "-1/minute"),
        ("RATE_LIMIT_PEOPLE", "60 per"),
        ("RATE_LIMIT_VERIFY", "10/second;1000/hour"),  # the verification endpoint counts one limit
    ):
        with pytest.raises(ConfigError, match=f"CONSENT_GATE_{name} must be"):
            finalize({**DEFAULTS, "ENV": "test", name: value}, str(tmp_path))
    several = finalize({**DEFAULTS, "ENV": "test", "RATE_LIMIT_API": "10/second;1000/hour"}, str(tmp_path))
    assert several["RATE_LIMIT_API"] == "10/second;1000/hour"
    refused = consent_gate(
        "orgs", "list", env=bare_environment(ENV="development", INSTANCE_PATH=str(tmp_path), RATE_LIMIT_API="lots")
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("Error: CONSENT_GATE_RATE_LIMIT_API must be a rate limit")
    assert "Traceback" not in refused.stderr


def test_cli_errors_say_what_to_do_instead_of_a_traceback(fresh_url: str, tmp_path: Path, unused_port: int) -> None:
    env = bare_environment(ENV="test", DATABASE_URL=fresh_url, INSTANCE_PATH=str(tmp_path / "instance"))
    # A database never migrated: every command, serve included, says to migrate it.
    for args in (["orgs", "list"], ["sweep"], ["serve", "--port", str(unused_port)]):
        result = consent_gate(*args, env=env)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("Error: the database has no ") and "`consent-gate db upgrade`" in result.stderr
        assert "Traceback" not in result.stderr
    wrong = consent_gate("db", "upgrade", "--revision", "zzz", env=env)
    assert wrong.returncode == 1 and wrong.stderr.startswith("Error: cannot upgrade to 'zzz'"), wrong.stderr
    assert consent_gate("db", "upgrade", env=env).returncode == 0
    unknown = consent_gate("audit", "export", "--org", "nope", env=env)
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == "Error: organization nope does not exist\n"
    folder = tmp_path / "no-such-folder"
    nowhere = consent_gate("orgs", "list", env={**env, "CONSENT_GATE_DATABASE_URL": f"sqlite:///{folder}/cg.sqlite3"})
    assert nowhere.returncode == 2
    assert nowhere.stderr.startswith(f"Error: CONSENT_GATE_DATABASE_URL names a SQLite file in {folder}")
    assert "Traceback" not in nowhere.stderr + wrong.stderr + unknown.stderr


# --- serve: the address, the metrics folder, the control socket -------------------------------------------


def test_in_development_without_public_url_commands_use_the_address_last_served(tmp_path: Path) -> None:
    (tmp_path / "served-url").write_text("http://127.0.0.1:8123\n")
    development = finalize({**DEFAULTS, "ENV": "development"}, str(tmp_path))
    assert (development["PUBLIC_URL"], development["ISSUER"]) == ("http://127.0.0.1:8123",) * 2
    explicit = finalize({**DEFAULTS, "ENV": "development", "PUBLIC_URL": "http://192.168.1.20:8000"}, str(tmp_path))
    assert explicit["PUBLIC_URL"] == "http://192.168.1.20:8000"
    assert finalize({**DEFAULTS, "ENV": "test"}, str(tmp_path))["PUBLIC_URL"] == DEVELOPMENT_PUBLIC_URL


def _wait_until_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(400):  # waiting for readiness, not a timing assertion
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        assert server.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"the server did not become ready: {log.read_text()}")


def _gunicorn_has_a_control_socket() -> bool:
    from gunicorn.config import Config

    return "control_socket" in Config().settings


def test_served_in_development_the_cli_report_link_opens_on_the_port_served(tmp_path: Path, unused_port: int) -> None:
    instance = tmp_path / "instance"
    scratch = tmp_path / "tmp"  # the server's temporary folder, where its metrics folder goes
    scratch.mkdir()
    env = bare_environment(ENV="development", INSTANCE_PATH=str(instance))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["TMPDIR"] = str(scratch)
    assert consent_gate("db", "upgrade", env=env).returncode == 0
    org = consent_gate("orgs", "create", "Sunrise School", "--contact", "privacy@sunrise.example", env=env)
    assert org.returncode == 0, org.stderr
    base = f"http://127.0.0.1:{unused_port}"
    control_socket = instance / f"gunicorn-{unused_port}.ctl"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN), "serve", "--port", str(unused_port), "--workers", "2"], env=env, stdout=out, stderr=out
        )
    try:
        _wait_until_ready(base, server, log)
        assert (instance / "served-url").read_text().strip() == base
        link = consent_gate("report", "--link", env=env)  # another process, without PUBLIC_URL
        assert link.returncode == 0, link.stderr
        url = link.stdout.strip()
        assert url.startswith(f"{base}/report/"), url
        with urllib.request.urlopen(url, timeout=10) as page:  # signed for this address: it opens
            assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        [metrics] = scratch.iterdir()
        assert metrics.name.startswith("consent-gate-metrics-")
        if _gunicorn_has_a_control_socket():
            for _ in range(200):  # the master opens it once the workers run: waiting, not timing
                if control_socket.is_socket():
                    break
                time.sleep(0.05)
            assert control_socket.is_socket(), log.read_text()
            assert stat.S_IMODE(control_socket.stat().st_mode) == 0o600
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert list(scratch.iterdir()) == []  # the metrics folder went with the server
    assert not control_socket.exists()


def test_serve_clears_the_operators_metrics_folder_of_earlier_counts_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "metrics"
    chosen.mkdir()
    for name in ("counter_123.db", "histogram_9.db", "gauge_all_1.db", "notes.txt"):
        (chosen / name).write_text("left by an earlier run")
    (chosen / "counter_dir.db").mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(chosen))
    assert metrics_folder() is None  # the operator's: cleared, never removed
    assert sorted(path.name for path in chosen.iterdir()) == ["counter_dir.db", "notes.txt"]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # unset: a folder of our own, removed at the end
    made = metrics_folder()
    assert made is not None and Path(made).parent == scratch and os.environ["PROMETHEUS_MULTIPROC_DIR"] == made
