"""The README's shell blocks, run as a reader would run them, against a served instance.

Every ```sh block of README.md runs, in the order of the document, in one bash session (so a block may use
what an earlier one defined), against ``consent-gate serve`` on a fresh instance folder. The only block
left out is the one of "Two commands" (``make run`` and ``make test``: CI itself runs the second).

``curl`` is wrapped to record each answer. Then every answer must be a success, unless the README says
otherwise, and a comment that shows an answer is checked against the answer just before it:

- ``# 202 {...}`` or ``... # 200, idempotent``: the status;
- every ``"key": value`` pair the comment shows (a string, number, true, false or null) must be in the
  answer, at any depth; a string ending in ``…`` or ``...`` is a prefix.

So the walkthrough cannot drift from the product: a renamed field, a changed status or a new required
field fails here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent / "consent-gate"
#: The address the README's blocks name; the test serves elsewhere and rewrites it.
README_ADDRESS = "http://127.0.0.1:8000"
#: Sections whose blocks are not run, and why.
NOT_RUN = {"Two commands": "make run and make test: CI runs the second, and the first serves until stopped"}

EXPECTED_ANSWER = re.compile(r"^#\s*(?:(\d{3})\b.*|\{.*)$")
TRAILING_STATUS = re.compile(r"""\s#\s*(\d{3})\b[^"']*$""")
PAIR = re.compile(r'"([\w-]+)":\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)')

CURL_WRAPPER = r"""
set -euo pipefail
curl() {
  local body code
  body=$(mktemp)
  code=$(command curl -sS -o "$body" -w '%{http_code}' "$@")
  { printf 'RESPONSE %s ' "$code"; base64 -w0 "$body"; printf '\n'; } >> "$README_LOG"
  cat "$body"
  rm -f "$body"
}
__expect() { printf 'EXPECT %s %s\n' "$1" "${2:-}" >> "$README_LOG"; }
"""


@dataclass(frozen=True)
class Block:
    section: str
    line: int
    text: str


def shell_blocks(markdown: str) -> list[Block]:
    """Every ```sh block with the heading of the section it is in."""
    blocks: list[Block] = []
    section = ""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.strip() in {"```sh", "```bash", "```shell"}:
            start = index + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            blocks.append(Block(section, start + 1, "\n".join(lines[start:end])))
            index = end
        index += 1
    return blocks


def _expectation(status: str | None, comment: str) -> str:
    encoded = base64.b64encode(comment.encode()).decode()
    return f"__expect {status or '-'} {encoded}"


def script_of(blocks: list[Block], address: str) -> str:
    """The blocks as one bash script, with a check after each command whose answer the README shows."""
    out = [CURL_WRAPPER]
    for block in blocks:
        out.append(f"# README.md line {block.line} ({block.section})")
        lines = block.text.replace(README_ADDRESS, address).splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            shown = EXPECTED_ANSWER.match(line.strip())
            if shown:
                comment = [line.strip().lstrip("#").strip()]
                while index + 1 < len(lines) and lines[index + 1].strip().startswith("#  "):
                    index += 1
                    comment.append(lines[index].strip().lstrip("#").strip())
                out.append(_expectation(shown.group(1), " ".join(comment)))
            else:
                out.append(line)
                trailing = TRAILING_STATUS.search(line)
                if trailing and not line.lstrip().startswith("#"):
                    out.append(_expectation(trailing.group(1), ""))
            index += 1
    return "\n".join(out) + "\n"


def _contains(answer: Any, key: str, value: Any) -> bool:
    if isinstance(answer, dict):
        if key in answer and _matches(answer[key], value):
            return True
        return any(_contains(inner, key, value) for inner in answer.values())
    if isinstance(answer, list):
        return any(_contains(inner, key, value) for inner in answer)
    return False


def _matches(actual: Any, shown: Any) -> bool:
    if isinstance(shown, str) and isinstance(actual, str):
        for ellipsis in ("…", "..."):
            if shown.endswith(ellipsis):
                return actual.startswith(shown[: -len(ellipsis)])
    return bool(actual == shown and type(actual) is type(shown))


@dataclass
class Answer:
    status: int
    body: str


def check_log(log: str) -> list[str]:
    """What went wrong: answers that failed unannounced, and answers unlike what the README shows."""
    problems: list[str] = []
    last: Answer | None = None
    announced = False
    for entry in log.splitlines():
        kind, first, second = [*entry.split(" ", 2), "", ""][:3]
        if kind == "RESPONSE":
            if last is not None and last.status >= 400 and not announced:
                problems.append(f"unexpected {last.status}: {last.body}")
            last, announced = Answer(int(first), base64.b64decode(second).decode()), False
            continue
        if last is None:
            problems.append("an answer is shown before any command")
            continue
        comment = base64.b64decode(second).decode()
        announced = True
        if first != "-" and int(first) != last.status:
            problems.append(f"README shows {first}, the answer was {last.status}: {last.body}")
        pairs = PAIR.findall(comment)
        if pairs:
            body = json.loads(last.body)
            for key, raw in pairs:
                if not _contains(body, key, json.loads(raw)):
                    problems.append(f'README shows "{key}": {raw}, the answer was {last.body}')
    if last is not None and last.status >= 400 and not announced:
        problems.append(f"unexpected {last.status}: {last.body}")
    return problems


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture()
def served_instance(tmp_path: Path, unused_port: int) -> Iterator[tuple[str, dict[str, str]]]:
    port = unused_port
    base = f"http://127.0.0.1:{port}"
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("CONSENT_GATE_")},
        "CONSENT_GATE_ENV": "development",
        "CONSENT_GATE_INSTANCE_PATH": str(tmp_path / "instance"),
        "PATH": f"{BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # No PUBLIC_URL: in development the links follow the served address, which the README's access link
    # (``"url": "http://127.0.0.1:8000/p/…"``, rewritten to this port) shows.
    subprocess.run([str(BIN), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(400):  # waiting for readiness, not a timing assertion
            if _ready(base):
                break
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_every_shell_block_of_the_readme_runs_and_answers_as_shown(
    served_instance: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served_instance
    blocks = [block for block in shell_blocks(README.read_text(encoding="utf-8")) if block.section not in NOT_RUN]
    assert len(blocks) >= 5, "the README's walkthrough and examples are ```sh blocks"
    work = tmp_path / "reader"
    work.mkdir()
    (work / ".venv").symlink_to(BIN.parent.parent)  # the README names .venv/bin/consent-gate
    (work / "signed-form.pdf").write_bytes(b"%PDF-1.4 the guardian's signed form\n")
    script = work / "readme.sh"
    script.write_text(script_of(blocks, base), encoding="utf-8")
    log = tmp_path / "answers.log"
    ran = subprocess.run(
        ["bash", str(script)],
        cwd=work,
        # The README's own lines choose the environment (``export CONSENT_GATE_ENV=development``); only the
        # instance folder is the test's, instead of the checkout's ``instance/``.
        env={**{k: v for k, v in env.items() if k != "CONSENT_GATE_ENV"}, "README_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    answers = log.read_text() if log.exists() else ""
    assert ran.returncode == 0, f"{ran.stderr}\n{ran.stdout[-3000:]}\n{check_log(answers)}"
    assert check_log(answers) == []
    assert answers.count("RESPONSE ") >= 10


def test_the_checker_catches_drift() -> None:
    """The check itself: a changed value, a missing key, a wrong status, an unannounced failure."""

    def entry(kind: str, first: str, payload: str) -> str:
        return f"{kind} {first} {base64.b64encode(payload.encode()).decode()}"

    allow = entry("RESPONSE", "200", '{"decision": "allow", "reason": "consent_active", "n": {"url": "http://x/p/1"}}')
    assert check_log("\n".join([allow, entry("EXPECT", "-", '{"decision": "allow", "url": "http://x/p/…"}')])) == []
    assert check_log("\n".join([allow, entry("EXPECT", "-", '{"decision": "deny"}')]))
    assert check_log("\n".join([allow, entry("EXPECT", "-", '{"verdict": "allow"}')]))
    assert check_log("\n".join([allow, entry("EXPECT", "201", "")]))
    assert check_log(entry("RESPONSE", "422", '{"code": "validation_error"}'))
    assert check_log("\n".join([entry("RESPONSE", "409", "{}"), entry("EXPECT", "409", "")])) == []
    script = script_of([Block("s", 1, 'curl -s $API/x  # 200, idempotent\n# 201 {"a": 1}\n#   "b": true}')], "http://y")
    assert "__expect 200 " in script
    assert _expectation("201", '201 {"a": 1} "b": true}') in script
