"""The dispatcher: sends what the outbox holds, after the commits that wrote it.

Safe with any number of dispatchers, in any number of processes and instances: a dispatcher *claims*
rows before sending them. On PostgreSQL it reads due rows ``FOR UPDATE SKIP LOCKED`` (another claiming
at that moment skips them) and stamps them with its name and a lease (``claimed_by``, ``lease_until``);
on SQLite, whose writers take turns, the same conditional ``UPDATE`` (only rows unclaimed or whose
lease ran out) is the claim. It then sends with no transaction open and settles each row in a short
transaction of its own, only if the row is still its own and still ``queued`` (an erasure meanwhile wins).
A dispatcher that dies holding rows leaves them to another once the lease runs out: delivery is at least
once.

A failure that may pass (a provider's 5xx or 429, a timeout, a webhook receiver that is down) is tried again
after ``OUTBOX_BACKOFF_SECONDS * 2^(attempt-1)``, up to ``OUTBOX_MAX_ATTEMPTS``; webhook deliveries follow
their own, longer schedule (``WEBHOOK_RETRY_SECONDS``, about 27 hours by default). A permanent refusal, or
the last attempt, settles the row ``failed`` (dead). Either way its body is erased.

Before each send the dispatcher renews its claim and reads the body again (``_renew``): a row erased, or
taken by another dispatcher once this one's lease ran out, is not sent from what was read at claim time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from service import outbox
from service.db import begin_read
from service.keys.crypto import DataProtector
from service.models import GuardianRequest, OutboxMessage, SmsMessage, utcnow
from service.sms import SmsError, SmsProvider, TextMessage

log = logging.getLogger(__name__)

#: How long a claim holds before another dispatcher may take the row. It is renewed just before each send
#: (the rows of a batch wait their turn), so it needs to outlast one send only: an SMS provider's tries
#: within an attempt (10 s timeouts each), a webhook's WEBHOOK_TIMEOUT_SECONDS. A dispatcher that died
#: leaves its rows to another after this long.
LEASE = timedelta(seconds=300)
BATCH = 20


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: ``ok``; else an error code, whether trying again may help, an HTTP status."""

    ok: bool
    error: str | None = None
    retryable: bool = False
    status_code: int | None = None
    provider_message_id: str | None = None


@dataclass
class Dispatcher:
    """Claims due outbox rows, sends them, settles them. ``drain()`` once; ``run(stop)`` until ``stop``."""

    sessions: Callable[[], Session]
    protector: DataProtector
    sms: SmsProvider
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    poll_seconds: float = 1.0
    webhook_sender: Callable[[OutboxMessage, dict[str, Any]], Outcome] | None = None
    #: webhook deliveries' own schedule: the delay after each failed attempt (one attempt more than delays)
    webhook_delays: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    job_runner: Callable[[OutboxMessage, dict[str, Any]], Outcome] | None = None
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    @classmethod
    def of(cls, app: Any) -> Dispatcher:
        """The dispatcher of a Flask app: its sessions, data key, SMS provider and settings."""
        from service.outbox.jobs import JobRunner
        from service.outbox.webhooks import WebhookSender

        protector = app.extensions["consent_gate.protector"]
        return cls(
            sessions=app.extensions["consent_gate.sessionmaker"],
            protector=protector,
            sms=app.extensions["consent_gate.sms"],
            max_attempts=app.config["OUTBOX_MAX_ATTEMPTS"],
            backoff_seconds=app.config["OUTBOX_BACKOFF_SECONDS"],
            poll_seconds=app.config["OUTBOX_POLL_SECONDS"],
            webhook_sender=WebhookSender.of(app).send,
            webhook_delays=tuple(app.config["WEBHOOK_RETRY_SECONDS"]),
            job_runner=JobRunner.of(app).run,
        )

    # --- claiming ------------------------------------------------------------------------------------------

    def _due(self, now: datetime) -> Any:
        return (
            OutboxMessage.status == outbox.QUEUED,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )

    def claim(self, session: Session, limit: int = BATCH) -> list[OutboxMessage]:
        """Claim up to ``limit`` due rows for this dispatcher and commit the claim; the rows claimed."""
        now = utcnow()
        begin_read(session)  # a look first: on SQLite an idle poll takes no write lock
        anything = session.scalar(select(OutboxMessage.id).where(*self._due(now)).limit(1))
        session.commit()
        if anything is None:
            return []
        ids = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(*self._due(now))
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.created_at, OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            session.commit()
            return []
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), *self._due(now))
            .values(claimed_by=self.name, lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        claimed = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == self.name)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.created_at, OutboxMessage.id)
                .execution_options(populate_existing=True)
            )
        )
        session.commit()
        return claimed

    # --- sending -------------------------------------------------------------------------------------------

    def drain(self, *, limit: int | None = None) -> int:
        """Send everything due now, batch after batch; the number of rows attempted. For tests and ``--once``."""
        attempted = 0
        with self.sessions() as session:
            while limit is None or attempted < limit:
                batch = self.claim(session, BATCH if limit is None else min(BATCH, limit - attempted))
                if not batch:
                    break
                for message in batch:
                    mine, body = self._renew(session, message)
                    if mine:
                        self._attempt(session, message, body)
                    attempted += 1
        return attempted

    def run(self, stop: threading.Event) -> None:
        """Drain, then wait ``poll_seconds``, until ``stop`` is set; a failure is logged and the loop goes on."""
        while not stop.is_set():
            try:
                self.drain()
            except Exception:
                log.exception("the outbox dispatcher failed; trying again")
            stop.wait(self.poll_seconds)

    def _renew(self, session: Session, message: OutboxMessage) -> tuple[bool, str | None]:
        """Just before sending: whether the row is still this dispatcher's and still ``queued``, its lease
        renewed and its body read again. A row erased meanwhile (its subject's erasure), or taken by another
        dispatcher after this one's lease ran out while earlier rows of the batch were sent, is left alone:
        nothing is sent from the copy read at claim time. Returns (still mine, the body's ciphertext)."""
        now = utcnow()
        mine = (
            OutboxMessage.id == message.id,
            OutboxMessage.claimed_by == self.name,
            OutboxMessage.status == outbox.QUEUED,
        )
        try:
            renewed = session.execute(
                update(OutboxMessage)
                .where(*mine)
                .values(lease_until=now + LEASE)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            body = (
                session.scalar(select(OutboxMessage.payload_ciphertext).where(OutboxMessage.id == message.id))
                if renewed
                else None
            )
            session.commit()
        except Exception:
            session.rollback()
            raise
        return bool(renewed), body

    def _attempt(self, session: Session, message: OutboxMessage, body: str | None) -> None:
        try:
            payload = None if body is None else outbox.decrypt_payload(self.protector, body)
        except Exception:  # a body that does not decrypt (DATA_KEY changed) never will
            payload = None
        if payload is None:
            outcome = Outcome(ok=False, error="payload_unreadable")
        elif message.channel == outbox.SMS:
            outcome = self._send_sms(payload)
        elif message.channel == outbox.WEBHOOK and self.webhook_sender is not None:
            outcome = self._send_webhook(message, payload)
        elif message.channel == outbox.JOB and self.job_runner is not None:
            outcome = self._run_job(message, payload)
        else:
            outcome = Outcome(ok=False, error="unknown_channel")
        self._settle(session, message, outcome)

    def _send_webhook(self, message: OutboxMessage, payload: dict[str, Any]) -> Outcome:
        assert self.webhook_sender is not None
        try:
            return self.webhook_sender(message, payload)
        except Exception as exc:  # a bug must not leave the row to be claimed again forever: it counts
            log.warning("a webhook delivery raised %s", type(exc).__name__)
            return Outcome(ok=False, error="webhook_failed", retryable=True)

    def _run_job(self, message: OutboxMessage, payload: dict[str, Any]) -> Outcome:
        assert self.job_runner is not None
        try:
            return self.job_runner(message, payload)
        except Exception as exc:  # the database went away mid-job, say: what is left is run again later
            log.warning("an outbox job (%s) raised %s", message.kind, type(exc).__name__)
            return Outcome(ok=False, error="job_failed", retryable=True)

    def _send_sms(self, payload: dict[str, Any]) -> Outcome:
        try:
            sent_id = self.sms.send(payload["to"], TextMessage.from_dict(payload))
        except SmsError as exc:
            return Outcome(ok=False, error=exc.code, retryable=exc.retryable)
        except Exception as exc:  # a provider's bug must not kill the dispatcher; try again later
            log.warning("the SMS provider raised %s", type(exc).__name__)
            return Outcome(ok=False, error="sms_provider_unavailable", retryable=True)
        return Outcome(ok=True, provider_message_id=sent_id)

    def _settle(self, session: Session, message: OutboxMessage, outcome: Outcome) -> None:
        now = utcnow()
        attempts = message.attempts + 1
        if message.channel == outbox.WEBHOOK:
            last = attempts > len(self.webhook_delays)
            delay = 0.0 if last else self.webhook_delays[attempts - 1]
        else:
            last = attempts >= self.max_attempts
            delay = self.backoff_seconds * 2 ** (attempts - 1)
        final = outcome.ok or not outcome.retryable or last
        mine = (
            OutboxMessage.id == message.id,
            OutboxMessage.claimed_by == self.name,
            OutboxMessage.status == outbox.QUEUED,
        )
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_error": outcome.error,
            "last_status_code": outcome.status_code,
            "claimed_by": None,
            "lease_until": None,
        }
        if final:
            status = outbox.SENT if outcome.ok else outbox.FAILED
            values |= {"status": status, "payload_ciphertext": None, "settled_at": now}
        else:
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        try:
            if final and message.channel == outbox.SMS:
                self._settle_sms(session, message, outcome)  # its rows first: erasure's lock order
            changed = session.execute(
                update(OutboxMessage).where(*mine).values(**values).execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if not changed:  # erased, or taken by another after our lease ran out: theirs to settle
                session.rollback()
                return
            session.commit()
        except Exception:
            session.rollback()
            raise
        if final:
            log.info(
                "outbox %s %s %s after %d attempt(s)%s",
                message.channel,
                message.kind,
                values["status"],
                attempts,
                f" ({outcome.error})" if outcome.error else "",
            )

    def _settle_sms(self, session: Session, message: OutboxMessage, outcome: Outcome) -> None:
        from service.domain.guardian.messages import SmsOutcome, settle_sms
        from service.observability import SMS  # the metrics registry, imported late: it pulls prometheus

        request = session.get(GuardianRequest, message.request_id) if message.request_id else None
        sms = session.get(SmsMessage, message.sms_message_id) if message.sms_message_id else None
        if request is None or sms is None:
            return
        settle_sms(
            session,
            request,
            sms,
            SmsOutcome(
                provider_message_id=outcome.provider_message_id, error_code=None if outcome.ok else outcome.error
            ),
        )
        SMS.labels(sms.kind, "sent" if outcome.ok else "failed").inc()


def start_dispatcher(app: Any) -> tuple[threading.Thread, threading.Event]:
    """Run the app's dispatcher in a daemon thread; set the returned event to stop it."""
    dispatcher = Dispatcher.of(app)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="consent-gate-dispatch", daemon=True)
    thread.start()
    return thread, stop
