"""The outbox (issue 15): SMS leave after the commit, from a dispatcher, exactly once per claim, retried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from service import db, outbox
from service.db import make_engine
from service.domain import guardian as flow
from service.domain.guardian import Messenger
from service.keys.data_key import protector
from service.models import Consent, GuardianLink, GuardianRequest, OutboxMessage, SmsMessage, utcnow
from service.outbox.dispatcher import Dispatcher
from service.sms import TextMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support import FakeTwilio, GuardianKit, Tenant


class RecordingSms:
    """A provider that records every call (thread-safe)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def send(self, to: str, message: TextMessage) -> str:
        with self._lock:
            self.calls.append(message.body)
        return "recorded"


def _queue(app: Flask, org_id: str, count: int, tag: str) -> None:
    with app.app_context():
        session = db.session()
        protector = app.extensions["consent_gate.protector"]
        for index in range(count):
            outbox.enqueue(
                session,
                protector,
                org_id=org_id,
                channel=outbox.SMS,
                kind="link",
                payload={"to": "+8613812345678", "body": f"{tag}-{index}"},
            )
        session.commit()


def _queue_webhook(app: Flask, org_id: str) -> None:
    with app.app_context():
        session = db.session()
        outbox.enqueue(
            session,
            app.extensions["consent_gate.protector"],
            org_id=org_id,
            channel=outbox.WEBHOOK,
            kind="consent.granted",
            payload={"type": "consent.granted"},
        )
        session.commit()


@pytest.mark.committed
def test_two_dispatchers_at_once_send_each_message_exactly_once(app: Flask, tenant: Tenant) -> None:
    """Two dispatchers, each with its own engine (as two processes have), start together behind a barrier."""
    provider = RecordingSms()
    url = app.config["DATABASE_URL"]
    engines = [make_engine(url) for _ in range(2)]
    try:
        dispatchers = [
            Dispatcher(
                sessions=sessionmaker(bind=engine, expire_on_commit=False),
                protector=app.extensions["consent_gate.protector"],
                sms=provider,
            )
            for engine in engines
        ]
        for round_ in range(4):
            _queue(app, tenant.org_id, 30, f"r{round_}")
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def run(dispatcher: Dispatcher, barrier: threading.Barrier = barrier, errors: list[Any] = errors) -> None:
                try:
                    barrier.wait(timeout=30)
                    dispatcher.drain()
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not errors, errors
            sent = Counter(body for body in provider.calls if body.startswith(f"r{round_}-"))
            assert sent == Counter(f"r{round_}-{index}" for index in range(30)), round_
    finally:
        for engine in engines:
            engine.dispose()
    with app.app_context():
        rows = db.session().scalars(select(OutboxMessage)).all()
        assert {row.status for row in rows} == {"sent"}
        assert all(row.payload_ciphertext is None and row.attempts == 1 for row in rows)


def test_the_body_is_encrypted_at_rest_and_erased_once_sent(
    app: Flask, tenant: Tenant, guardian: GuardianKit, drain: Callable[[], int]
) -> None:
    child = guardian.setup_child(tenant)
    assert tenant.guardian_request(child["id"], ["door_access"]).status_code == 202
    with app.app_context():
        [row] = db.session().scalars(select(OutboxMessage)).all()
        assert row.status == "queued" and row.payload_ciphertext is not None
        assert "8613812345678" not in row.payload_ciphertext and "/g/" not in row.payload_ciphertext
        assert row.subject_id == child["id"]
    assert drain() == 1
    with app.app_context():
        [row] = db.session().scalars(select(OutboxMessage).execution_options(populate_existing=True)).all()
        assert (row.status, row.payload_ciphertext, row.attempts) == ("sent", None, 1)


@pytest.fixture()
def twilio_app_config(app_config: dict[str, Any], twilio: FakeTwilio) -> dict[str, Any]:
    app_config.update(
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=twilio.account_sid,
        TWILIO_AUTH_TOKEN=twilio.auth_token,
        TWILIO_FROM="+15005550006",
        TWILIO_BASE_URL=twilio.base_url,
    )
    return app_config


def test_a_provider_failing_first_is_retried_and_ends_sent(
    twilio_app_config: dict[str, Any], twilio: FakeTwilio, tenant: Tenant, guardian: GuardianKit, drain: Any
) -> None:
    twilio.script = [(500, None)]
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    assert created["delivery_status"] == "queued" and twilio.received == []  # the request never waited
    drain()
    assert len(twilio.received) == 2
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert (polled["delivery_status"], polled["delivery_error"]) == ("sent", None)


def test_a_provider_down_for_every_attempt_ends_failed(
    twilio_app_config: dict[str, Any], twilio: FakeTwilio, tenant: Tenant, guardian: GuardianKit, drain: Any
) -> None:
    twilio.script = [(503, None)] * 10
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    drain()
    assert len(twilio.received) == 3  # OUTBOX_MAX_ATTEMPTS in tests
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert (polled["delivery_status"], polled["delivery_error"]) == ("failed", "sms_provider_unavailable")


def test_a_retry_waits_for_its_backoff(app: Flask, tenant: Tenant, app_config: dict[str, Any]) -> None:
    """With a backoff, a failed attempt is not tried again by the same drain: the next one is due later."""
    failing = RecordingSms()

    def refuse(to: str, body: str) -> str:
        from service.sms import SmsError

        failing.calls.append(body)
        raise SmsError("sms_provider_unavailable", retryable=True)

    failing.send = refuse  # type: ignore[method-assign]
    _queue(app, tenant.org_id, 1, "b")
    with app.app_context():
        dispatcher = Dispatcher(
            sessions=app.extensions["consent_gate.sessionmaker"],
            protector=app.extensions["consent_gate.protector"],
            sms=failing,
            backoff_seconds=3600,
        )
        assert dispatcher.drain() == 1 and dispatcher.drain() == 0
        [row] = db.session().scalars(select(OutboxMessage)).all()
        assert (row.status, row.attempts, row.last_error) == ("queued", 1, "sms_provider_unavailable")
        assert row.claimed_by is None and row.payload_ciphertext is not None


def test_r13_erasure_removes_what_is_queued_to_the_child(
    app: Flask, tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    assert tenant.delete(f"/v1/subjects/{child['id']}").status_code == 204
    assert outbox() == []
    with app.app_context():
        [row] = db.session().scalars(select(OutboxMessage)).all()
        assert (row.status, row.payload_ciphertext, row.last_error) == ("failed", None, "phone_erased")
        [reservation] = db.session().scalars(select(SmsMessage)).all()  # not "sending" for ever
        assert (reservation.status, reservation.error_code) == ("cancelled", "phone_erased")
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert (polled["delivery_status"], polled["delivery_error"]) == ("failed", "phone_erased")


def test_the_sweep_deletes_settled_rows_past_their_keeping_only(app: Flask, tenant: Tenant, runner: Any) -> None:
    """Settled rows are kept OUTBOX_KEEP_DAYS (the deliveries log), then the sweep deletes them; a row still
    queued, however old, is never deleted, nor one settled recently."""
    _queue(app, tenant.org_id, 4, "keep")
    with app.app_context():
        session = db.session()
        ids = session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.created_at)).all()
        old = utcnow() - timedelta(days=31)
        recent = utcnow() - timedelta(days=29)
        states = {ids[0]: ("sent", old), ids[1]: ("failed", old), ids[2]: ("sent", recent), ids[3]: ("queued", None)}
        for row_id, (status, settled_at) in states.items():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(status=status, settled_at=settled_at, created_at=old)
            )
        session.commit()
    result = runner.invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    assert "outbox: 2 settled messages older than 30 days deleted" in result.output
    with app.app_context():
        left = set(db.session().scalars(select(OutboxMessage.id)).all())
    assert left == {ids[2], ids[3]}


@pytest.mark.committed
def test_dispatch_once_on_the_command_line(app: Flask, tenant: Tenant, runner: Any) -> None:
    _queue(app, tenant.org_id, 2, "cli")
    result = runner.invoke(args=["dispatch", "--once"])
    assert result.exit_code == 0, result.output
    assert "attempted 2 message(s)" in result.output


#: ``consent-gate dispatch --once`` (its entry point, as the installed command runs it), started once the file
#: named by its argument exists: both processes pay for their imports first, then start together.
GATED_DISPATCH = """
import os, sys, time
gate = sys.argv[1]
from service.cli import main
deadline = time.monotonic() + 60
while not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.005)
sys.argv = ["consent-gate", "dispatch", "--once"]
main()
"""


@pytest.mark.committed
def test_two_dispatch_processes_at_once_send_each_message_exactly_once(
    app: Flask, tenant: Tenant, tmp_path: Path
) -> None:
    """Two `consent-gate dispatch --once` processes, released together on the same database, three rounds."""
    env = {
        **os.environ,
        "CONSENT_GATE_DATABASE_URL": app.config["DATABASE_URL"],
        "CONSENT_GATE_INSTANCE_PATH": app.config["INSTANCE_PATH"],  # its data key, as the app's
        "CONSENT_GATE_ENV": "test",
        "CONSENT_GATE_SMS_OUTBOX": app.config["SMS_OUTBOX"],
    }
    sms_file = Path(app.config["SMS_OUTBOX"])
    count = 40
    for round_ in range(3):
        _queue(app, tenant.org_id, count, f"p{round_}")
        gate = tmp_path / f"go-{round_}"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", GATED_DISPATCH, str(gate)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        time.sleep(1.0)  # both have imported the service and wait at the gate
        gate.touch()
        outputs = [process.communicate(timeout=120) for process in processes]
        for process, (_out, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err
        attempted = [int(out.split()[1]) for out, _ in outputs]  # "attempted N message(s)"
        assert sum(attempted) == count, (round_, attempted)
        bodies = [json.loads(line)["body"] for line in sms_file.read_text(encoding="utf-8").splitlines()]
        sent = Counter(body for body in bodies if body.startswith(f"p{round_}-"))
        assert sent == Counter(f"p{round_}-{index}" for index in range(count)), (round_, attempted)
        with app.app_context():
            rows = db.session().scalars(select(OutboxMessage)).all()
            assert len(rows) == count * (round_ + 1)
            assert {row.status for row in rows} == {"sent"} and all(row.attempts == 1 for row in rows)


@pytest.mark.committed
def test_the_withdrawal_sms_is_written_in_the_decisions_own_transaction(
    app: Flask, tenant: Tenant, guardian: GuardianKit
) -> None:
    """The decision, the SMS reservation and the outbox row commit together, or not at all (issue 15)."""
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    reader = make_engine(app.config["DATABASE_URL"])  # another connection: sees only what was committed

    def committed() -> tuple[list[str], int, int]:
        with reader.connect() as connection:
            statuses = connection.scalars(
                select(Consent.status).where(Consent.guardian_request_id == created["id"])
            ).all()
            rows = connection.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.request_id == created["id"], OutboxMessage.kind == "withdrawal"
                )
            ).all()
            reservations = connection.scalars(
                select(SmsMessage.id).where(SmsMessage.request_id == created["id"], SmsMessage.kind == "withdrawal")
            ).all()
        return [str(status) for status in statuses], len(rows), len(reservations)

    def decide() -> Any:
        session = db.session()
        link = session.scalars(
            select(GuardianLink).where(GuardianLink.request_id == created["id"], GuardianLink.kind == "decision")
        ).one()
        decision = flow.decide(
            session,
            link,
            approve=True,
            ticked=["door_access"],
            attested=True,
            code=None,
            protector=protector(),
            messenger=Messenger.of(app),
        )
        assert decision.withdrawal_token and decision.withdrawal_queued
        return session

    try:
        with app.app_context():
            session = decide()
            session.rollback()  # a failure after the decision, before its commit
            assert committed() == (["pending_guardian"], 0, 0)
            session = decide()
            session.commit()
            assert committed() == (["active"], 1, 1)
    finally:
        reader.dispose()


def test_a_decision_beyond_the_allowance_stands_and_its_receipt_shows_the_withdrawal_link(
    app: Flask, tenant: Tenant, guardian: GuardianKit, outbox: Any
) -> None:
    """A withdrawal SMS went to this phone a moment ago: the next is not queued, the decision stands."""
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"]).json
    [message] = outbox()
    with app.app_context():
        session = db.session()
        request = session.get(GuardianRequest, created["id"])
        assert request is not None
        session.add(
            SmsMessage(
                org_id=request.org_id,
                request_id=request.id,
                phone_hash=request.phone_hash,
                kind="withdrawal",
                status="sent",
            )
        )
        session.commit()
    page = guardian.browser(guardian.url_from(message)).submit(
        action="approve", attest_guardian="yes", purpose="door_access"
    )
    assert page.status_code == 200
    assert 'id="withdrawal-link"' in page.get_data(as_text=True)  # the allowance said no: on the receipt
    assert tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json["status"] == "approved"
    assert [m for m in outbox() if m["kind"] == "withdrawal"] == []
    with app.app_context():
        rows = db.session().scalars(select(OutboxMessage).where(OutboxMessage.kind == "withdrawal")).all()
        assert rows == []


class HookedSms(RecordingSms):
    """Records every call, and runs ``hook`` once, during the first send (what happens meanwhile)."""

    def __init__(self, hook: Callable[[], None]) -> None:
        super().__init__()
        self.hook: Callable[[], None] | None = hook

    def send(self, to: str, message: TextMessage) -> str:
        sent = super().send(to, message)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return sent


def _dispatcher(app: Flask, sms: Any) -> Dispatcher:
    return Dispatcher(
        sessions=app.extensions["consent_gate.sessionmaker"],
        protector=app.extensions["consent_gate.protector"],
        sms=sms,
    )


@pytest.mark.committed
def test_a_row_taken_by_another_after_the_lease_ran_out_mid_batch_is_not_sent_twice(app: Flask, tenant: Tenant) -> None:
    """The rows of a batch wait their turn: while the first is sent, the second's lease runs out and another
    dispatcher takes and sends it. The first dispatcher, reaching it, sends nothing (its claim is renewed, and
    checked, just before each send)."""
    _queue(app, tenant.org_id, 1, "first")
    _queue(app, tenant.org_id, 1, "second")
    with app.app_context():
        second_id = db.session().scalars(select(OutboxMessage.id).order_by(OutboxMessage.created_at)).all()[1]
    other = RecordingSms()

    def meanwhile() -> None:
        with app.app_context():
            session = db.session()
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == second_id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
            session.commit()
        assert _dispatcher(app, other).drain() == 1

    slow = HookedSms(meanwhile)
    with app.app_context():
        assert _dispatcher(app, slow).drain() == 2
        rows = db.session().scalars(select(OutboxMessage)).all()
    assert (slow.calls, other.calls) == (["first-0"], ["second-0"])
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}


@pytest.mark.committed
def test_r13_a_child_erased_between_claim_and_send_gets_nothing(
    app: Flask, tenant: Tenant, guardian: GuardianKit
) -> None:
    """The body is read again just before the send: an erasure that committed after the claim wins."""
    first = guardian.setup_child(tenant)
    second = tenant.subject(age_years=8)
    assert tenant.guardian_request(first["id"], ["door_access"]).status_code == 202
    assert tenant.guardian_request(second["id"], ["door_access"], phone="+8613912345678").status_code == 202

    def erase_the_second() -> None:
        assert tenant.delete(f"/v1/subjects/{second['id']}").status_code == 204

    provider = HookedSms(erase_the_second)
    with app.app_context():
        assert _dispatcher(app, provider).drain() == 2
        rows = {row.subject_id: row for row in db.session().scalars(select(OutboxMessage))}
    assert len(provider.calls) == 1
    assert (rows[first["id"]].status, rows[second["id"]].status) == ("sent", "failed")
    assert rows[second["id"]].last_error == "phone_erased" and rows[second["id"]].payload_ciphertext is None


def test_a_webhook_sender_that_raises_counts_as_an_attempt(app: Flask, tenant: Tenant) -> None:
    """A bug in a delivery must not leave its row to be claimed again and again: it counts, and ends dead."""
    _queue_webhook(app, tenant.org_id)
    with app.app_context():

        def broken(message: OutboxMessage, payload: dict[str, Any]) -> Any:
            raise KeyError("a bug")

        dispatcher = _dispatcher(app, RecordingSms())
        dispatcher.webhook_sender = broken
        dispatcher.webhook_delays = (0.0, 0.0)
        assert dispatcher.drain() == 3
        [row] = db.session().scalars(select(OutboxMessage).execution_options(populate_existing=True)).all()
        assert (row.status, row.attempts, row.last_error) == ("failed", 3, "webhook_failed")


def test_webhook_deliveries_follow_their_own_longer_schedule(app: Flask, tenant: Tenant) -> None:
    """A receiver down for a deploy must not lose events: the delays come from WEBHOOK_RETRY_SECONDS, not the
    SMS backoff, and the delivery is dead only after the last of them."""
    from service.outbox.dispatcher import Outcome

    _queue_webhook(app, tenant.org_id)
    with app.app_context():
        session = db.session()
        dispatcher = _dispatcher(app, RecordingSms())
        dispatcher.webhook_sender = lambda message, payload: Outcome(ok=False, error="http_503", retryable=True)
        dispatcher.webhook_delays = (300.0, 7200.0)
        dispatcher.backoff_seconds = 0.0
        dispatcher.max_attempts = 1  # the SMS settings do not apply to webhooks
        delays = []
        for _ in range(3):
            before = utcnow()
            assert dispatcher.drain() == 1
            [row] = session.scalars(select(OutboxMessage).execution_options(populate_existing=True)).all()
            if row.status == "failed":
                break
            delays.append(round((row.next_attempt_at - before).total_seconds() / 100) * 100)
            session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
            session.commit()
        assert delays == [300, 7200]
        assert (row.status, row.attempts, row.last_error) == ("failed", 3, "http_503")


def test_the_webhook_schedule_setting_is_parsed_and_checked() -> None:
    from service.config import ConfigError, _delays

    assert _delays("WEBHOOK_RETRY_SECONDS", "5, 300,1800") == (5.0, 300.0, 1800.0)
    assert _delays("WEBHOOK_RETRY_SECONDS", "") == ()  # one attempt, no retry
    for bad in ("5,soon", "-1", "nan", "5,inf", str(8 * 24 * 3600)):
        with pytest.raises(ConfigError, match="WEBHOOK_RETRY_SECONDS"):
            _delays("WEBHOOK_RETRY_SECONDS", bad)


def test_sms_have_a_lane_of_their_own(app: Flask, tenant: Tenant) -> None:
    """A slow webhook receiver, or a long job, never holds up a guardian's code: each lane claims only its
    own channels, and serve and dispatch run one thread per lane, each with its own claims."""
    from service.outbox.dispatcher import SLOW_LANE, SMS_LANE

    _queue_webhook(app, tenant.org_id)
    _queue(app, tenant.org_id, 1, "code")
    delivered: list[str] = []

    def deliver(message: OutboxMessage, payload: dict[str, Any]) -> Any:
        from service.outbox.dispatcher import Outcome

        delivered.append(message.kind)
        return Outcome(ok=True)

    with app.app_context():
        sms = RecordingSms()
        lane = _dispatcher(app, sms)
        lane.channels, lane.webhook_sender = SMS_LANE, deliver
        assert lane.drain() == 1 and (sms.calls, delivered) == (["code-0"], [])
        slow = _dispatcher(app, sms)
        slow.channels, slow.webhook_sender = SLOW_LANE, deliver
        assert slow.drain() == 1 and (sms.calls, delivered) == (["code-0"], ["consent.granted"])


def test_start_dispatcher_runs_one_thread_per_lane_with_its_own_name(app: Flask) -> None:
    from service.outbox.dispatcher import start_dispatcher

    threads, stop = start_dispatcher(app)
    try:
        assert sorted(thread.name for thread in threads) == [
            "consent-gate-dispatch-sms",
            "consent-gate-dispatch-webhook",
        ]
        assert all(thread.is_alive() for thread in threads)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


@pytest.mark.committed
def test_a_dispatcher_that_fails_mid_batch_lets_go_of_its_rows(app: Flask, tenant: Tenant) -> None:
    """The claim's lease is short (the rows of a batch it could not reach go to another soon), and a failure
    in the loop lets go of the rows at once: another dispatcher sends them without waiting for the lease."""
    from service.outbox.dispatcher import CLAIM_LEASE, LEASE

    assert CLAIM_LEASE < LEASE
    _queue(app, tenant.org_id, 3, "batch")
    stop = threading.Event()
    failing = _dispatcher(app, RecordingSms())

    def broken_settle(session: Any, message: OutboxMessage, outcome: Any) -> None:
        stop.set()  # one turn of the loop
        raise RuntimeError("the database went away mid-batch")

    failing._settle = broken_settle  # type: ignore[method-assign]
    with app.app_context():
        claimed = failing.claim(db.session())
        assert len(claimed) == 3
        assert all(row.lease_until is not None and row.lease_until <= utcnow() + CLAIM_LEASE for row in claimed)
        db.session().commit()  # the reads above began a transaction (on SQLite, a writer's)
        assert failing.release() == 3
        failing.run(stop)  # claims again, fails on the first row's settling, lets go of all three
        rows = db.session().scalars(select(OutboxMessage).execution_options(populate_existing=True)).all()
        assert {(row.status, row.claimed_by, row.lease_until) for row in rows} == {("queued", None, None)}
        db.session().commit()
        other = RecordingSms()
        assert _dispatcher(app, other).drain() == 3
    assert sorted(other.calls) == ["batch-0", "batch-1", "batch-2"]
