"""SMS providers: ``console`` (a JSON-lines outbox, the default) and ``twilio`` (the official client).

Neither logs a number or a message body: logs show the country code only (`+86 ***********`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from service.sms.phones import audit_mask, mask_phone

if TYPE_CHECKING:  # the domain imports this module; it needs no Flask
    from flask import Flask

log = logging.getLogger(__name__)

# twilio's HTTP client logs request bodies (links, codes) and numbers at INFO; keep it quiet.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


TWILIO_TIMEOUT_SECONDS = 10.0


class SmsError(Exception):
    """The message was not sent. ``code`` is stable; ``retryable`` says whether trying later may help."""

    def __init__(self, code: str, *, retryable: bool, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.retryable = retryable


class SmsProvider(Protocol):
    def send(self, to: str, body: str) -> str:
        """Send ``body`` to ``to`` (E.164); return the provider's message id or raise :class:`SmsError`."""


class ConsoleSms:
    """Appends ``{"to", "body", "sent_at"}`` to the outbox file, one JSON object a line."""

    _lock = threading.Lock()

    def __init__(self, outbox: str):
        self.outbox = outbox

    def send(self, to: str, body: str) -> str:
        line = json.dumps({"to": to, "body": body, "sent_at": datetime.now(UTC).isoformat()}, ensure_ascii=False)
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

    def send(self, to: str, body: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        last: SmsError | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                message: Any = self.client.messages.create(to=to, from_=self.from_number, body=body)
                log.info("sms sent through twilio to %s", audit_mask(mask_phone(to)))
                return str(message.sid)
            except TwilioRestException as exc:
                if exc.status == 429 or exc.status >= 500:
                    last = SmsError("sms_provider_unavailable", retryable=True, detail=f"HTTP {exc.status}")
                    log.warning("twilio answered %s; attempt %d of %d", exc.status, attempt + 1, self.attempts)
                    continue
                code = "sms_invalid_number" if exc.code in {21211, 21614, 21217} else "sms_rejected"
                log.warning("twilio refused the message: HTTP %s, error %s", exc.status, exc.code)
                raise SmsError(code, retryable=False, detail=f"twilio error {exc.code}") from exc
            except (TwilioException, OSError) as exc:
                last = SmsError("sms_provider_unavailable", retryable=True, detail=type(exc).__name__)
                log.warning("twilio unreachable (%s); attempt %d of %d", type(exc).__name__, attempt + 1, self.attempts)
        assert last is not None
        raise last


def build_provider(config: dict[str, Any]) -> SmsProvider:
    if config["SMS_PROVIDER"] == "twilio":
        missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM") if not config.get(n)]
        if missing:
            raise RuntimeError(f"SMS_PROVIDER=twilio needs {', '.join('CONSENT_GATE_' + n for n in missing)}")
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
