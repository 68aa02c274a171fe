"""A local HTTP server that answers like Twilio's Messages API, for the official twilio client in tests."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    path: str
    username: str
    password: str
    form: dict[str, str]


@dataclass
class FakeTwilio:
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
