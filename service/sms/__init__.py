"""SMS providers: ``console`` (a JSON-lines outbox, the default), ``twilio``, ``aliyun`` and ``tencent``.

``console`` and ``twilio`` send a message's full text. Mainland China's providers (Alibaba Cloud SMS and
Tencent Cloud SMS, through their official SDKs) send only templates registered with them under a
registered signature: they send the template of the message's kind with its parameters (:class:`TextMessage`).

None logs a number, a link or a code: logs show the country code only (`+86 ***********`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from service.sms.phones import audit_mask, mask_phone

if TYPE_CHECKING:  # the domain imports this module; it needs no Flask
    from flask import Flask

log = logging.getLogger(__name__)

# twilio's HTTP client logs request bodies (links, codes) and numbers at INFO; keep it quiet.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


TWILIO_TIMEOUT_SECONDS = 10.0
#: Alibaba Cloud's and Tencent Cloud's SDKs wait this long too: a provider that hangs must not hold a worker.
DOMESTIC_TIMEOUT_SECONDS = 10

#: Each kind of message and the parameters its template takes. Tencent Cloud numbers a template's variables:
#: ``{1}``, ``{2}``… are these, in this order; Alibaba Cloud names them: ``${org}``, ``${when}``, ``${token}``…
#: Each appears once in its template (Alibaba Cloud refuses a variable used twice). A link is never a
#: parameter (Tencent Cloud refuses links in variables, Alibaba Cloud caps a variable at 35 characters): the
#: registered text carries the fixed part (``https://<host>/g/``) and ``token`` only the link's last 22
#: characters. The code's template takes the code alone; the signature names the sender.
TEMPLATE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "link": ("org", "when", "token"),
    "reconsent": ("org", "when", "token"),
    "code": ("code",),
    "withdrawal": ("org", "token"),
    "access": ("org", "when", "token"),
}


@dataclass(frozen=True)
class TextMessage:
    """One SMS: its full text, and its kind and parameters for providers that send registered templates.

    ``body`` is what ``console`` and ``twilio`` send. ``kind`` (a key of :data:`TEMPLATE_PARAMETERS`) and
    ``params`` (its parameters, as text) are what ``aliyun`` and ``tencent`` send. Every field may carry a
    link or a code: never log one.
    """

    body: str
    kind: str = ""
    params: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The message as JSON-ready data (to store it, encrypted, until it is sent)."""
        return {"body": self.body, "kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextMessage:
        return cls(body=str(data["body"]), kind=str(data.get("kind") or ""), params=dict(data.get("params") or {}))

    def template_values(self) -> list[str]:
        """The parameters of this kind's template, in order; :class:`SmsError` if one is missing."""
        names = TEMPLATE_PARAMETERS.get(self.kind)
        params = dict(self.params)
        if "token" not in params and "url" in params:  # queued before the templates took the token alone
            params["token"] = str(params["url"]).rstrip("/").rsplit("/", 1)[-1]
        if names is None or any(name not in params for name in names):
            raise SmsError("sms_rejected", retryable=False, detail=f"no template parameters for kind {self.kind!r}")
        return [str(params[name]) for name in names]


def as_text_message(message: TextMessage | str) -> TextMessage:
    """A plain text (the providers' former argument) as a message without template parameters."""
    return message if isinstance(message, TextMessage) else TextMessage(body=message)


class SmsError(Exception):
    """The message was not sent. ``code`` is stable; ``retryable`` says whether trying later may help."""

    def __init__(self, code: str, *, retryable: bool, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.retryable = retryable


class SmsProvider(Protocol):
    def send(self, to: str, message: TextMessage) -> str:
        """Send ``message`` to ``to`` (E.164); return the provider's message id or raise :class:`SmsError`."""


class ConsoleSms:
    """Appends ``{"to", "body", "kind", "sent_at"}`` to the outbox file, one JSON object a line."""

    _lock = threading.Lock()

    def __init__(self, outbox: str):
        self.outbox = outbox

    def send(self, to: str, message: TextMessage | str) -> str:
        text = as_text_message(message)
        line = json.dumps(
            {"to": to, "body": text.body, "kind": text.kind, "sent_at": datetime.now(UTC).isoformat()},
            ensure_ascii=False,
        )
        try:
            os.makedirs(os.path.dirname(self.outbox) or ".", exist_ok=True)
            with self._lock, open(self.outbox, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            raise SmsError("sms_provider_unavailable", retryable=True, detail=type(exc).__name__) from exc
        log.info("sms written to the console outbox for %s", audit_mask(mask_phone(to)))
        return "console"


class TwilioSms:
    """Sends through the official twilio client; 429 and 5xx answers are retried with backoff."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        attempts: int = 3,
        backoff: float = 0.5,
    ):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        # A provider that hangs must not hold a worker (nor its pooled connection) for ever.
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.from_number = from_number
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def send(self, to: str, message: TextMessage | str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        body = as_text_message(message).body

        def send_once() -> str:
            try:
                created: Any = self.client.messages.create(to=to, from_=self.from_number, body=body)
            except TwilioRestException as exc:
                if exc.status == 429 or exc.status >= 500:
                    raise _TryLater(f"HTTP {exc.status}") from exc
                code = "sms_invalid_number" if exc.code in {21211, 21614, 21217} else "sms_rejected"
                log.warning("twilio refused the message: HTTP %s, error %s", exc.status, exc.code)
                raise SmsError(code, retryable=False, detail=f"twilio error {exc.code}") from exc
            except (TwilioException, OSError) as exc:
                raise _TryLater(type(exc).__name__) from exc
            return str(created.sid)

        sent = _with_retries("twilio", self.attempts, self.backoff, send_once)
        log.info("sms sent through twilio to %s", audit_mask(mask_phone(to)))
        return sent


def _split_base_url(base_url: str) -> tuple[str, str]:
    """``http://127.0.0.1:8080/`` → (``http``, ``127.0.0.1:8080``): the SDKs take a scheme and a host apart."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    return parts.scheme, parts.netloc


def _with_retries(provider: str, attempts: int, backoff: float, send_once: Callable[[], str]) -> str:
    """Call ``send_once`` until it returns, raises a final :class:`SmsError`, or the attempts are spent.

    A retryable error is tried again after ``backoff`` seconds, doubling, like Twilio's 429 and 5xx.
    """
    last: SmsError | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return send_once()
        except _TryLater as exc:
            last = exc.error
            log.warning("%s: %s; attempt %d of %d", provider, exc.error, attempt + 1, attempts)
    assert last is not None
    raise last


class _TryLater(Exception):
    """A retryable failure of one attempt (throttling, a 5xx answer, the network)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.error = SmsError("sms_provider_unavailable", retryable=True, detail=detail)


def _refused(provider: str, code: str, invalid_number_codes: frozenset[str]) -> SmsError:
    kind = "sms_invalid_number" if code in invalid_number_codes else "sms_rejected"
    log.warning("%s refused the message: %s", provider, code)
    return SmsError(kind, retryable=False, detail=f"{provider} error {code}")


class _DropSendSmsQueries(logging.Filter):
    """Drops urllib3's DEBUG lines of Alibaba Cloud SendSms calls: their URLs carry the number and text."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PhoneNumbers=" not in record.getMessage()


def _national_for_aliyun(e164: str) -> str:
    """Alibaba Cloud's form: a mainland number's 11 digits; elsewhere the country code and number, no ``+``."""
    digits = e164.lstrip("+")
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


class AliyunSms:
    """Alibaba Cloud SMS (``dysmsapi`` 2017-05-25 ``SendSms``) through its official SDK.

    Sends the registered template of the message's kind (``TemplateCode``) under the registered signature
    (``SignName``), its parameters as ``TemplateParam`` JSON. Throttling, ``isp.*`` and 5xx answers and
    network failures are retried with backoff.
    """

    #: Codes that say the number itself is wrong: the same number will never work.
    INVALID_NUMBER = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})
    #: Codes that may pass if tried again later (besides ``Throttling*`` and ``isp.*``).
    LATER = frozenset({"ServiceUnavailable", "InternalError", "isv.BUSINESS_LIMIT_CONTROL", "SignatureNonceUsed"})
    ENDPOINT = "dysmsapi.aliyuncs.com"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        templates: Mapping[str, str],
        base_url: str | None = None,
        attempts: int = 3,
        backoff: float = 0.5,
    ):
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        # darabonba logs every request's query (numbers, links, codes) when DEBUG is set in the environment;
        # urllib3 logs each URL at DEBUG, and this RPC-style API carries its parameters in the query.
        logging.getLogger("darabonba-core").setLevel(logging.WARNING)
        pool_log = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(f, _DropSendSmsQueries) for f in pool_log.filters):
            pool_log.addFilter(_DropSendSmsQueries())
        scheme, endpoint = _split_base_url(base_url) if base_url else ("https", self.ENDPOINT)
        config = Config(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            endpoint=endpoint,
            protocol=scheme,
            connect_timeout=DOMESTIC_TIMEOUT_SECONDS * 1000,
            read_timeout=DOMESTIC_TIMEOUT_SECONDS * 1000,
        )
        self.client = Client(config)
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def send(self, to: str, message: TextMessage) -> str:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest

        values = message.template_values()
        template = self.templates.get(message.kind)
        if not template:
            raise SmsError("sms_rejected", retryable=False, detail=f"no aliyun template for kind {message.kind!r}")
        names = TEMPLATE_PARAMETERS[message.kind]
        request = SendSmsRequest(
            phone_numbers=_national_for_aliyun(to),
            sign_name=self.sign_name,
            template_code=template,
            template_param=json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False),
        )
        sent = _with_retries("aliyun", self.attempts, self.backoff, lambda: self._send_once(request))
        log.info("sms sent through aliyun to %s", audit_mask(mask_phone(to)))
        return sent

    def _send_once(self, request: Any) -> str:
        from darabonba.exceptions import ResponseException, UnretryableException

        try:
            response: Any = self.client.send_sms(request)
        except ResponseException as exc:  # an answer with an HTTP error status
            status = int(getattr(exc, "status_code", 0) or 0)
            code = str(getattr(exc, "code", "") or "")
            if status == 429 or status >= 500 or self._later(code):
                raise _TryLater(f"HTTP {status} {code}") from exc
            raise _refused("aliyun", code or f"HTTP {status}", self.INVALID_NUMBER) from exc
        except (UnretryableException, OSError) as exc:  # no answer: the network, a timeout
            inner = getattr(exc, "inner_exception", None) or exc
            raise _TryLater(type(inner).__name__) from exc
        body = response.body
        code = str(body.code or "")
        if code == "OK":
            return str(body.biz_id or "")
        if self._later(code):
            raise _TryLater(code)
        raise _refused("aliyun", code, self.INVALID_NUMBER)

    def _later(self, code: str) -> bool:
        return code in self.LATER or code.startswith(("Throttling", "isp."))


class TencentSms:
    """Tencent Cloud SMS (``sms`` 2021-01-11 ``SendSms``) through its official SDK.

    Sends the registered template of the message's kind (``TemplateId``) of the SMS application
    (``SmsSdkAppId``) under the registered signature (``SignName``), its parameters as ``TemplateParamSet``
    in order. ``LimitExceeded.*``, ``RequestLimitExceeded``, ``InternalError.*`` and network failures are
    retried with backoff.
    """

    INVALID_NUMBER = frozenset({"InvalidParameterValue.IncorrectPhoneNumber"})
    #: Codes that may pass if tried again later (besides ``LimitExceeded*`` and ``InternalError*``).
    LATER = frozenset({"RequestLimitExceeded", "ClientNetworkError", "ServerNetworkError", "InternalError"})

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        templates: Mapping[str, str],
        region: str = "ap-guangzhou",
        base_url: str | None = None,
        attempts: int = 3,
        backoff: float = 0.5,
    ):
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111.sms_client import SmsClient

        # The SDK logs requests and answers (numbers, links, codes) at DEBUG.
        logging.getLogger("tencentcloud_sdk_common").setLevel(logging.WARNING)
        http = HttpProfile(reqTimeout=DOMESTIC_TIMEOUT_SECONDS)
        if base_url:
            http.scheme, http.endpoint = _split_base_url(base_url)
            http.protocol = http.scheme
        else:
            http.endpoint = "sms.tencentcloudapi.com"
        self.client = SmsClient(Credential(secret_id, secret_key), region, ClientProfile(httpProfile=http))
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def send(self, to: str, message: TextMessage) -> str:
        from tencentcloud.sms.v20210111.models import SendSmsRequest

        values = message.template_values()
        template = self.templates.get(message.kind)
        if not template:
            raise SmsError("sms_rejected", retryable=False, detail=f"no tencent template for kind {message.kind!r}")
        request = SendSmsRequest()
        request.PhoneNumberSet = [to]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = template
        request.TemplateParamSet = values
        sent = _with_retries("tencent", self.attempts, self.backoff, lambda: self._send_once(request))
        log.info("sms sent through tencent to %s", audit_mask(mask_phone(to)))
        return sent

    def _send_once(self, request: Any) -> str:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        try:
            response: Any = self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = str(exc.get_code() or "")
            if self._later(code):
                raise _TryLater(code) from exc
            raise _refused("tencent", code, self.INVALID_NUMBER) from exc
        statuses = response.SendStatusSet or []
        if not statuses:
            raise _refused("tencent", "NoSendStatus", self.INVALID_NUMBER)
        status = statuses[0]
        code = str(status.Code or "")
        if code == "Ok":
            return str(status.SerialNo or "")
        if self._later(code):
            raise _TryLater(code)
        raise _refused("tencent", code, self.INVALID_NUMBER)

    def _later(self, code: str) -> bool:
        return code in self.LATER or code.startswith(("LimitExceeded", "InternalError"))


def _templates(config: Mapping[str, Any], provider: str) -> dict[str, str]:
    from service.config import sms_template_setting

    return {kind: config.get(sms_template_setting(provider, kind)) or "" for kind in TEMPLATE_PARAMETERS}


def build_provider(config: dict[str, Any]) -> SmsProvider:
    from service.config import missing_sms_settings

    name = config["SMS_PROVIDER"]
    missing = missing_sms_settings(config)
    if missing:
        raise RuntimeError(f"SMS_PROVIDER={name} needs {', '.join('CONSENT_GATE_' + n for n in missing)}")
    if name == "aliyun":
        return AliyunSms(
            access_key_id=config["ALIYUN_ACCESS_KEY_ID"],
            access_key_secret=config["ALIYUN_ACCESS_KEY_SECRET"],
            sign_name=config["ALIYUN_SMS_SIGN_NAME"],
            templates=_templates(config, "aliyun"),
            base_url=config.get("ALIYUN_SMS_BASE_URL"),
            attempts=config["SMS_RETRY_ATTEMPTS"],
            backoff=config["SMS_RETRY_BACKOFF"],
        )
    if name == "tencent":
        return TencentSms(
            secret_id=config["TENCENT_SECRET_ID"],
            secret_key=config["TENCENT_SECRET_KEY"],
            sdk_app_id=config["TENCENT_SMS_SDK_APP_ID"],
            sign_name=config["TENCENT_SMS_SIGN_NAME"],
            templates=_templates(config, "tencent"),
            region=config.get("TENCENT_SMS_REGION") or "ap-guangzhou",
            base_url=config.get("TENCENT_SMS_BASE_URL"),
            attempts=config["SMS_RETRY_ATTEMPTS"],
            backoff=config["SMS_RETRY_BACKOFF"],
        )
    if name == "twilio":
        return TwilioSms(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            from_number=config["TWILIO_FROM"],
            base_url=config.get("TWILIO_BASE_URL"),
            attempts=config["SMS_RETRY_ATTEMPTS"],
            backoff=config["SMS_RETRY_BACKOFF"],
        )
    return ConsoleSms(config["SMS_OUTBOX"])


def init_app(app: Flask) -> None:
    app.extensions["consent_gate.sms"] = build_provider(app.config)
