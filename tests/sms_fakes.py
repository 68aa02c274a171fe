"""Local HTTP servers that answer like Alibaba Cloud's and Tencent Cloud's SMS APIs, for their official SDKs.

Each records what the SDK sent (decoded: the SendSms parameters, the headers) and answers from a script:
an answer given as ``(HTTP status, error code)`` in order, then success.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class ProviderRequest:
    method: str
    path: str
    headers: dict[str, str]
    #: The API's parameters as the provider reads them: Alibaba Cloud's query and form fields, Tencent
    #: Cloud's JSON body.
    params: dict[str, Any]


@dataclass
class FakeProvider:
    received: list[ProviderRequest] = field(default_factory=list)
    #: Answers to give, in order, before success: (HTTP status, the provider's error code).
    script: list[tuple[int, str]] = field(default_factory=list)
    base_url: str = ""

    def next_answer(self) -> tuple[int, str] | None:
        return self.script.pop(0) if self.script else None


@dataclass
class FakeAliyun(FakeProvider):
    """Alibaba Cloud ``dysmsapi`` 2017-05-25: ``SendSms`` answers ``{"Code": "OK", "BizId": …}``."""

    access_key_id: str = "LTAI-test-key-id"
    access_key_secret: str = "test-key-secret"

    def answer(self, request: ProviderRequest) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()
        if request.params.get("Action") != "SendSms" or request.params.get("Version") != "2017-05-25":
            return 404, {"Code": "InvalidAction.NotFound", "Message": "no such action", "RequestId": request_id}
        if f"Credential={self.access_key_id}" not in request.headers.get("authorization", "") and (
            request.params.get("AccessKeyId") != self.access_key_id
        ):
            return 400, {"Code": "InvalidAccessKeyId.NotFound", "Message": "no such key", "RequestId": request_id}
        scripted = self.next_answer()
        if scripted is not None:
            status, code = scripted
            return status, {"Code": code, "Message": f"scripted {code}", "RequestId": request_id}
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"{uuid.uuid4().int % 10**18}^0", "RequestId": request_id}


@dataclass
class FakeTencent(FakeProvider):
    """Tencent Cloud ``sms`` 2021-01-11: ``SendSms`` answers a ``SendStatusSet``, one status a number.

    A scripted answer with status 200 is a per-number ``Code`` in the set (how Tencent reports an invalid
    number); another status is an ``Error`` of the whole call, given with HTTP 200 as Tencent does
    (``status`` 500 answers HTTP 500 without a body).
    """

    secret_id: str = "AKID-test-secret-id"
    secret_key: str = "test-secret-key"

    def answer(self, request: ProviderRequest) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())
        action = (request.headers.get("x-tc-action"), request.headers.get("x-tc-version"))
        if action != ("SendSms", "2021-01-11"):
            return 200, _tencent_error("InvalidAction", request_id)
        if f"Credential={self.secret_id}/" not in request.headers.get("authorization", ""):
            return 200, _tencent_error("AuthFailure.SecretIdNotFound", request_id)
        scripted = self.next_answer()
        numbers = request.params.get("PhoneNumberSet") or []
        if scripted is not None:
            status, code = scripted
            if status == 500:
                return 500, {}
            if status != 200:
                return 200, _tencent_error(code, request_id)
            statuses = [_tencent_status(number, code) for number in numbers]
            return 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}
        statuses = [_tencent_status(number, "Ok") for number in numbers]
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}


def _tencent_error(code: str, request_id: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": f"scripted {code}"}, "RequestId": request_id}}


def _tencent_status(number: str, code: str) -> dict[str, Any]:
    return {
        "SerialNo": f"5000:{uuid.uuid4().int % 10**20}" if code == "Ok" else "",
        "PhoneNumber": number,
        "Fee": 1 if code == "Ok" else 0,
        "SessionContext": "",
        "Code": code,
        "Message": "send success" if code == "Ok" else f"scripted {code}",
        "IsoCode": "CN",
    }


def serve(fake: FakeAliyun | FakeTencent) -> Iterator[Any]:
    """Serve ``fake`` on a free local port for the duration of a fixture."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            headers = {name.lower(): value for name, value in self.headers.items()}
            split = urlsplit(self.path)
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(split.query).items()}
            if headers.get("content-type", "").startswith("application/json"):
                params.update(json.loads(body or "{}"))
            else:
                params.update({k: v[0] for k, v in parse_qs(body).items()})
            if isinstance(fake, FakeAliyun):  # the ACS3 signature puts action and version in headers
                params.setdefault("Action", headers.get("x-acs-action"))
                params.setdefault("Version", headers.get("x-acs-version"))
            request = ProviderRequest("POST", split.path, headers, params)
            fake.received.append(request)
            status, payload = fake.answer(request)
            data = json.dumps(payload).encode() if payload else b""
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
