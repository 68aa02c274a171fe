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
after ``OUTBOX_BACKOFF_SECONDS * 2^(attempt-1)``, up to ``OUTBOX_MAX_ATTEMPTS``; webhook deliveries and jobs
follow their own, longer schedules (``WEBHOOK_RETRY_SECONDS``, ``JOB_RETRY_SECONDS``, about 27 hours). A
permanent refusal, or the last attempt, settles the row ``failed`` (dead). Either way its body is erased.

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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from service import outbox
from service.config import default_delays
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
#: The claim's own lease, until each row's turn renews it to LEASE: short, so that the rows of a batch that a
#: dispatcher could not reach (it failed, or its process died) go to another soon.
CLAIM_LEASE = timedelta(seconds=30)
#: The outbox's lanes: each is claimed and sent by a thread of its own, so that a slow webhook receiver, or a
#: long job, never holds up a guardian's one-time code.
SMS_LANE: tuple[str, ...] = ("sms",)
SLOW_LANE: tuple[str, ...] = ("webhook", "job")
BATCH = 20


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: ``ok``; else an error code, whether trying again may help, an HTTP status."""

    ok: bool
    error: str | None = None
    retryable: bool = False
    status_code: int | None = None
    provider_message_id: str | None = None
    #: not an attempt: the work goes on (a job with more to do); the row is due again at once, behind what
    #: is due already
    again: bool = False
    #: the row's new body, when it is tried again (a job's progress); ``None``: unchanged
    payload: dict[str, Any] | None = None


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
    #: webhook deliveries' and jobs' own schedules: the delay after each failed attempt (one attempt more than
    #: delays); by default the settings' defaults
    webhook_delays: tuple[float, ...] = field(default_factory=lambda: default_delays("WEBHOOK_RETRY_SECONDS"))
    job_delays: tuple[float, ...] = field(default_factory=lambda: default_delays("JOB_RETRY_SECONDS"))
    #: the channels this dispatcher claims (``None``: all); see SMS_LANE and SLOW_LANE
    channels: tuple[str, ...] | None = None
    job_runner: Callable[[OutboxMessage, dict[str, Any]], Outcome] | None = None
    name: str = field(default_factory=lambda: f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

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
            job_delays=tuple(app.config["JOB_RETRY_SECONDS"]),
            job_runner=JobRunner.of(app).run,
        )

    # --- claiming ------------------------------------------------------------------------------------------

    def _due(self, now: datetime) -> Any:
        due = (
            OutboxMessage.status == outbox.QUEUED,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )
        return due if self.channels is None else (*due, OutboxMessage.channel.in_(self.channels))

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
            .values(claimed_by=self.name, lease_until=now + CLAIM_LEASE)
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
        """Drain, then wait ``poll_seconds``, until ``stop`` is set; a failure is logged, the rows this
        dispatcher still holds are let go (for another to take at once), and the loop goes on."""
        while not stop.is_set():
            try:
                self.drain()
            except Exception:
                log.exception("the outbox dispatcher failed; trying again")
                self.release()
            stop.wait(self.poll_seconds)
        self.release()

    def release(self) -> int:
        """Let go of the rows this dispatcher claimed and has not settled; how many (a failure: 0)."""
        try:
            with self.sessions() as session:
                released = session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.claimed_by == self.name, OutboxMessage.status == outbox.QUEUED)
                    .values(claimed_by=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
                session.commit()
                return int(released)
        except Exception:  # the database is away: the short claim lease lets the rows go anyway
            log.warning("the outbox dispatcher could not release its claims")
            return 0

    def _mine(self, message: OutboxMessage) -> tuple[Any, ...]:
        """The row, only while it is still this dispatcher's claim and still ``queued`` (an erasure, or another
        dispatcher after this one's lease ran out, wins)."""
        return (
            OutboxMessage.id == message.id,
            OutboxMessage.claimed_by == self.name,
            OutboxMessage.status == outbox.QUEUED,
        )

    def _renew(self, session: Session, message: OutboxMessage) -> tuple[bool, str | None]:
        """Just before sending: whether the row is still this dispatcher's and still ``queued``, its lease
        renewed and its body read again. A row erased meanwhile (its subject's erasure), or taken by another
        dispatcher after this one's lease ran out while earlier rows of the batch were sent, is left alone:
        nothing is sent from the copy read at claim time. Returns (still mine, the body's ciphertext)."""
        now = utcnow()
        try:
            renewed = session.execute(
                update(OutboxMessage)
                .where(*self._mine(message))
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
            outcome = self._guarded(self.webhook_sender, message, payload, "webhook_failed")
        elif message.channel == outbox.JOB and self.job_runner is not None:
            outcome = self._guarded(self.job_runner, message, payload, "job_failed")
        else:
            outcome = Outcome(ok=False, error="unknown_channel")
        self._settle(session, message, outcome)

    @staticmethod
    def _guarded(
        callee: Callable[[OutboxMessage, dict[str, Any]], Outcome],
        message: OutboxMessage,
        payload: dict[str, Any],
        error: str,
    ) -> Outcome:
        """A webhook delivery or a job: what raises (a bug, the database gone mid-job) counts as an attempt
        that may pass, rather than leaving the row to be claimed again for ever."""
        try:
            return callee(message, payload)
        except Exception as exc:
            log.warning("an outbox %s (%s) raised %s", message.channel, message.kind, type(exc).__name__)
            return Outcome(ok=False, error=error, retryable=True)

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
        if outcome.again:
            self._requeue(session, message, now, outcome.payload)
            return
        attempts = message.attempts + 1
        schedule = {outbox.WEBHOOK: self.webhook_delays, outbox.JOB: self.job_delays}.get(message.channel)
        if schedule is not None:
            last = attempts > len(schedule)
            delay = 0.0 if last else schedule[attempts - 1]
        else:
            last = attempts >= self.max_attempts
            delay = self.backoff_seconds * 2 ** (attempts - 1)
        final = outcome.ok or not outcome.retryable or last
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
            if outcome.payload is not None:
                values["payload_ciphertext"] = outbox.encrypt_payload(self.protector, outcome.payload)
        try:
            if final and message.channel == outbox.SMS:
                self._settle_sms(session, message, outcome)  # its rows first: erasure's lock order
            changed = session.execute(
                update(OutboxMessage)
                .where(*self._mine(message))
                .values(**values)
                .execution_options(synchronize_session=False)
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

    def _requeue(self, session: Session, message: OutboxMessage, now: datetime, payload: dict[str, Any] | None) -> None:
        """Due again at once, not counted as an attempt, behind what is due already (a job goes on)."""
        values: dict[str, Any] = {"claimed_by": None, "lease_until": None, "next_attempt_at": now}
        if payload is not None:
            values["payload_ciphertext"] = outbox.encrypt_payload(self.protector, payload)
        try:
            session.execute(
                update(OutboxMessage)
                .where(*self._mine(message))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        except Exception:
            session.rollback()
            raise

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


def start_dispatcher(app: Any) -> tuple[list[threading.Thread], threading.Event]:
    """Run the app's dispatchers, one daemon thread per lane (SMS; webhooks and jobs); set the returned event
    to stop them."""
    stop = threading.Event()
    threads = []
    base = Dispatcher.of(app)
    for lane in (SMS_LANE, SLOW_LANE):
        dispatcher = replace(base, channels=lane, name=f"{base.name}:{lane[0][0]}")  # each its own claims
        name = f"consent-gate-dispatch-{lane[0]}"
        thread = threading.Thread(target=dispatcher.run, args=(stop,), name=name, daemon=True)
        thread.start()
        threads.append(thread)
    return threads, stop
