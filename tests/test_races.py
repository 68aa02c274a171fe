"""Races between the parties of a consent (DESIGN.md, "Only the guardian decides; states change once").

Each test releases its threads together behind a ``threading.Barrier`` and repeats the race ``REPS`` times,
each time with fresh objects (a new organization, child, request, consent), and asserts the promise after
every repetition. Each thread has its own Flask test client (or its own app context and session), so each
request runs in its own transaction and commits for real. A thread that hangs fails the test, and an
exception raised in a thread fails it too, with its traceback.

Where a race has two parties, each test first runs both orders one after the other (deterministic: the
first one must win) to show that both outcomes are handled, then the concurrent repetitions, which may
resolve either way: no winner is asserted, only the invariant. ``pytest -s`` prints a one-line tally per
race and database.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import db
from service.domain import guardian as flow
from service.domain.guardian.messages import forget_phone_lookups
from service.domain.statuses import FINAL_CONSENT
from service.models import (
    AuditEvent,
    Consent,
    GuardianLink,
    GuardianRequest,
    Purpose,
    SmsMessage,
    Subject,
    utcnow,
)

if TYPE_CHECKING:
    from tests.support import GuardianKit, MakeTenant, Race, Tenant

REPS = 10
TOGETHER = "together"


# --- running things at once ----------------------------------------------------------------------------


@dataclass
class Racers:
    """What the helpers below need of the test's fixtures."""

    app: Flask
    outbox: Any
    race: Race
    make_tenant: MakeTenant
    guardian: GuardianKit

    def together(self, *callables: Callable[[], Any]) -> list[Any]:
        """Run ``callables`` released together (the ``race`` fixture); each result or exception."""
        [results] = self.race(*callables)
        return results


@pytest.fixture()
def racers(app: Flask, outbox: Any, race: Race, make_tenant: MakeTenant, guardian: GuardianKit) -> Racers:
    return Racers(app, outbox, race, make_tenant, guardian)


def _ok(results: list[Any]) -> list[Any]:
    """Results of the ``race`` fixture, re-raising the first exception a thread raised."""
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read inside its thread (nothing of the test client crosses threads)."""

    status: int
    content_type: str
    text: str
    headers: dict[str, str]
    json: Any
    answered_at: datetime

    @classmethod
    def of(cls, response: Any) -> Answer:
        return cls(
            status=response.status_code,
            content_type=response.content_type or "",
            text=response.get_data(as_text=True),
            headers=dict(response.headers),
            json=response.get_json(silent=True),
            answered_at=datetime.now(UTC),
        )

    @property
    def html(self) -> bool:
        return self.content_type.startswith("text/html") and self.json is None

    def __str__(self) -> str:
        return f"{self.status} {self.content_type} {self.text[:200]!r}"


_addresses = iter(range(1, 2**24))


def _client(app: Flask) -> FlaskClient:
    """A test client of its own, from an address of its own: each guardian (or guesser) is another phone.

    The guardian pages are rate-limited per client address (``RATE_LIMIT_GUARDIAN``), which is not what
    these tests are about.
    """
    client = app.test_client()
    number = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
    return client


def _api(
    app: Flask, tenant: Tenant, method: str, path: str, *, scope: str = "consents", json: Any = None
) -> Callable[[], Answer]:
    """A call to the API with a test client of its own, to run later (in a thread or not)."""
    client = app.test_client()
    headers = tenant.headers(scope)

    def call() -> Answer:
        return Answer.of(client.open(path, method=method, json=json, headers=headers))

    return call


def _guardian_post(r: Racers, path: str, **form: Any) -> Callable[[], Answer]:
    """The guardian's form POST with a browser of its own; the CSRF token is read from the page now."""
    browser = r.guardian.browser(path, client=_client(r.app))
    token = browser.csrf()

    def call() -> Answer:
        return Answer.of(browser.client.post(path, data={"csrf_token": token, **form}))

    return call


def _in_order(
    r: Racers, order: str, first: tuple[str, Callable[[], Any]], second: tuple[str, Callable[[], Any]]
) -> list[Any]:
    """Run two parties together, or one after the other (``order`` names the one that goes first)."""
    if order == TOGETHER:
        return _ok(r.together(first[1], second[1]))
    if order == first[0]:
        one = first[1]()
        return [one, second[1]()]
    assert order == second[0], order
    two = second[1]()
    return [first[1](), two]


def _race(name: str, app: Flask, rep: Callable[[str], str | Iterable[str]], orders: tuple[str, ...] = ()) -> None:
    """Run each order once one after the other (the first must win), then ``REPS`` concurrent repetitions.

    ``rep(order)`` runs one repetition with fresh objects, asserts the invariant, and says which outcome
    happened (a label, or several). Failed assertions are collected across repetitions, so the tally and
    every failing repetition are shown; anything else (a thread's exception, a hang) stops the test.
    """
    problems: list[str] = []
    for order in orders:
        try:
            outcome = rep(order)
            assert outcome == order or (not isinstance(outcome, str) and order in outcome), (
                f"run one after the other, {order} did not win: {outcome}"
            )
        except AssertionError as exc:
            problems.append(f"sequential {order}: {exc}")
    tally: Counter[str] = Counter()
    for index in range(REPS):
        try:
            outcome = rep(TOGETHER)
        except AssertionError as exc:
            tally["FAILED"] += 1
            problems.append(f"concurrent rep {index}: {exc}")
            continue
        tally.update([outcome] if isinstance(outcome, str) else outcome)
    dialect = app.extensions["consent_gate.engine"].dialect.name
    counts = ", ".join(f"{label} {count}" for label, count in sorted(tally.items()))
    print(f"\n{name}[{dialect}]: {REPS} reps, {counts}")
    if problems:
        pytest.fail(f"{name}[{dialect}]: {len(problems)} failing runs:\n" + "\n".join(problems), pytrace=False)


# --- fresh objects ------------------------------------------------------------------------------------


@contextmanager
def _session(app: Flask) -> Iterator[Session]:
    with app.app_context():
        yield db.session()


def _tenant(r: Racers, prefix: str = "Race School") -> Tenant:
    return r.make_tenant(_name(prefix))


def _name(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def _phone() -> str:
    """A fresh mainland mobile number, so that no repetition waits on another's SMS allowance."""
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


@dataclass
class GuardianCase:
    tenant: Tenant
    child_id: str
    request_id: str
    consent_id: str  # door_access
    path: str  # the decision link's path
    org_name: str  # in every SMS of this case


def _guardian_case(r: Racers, *, delivery: str = "sms") -> GuardianCase:
    """A new organization, a child, and a pending guardian request for door_access."""
    org_name, outbox = _name("Race School"), r.outbox
    tenant = r.make_tenant(org_name)
    child = r.guardian.setup_child(tenant)
    before = len(outbox())
    created = tenant.guardian_request(child["id"], ["door_access"], delivery=delivery)
    assert created.status_code == 202, created.json
    if delivery == "sms":
        sent = outbox()[before:]
        assert len(sent) == 1, sent
        path = r.guardian.link_path(r.guardian.url_from(sent[0]))
    else:
        path = r.guardian.link_path(created.json["approve_url"])
    (consent,) = created.json["consents"]
    return GuardianCase(tenant, child["id"], created.json["id"], consent["id"], path, org_name)


def _actions(session: Session, object_id: str) -> list[str]:
    return list(
        session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == object_id).order_by(AuditEvent.id))
    )


def _denies(case_tenant: Tenant, subject_id: str) -> None:
    verdict = case_tenant.verify("door_access", subject_id=subject_id)
    assert verdict.status_code == 200 and verdict.json["decision"] == "deny", verdict.json


def _no_server_error(**answers: Answer) -> None:
    for who, answer in answers.items():
        assert answer.status < 500, f"{who} answered {answer}"


# --- 1. approve x revoke ------------------------------------------------------------------------------


def test_race_approve_x_revoke(app: Flask, outbox: Any, racers: Racers) -> None:
    def rep(order: str) -> str:
        case = _guardian_case(racers)
        approve = _guardian_post(racers, case.path, action="approve", attest_guardian="yes", purpose="door_access")
        revoke = _api(app, case.tenant, "POST", f"/v1/consents/{case.consent_id}/revoke")
        approved, revoked = _in_order(racers, order, ("approve-first", approve), ("revoke-first", revoke))
        _no_server_error(approve=approved, revoke=revoked)
        # A pending or an active consent can always be withdrawn: the revoke never loses.
        assert revoked.status == 200, f"revoke answered {revoked}"
        with _session(app) as session:
            consent = session.get(Consent, case.consent_id)
            assert consent is not None and consent.status == "revoked", f"revoke answered 200, consent {consent.status}"
            actions = _actions(session, case.consent_id)
        assert actions.count("consent.revoked") == 1, actions
        _denies(case.tenant, case.child_id)
        if approved.status == 303:
            assert actions.count("consent.granted") == 1, actions
            return "approve-first"
        assert "consent.granted" not in actions, actions
        assert approved.status in (409, 410), f"the losing approval answered {approved}"
        assert approved.html, f"the losing approval did not answer a page: {approved}"
        return "revoke-first"

    _race("approve_x_revoke", app, rep, orders=("approve-first", "revoke-first"))


# --- 2. approve x erase -------------------------------------------------------------------------------


def test_race_approve_x_erase(app: Flask, outbox: Any, racers: Racers) -> None:
    def rep(order: str) -> list[str]:
        case = _guardian_case(racers)
        approve = _guardian_post(racers, case.path, action="approve", attest_guardian="yes", purpose="door_access")
        erase = _api(app, case.tenant, "DELETE", f"/v1/subjects/{case.child_id}")
        approved, erased = _in_order(racers, order, ("approve-first", approve), ("erase-first", erase))
        _no_server_error(approve=approved, erase=erased)
        assert erased.status == 204, f"erase answered {erased}"
        assert approved.status in (303, 404, 409, 410), f"approve answered {approved}"
        with _session(app) as session:
            subject = session.get(Subject, case.child_id)
            assert subject is not None and subject.erased_at is not None
            statuses = session.scalars(select(Consent.status).where(Consent.subject_id == case.child_id)).all()
            assert statuses and set(statuses) <= set(FINAL_CONSENT), statuses
            # Erasure leaves nothing that reaches the guardian (DESIGN: links, phone lookups).
            request = session.get(GuardianRequest, case.request_id)
            assert request is not None and request.status != "pending"
            assert request.phone_ciphertext is None and request.phone_hash is None, "phone kept after erasure"
            links = session.scalars(select(GuardianLink.kind).where(GuardianLink.request_id == case.request_id)).all()
            assert links == [], f"guardian links left after erasure: {links}"
            # No SMS is reserved for the erased phone once erasure committed; the records from before keep
            # the phone's keyed hash for the allowance's hour only (the sweep clears it then).
            late_rows = session.scalars(
                select(SmsMessage.kind).where(
                    SmsMessage.request_id == case.request_id, SmsMessage.created_at > subject.erased_at
                )
            ).all()
            assert late_rows == [], f"SMS reserved after the erasure: {late_rows}"
            forget_phone_lookups(session, now=utcnow() + timedelta(hours=1, minutes=1))
            session.commit()
            kept = session.scalars(
                select(SmsMessage.kind).where(
                    SmsMessage.request_id == case.request_id, SmsMessage.phone_hash.is_not(None)
                )
            ).all()
            assert kept == [], f"SMS records keep the erased phone's lookup hash past the hour: {kept}"
        _denies(case.tenant, case.child_id)
        # Not asserted, counted: an SMS (the withdrawal link) sent to the phone after the erasure answered.
        late = [
            message
            for message in outbox()
            if case.org_name in message["body"] and datetime.fromisoformat(message["sent_at"]) > erased.answered_at
        ]
        noted = ["sms-after-erasure"] if late else []
        if approved.status == 303:
            return ["approve-first", *noted]
        assert approved.html, f"the losing approval did not answer a page: {approved}"
        return ["erase-first", *noted]

    _race("approve_x_erase", app, rep, orders=("approve-first", "erase-first"))


# --- 3. decline x revoke ------------------------------------------------------------------------------


def test_race_decline_x_revoke(app: Flask, outbox: Any, racers: Racers) -> None:
    def rep(order: str) -> str:
        case = _guardian_case(racers)
        decline = _guardian_post(racers, case.path, action="decline", purpose="door_access")
        revoke = _api(app, case.tenant, "POST", f"/v1/consents/{case.consent_id}/revoke")
        declined, revoked = _in_order(racers, order, ("decline-first", decline), ("revoke-first", revoke))
        _no_server_error(decline=declined, revoke=revoked)
        assert declined.status in (303, 409, 410), f"decline answered {declined}"
        with _session(app) as session:
            consent = session.get(Consent, case.consent_id)
            assert consent is not None
            status = consent.status
            actions = _actions(session, case.consent_id)
        _denies(case.tenant, case.child_id)
        if revoked.status == 200:
            assert status == "revoked", f"revoke answered 200, consent {status}"
            assert actions.count("consent.revoked") == 1 and "consent.declined" not in actions, actions
            return "revoke-first"
        assert revoked.status == 409 and revoked.json["code"] == "consent_ended", f"revoke answered {revoked}"
        assert declined.status == 303, f"revoke lost to no decline: decline answered {declined}"
        assert status == "declined", f"the decline won, consent {status}"
        assert actions.count("consent.declined") == 1 and "consent.revoked" not in actions, actions
        return "decline-first"

    _race("decline_x_revoke", app, rep, orders=("decline-first", "revoke-first"))


# --- 4. expiry sweep x approve ------------------------------------------------------------------------


def test_race_expiry_sweep_x_approve(app: Flask, outbox: Any, racers: Racers) -> None:
    def rep(order: str) -> str:
        case = _guardian_case(racers)
        approve = _guardian_post(racers, case.path, action="approve", attest_guardian="yes", purpose="door_access")

        def sweep() -> bool:
            with _session(app) as session:
                request = session.get(GuardianRequest, case.request_id)
                assert request is not None
                expired = flow.expire_if_due(session, request, now=request.expires_at + timedelta(seconds=1))
                session.commit()
                return expired

        swept, approved = _in_order(racers, order, ("sweep-first", sweep), ("approve-first", approve))
        _no_server_error(approve=approved)
        with _session(app) as session:
            request = session.get(GuardianRequest, case.request_id)
            assert request is not None
            consent_statuses = [c.status for c in request.consents]
            request_status = request.status
            request_actions = _actions(session, case.request_id)
            consent_actions = _actions(session, case.consent_id)
        ends = [a for a in request_actions if a in ("guardian_request.expired", "guardian_request.approved")]
        assert len(ends) == 1, f"request audit: {request_actions}"
        if swept:
            assert approved.status == 410 and approved.html, f"the sweep won, approve answered {approved}"
            assert request_status == "expired" and consent_statuses == ["expired"], (request_status, consent_statuses)
            assert ends == ["guardian_request.expired"] and "consent.granted" not in consent_actions, consent_actions
            _denies(case.tenant, case.child_id)
            return "sweep-first"
        assert approved.status == 303, f"the sweep changed nothing, approve answered {approved}"
        assert request_status == "approved" and consent_statuses == ["active"], (request_status, consent_statuses)
        assert ends == ["guardian_request.approved"] and "consent.expired" not in consent_actions, consent_actions
        verdict = case.tenant.verify("door_access", subject_id=case.child_id).json
        assert verdict["decision"] == "allow", verdict
        return "approve-first"

    _race("expiry_sweep_x_approve", app, rep, orders=("sweep-first", "approve-first"))


# --- 5. grants x material notice ----------------------------------------------------------------------

GRANTS = 4


def test_race_grant_x_material_notice(app: Flask, racers: Racers) -> None:
    def rep(order: str) -> list[str]:
        tenant = _tenant(racers)
        tenant.purpose("door_access")
        adults = [tenant.subject()["id"] for _ in range(GRANTS)]
        body = {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN"}
        grants = [
            _api(
                app,
                tenant,
                "POST",
                "/v1/consents",
                json={"subject_id": adult, "purpose": "door_access", "notice_version": 1, "evidence": body},
            )
            for adult in adults
        ]
        publish = _api(
            app,
            tenant,
            "POST",
            "/v1/purposes/door_access/notices",
            scope="admin",
            json={
                "texts": {"zh-CN": "我们也用人脸识别考勤。", "en": "We now also take attendance by face."},
                "material": True,
            },
        )
        if order == TOGETHER:
            *granted, published = _ok(racers.together(*grants, publish))
        elif order == "grants-first":
            granted = [grant() for grant in grants]
            published = publish()
        else:
            published = publish()
            granted = [grant() for grant in grants]
        _no_server_error(publish=published, **{f"grant{i}": answer for i, answer in enumerate(granted)})
        assert published.status == 201 and published.json["version"] == 2, f"publish answered {published}"
        for answer in granted:
            assert answer.status in (201, 409), f"grant answered {answer}"
            if answer.status == 409:
                assert answer.json["code"] in ("stale_notice", "assessment_required"), answer
        won = [answer.json["id"] for answer in granted if answer.status == 201]
        with _session(app) as session:
            purpose = session.scalars(
                select(Purpose).where(Purpose.org_id == tenant.org_id, Purpose.code == "door_access")
            ).one()
            current = purpose.notice_version
            stale_active = session.scalars(
                select(Consent.id).where(
                    Consent.purpose_id == purpose.id, Consent.status == "active", Consent.notice_version < current
                )
            ).all()
            moved = {c.id: c.status for c in session.scalars(select(Consent).where(Consent.id.in_(won)))}
            reconsent_events = session.scalar(
                select(func.count()).where(
                    AuditEvent.org_id == tenant.org_id, AuditEvent.action == "consent.reconsent_required"
                )
            )
        assert current == 2
        assert stale_active == [], f"active consents on a superseded notice: {stale_active}"
        # A grant that won committed before the change, which then moved it (and said so once).
        assert set(moved.values()) <= {"reconsent_required"}, moved
        assert reconsent_events == len(won), (reconsent_events, len(won))
        for adult in adults:
            _denies(tenant, adult)
        split = "grants-first" if len(won) == GRANTS else "notice-first" if not won else "mixed"
        refused = [f"refused {answer.json['code']}" for answer in granted if answer.status == 409]
        return [split, *["grant-won"] * len(won), *refused]

    _race("grant_x_material_notice", app, rep, orders=("grants-first", "notice-first"))


# --- 6. wrong one-time codes --------------------------------------------------------------------------

GUESSERS = 20


def test_race_wrong_codes_are_counted_atomically(app: Flask, outbox: Any, racers: Racers) -> None:
    def rep(order: str) -> str:
        case = _guardian_case(racers, delivery="qr")
        sender = racers.guardian.browser(case.path, client=_client(app))
        assert sender.submit(action="send_code", purpose="door_access").status_code == 200
        code = racers.guardian.code_from(outbox()[-1])
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        guesses = [
            _guardian_post(racers, case.path, action="approve", attest_guardian="yes", purpose="door_access", otp=wrong)
            for _ in range(GUESSERS)
        ]
        answers = _ok(racers.together(*guesses))
        _no_server_error(**{f"guess{i}": answer for i, answer in enumerate(answers)})
        with _session(app) as session:
            request = session.get(GuardianRequest, case.request_id)
            assert request is not None
            failures, status = request.otp_failures, request.status
            consent_statuses = [c.status for c in request.consents]
            actions = _actions(session, case.request_id)
        assert actions.count("code.failed") == 5, Counter(actions)
        assert actions.count("guardian_request.locked") == 1, Counter(actions)
        assert failures == 5 and status == "locked", (failures, status)
        assert consent_statuses == ["expired"], consent_statuses
        # Four wrong codes say so (400), the fifth locks (410), and the fifteen others find it locked.
        assert Counter(answer.status for answer in answers) == {400: 4, 410: GUESSERS - 4}, [
            str(answer) for answer in answers
        ]
        _denies(case.tenant, case.child_id)
        return "five counted, locked"

    _race("wrong_codes", app, rep)


# --- 7. the SMS allowance -----------------------------------------------------------------------------

SIBLINGS = 8


def test_race_sms_allowance_cannot_be_raced(app: Flask, outbox: Any, racers: Racers) -> None:
    def rep(order: str) -> list[str]:
        phone = _phone()
        school = _tenant(racers, "Pine School")
        school.purpose("door_access")
        children = [school.subject(age_years=8)["id"] for _ in range(SIBLINGS)]
        club = _tenant(racers, "Maple Club")
        club.purpose("door_access")
        club_child = club.subject(age_years=8)["id"]

        def create(tenant: Tenant, child: str) -> Callable[[], Answer]:
            body = {
                "subject_id": child,
                "purposes": ["door_access"],
                "delivery": "sms",
                "locale": "zh-CN",
                "guardian": {"phone": phone, "relationship": "parent"},
            }
            return _api(app, tenant, "POST", "/v1/guardian-requests", json=body)

        before = len(outbox())
        *answers, other = _ok(racers.together(*(create(school, child) for child in children), create(club, club_child)))
        _no_server_error(other=other, **{f"create{i}": answer for i, answer in enumerate(answers)})
        assert other.status == 202, f"another organization's request was held back: {other}"
        created = [index for index, answer in enumerate(answers) if answer.status == 202]
        assert len(created) == 1, [str(answer) for answer in answers]
        for answer in answers:
            if answer.status == 202:
                continue
            assert answer.status == 429 and answer.json["code"] == "rate_limited", str(answer)
            assert 0 < int(answer.headers["Retry-After"]) <= 60, answer.headers
            assert club.org_id not in answer.text and "Maple Club" not in answer.text, str(answer)
        sent = [message for message in outbox()[before:] if message["to"] == phone]
        assert sum("Pine School" in message["body"] for message in sent) == 1, sent
        assert sum("Maple Club" in message["body"] for message in sent) == 1, sent
        assert len(sent) == 2, sent
        with _session(app) as session:
            requests = session.scalars(
                select(GuardianRequest.subject_id).where(GuardianRequest.org_id == school.org_id)
            ).all()
            consents = session.scalars(select(Consent.subject_id).where(Consent.org_id == school.org_id)).all()
            messages = session.scalar(
                select(func.count()).select_from(SmsMessage).where(SmsMessage.org_id == school.org_id)
            )
        winner = children[created[0]]
        assert requests == [winner] and consents == [winner], (requests, consents, winner)
        assert messages == 1
        return ["one sent", f"{SIBLINGS - 1} limited", "other org sent"]

    _race("sms_allowance", app, rep)


# --- 8. revoke x revoke -------------------------------------------------------------------------------

REVOKERS = 5


def test_race_revoke_x_revoke_is_idempotent(app: Flask, racers: Racers) -> None:
    def rep(order: str) -> str:
        tenant = _tenant(racers)
        tenant.purpose("door_access")
        adult = tenant.subject()["id"]
        granted = tenant.consent(adult)
        assert granted.status_code == 201, granted.json
        consent_id = granted.json["id"]
        revokes = [_api(app, tenant, "POST", f"/v1/consents/{consent_id}/revoke") for _ in range(REVOKERS)]
        answers = _ok(racers.together(*revokes))
        assert [answer.status for answer in answers] == [200] * REVOKERS, [str(answer) for answer in answers]
        assert {answer.json["status"] for answer in answers} == {"revoked"}
        ended = {answer.json["ended_at"] for answer in answers}
        assert len(ended) == 1 and None not in ended, ended
        with _session(app) as session:
            actions = _actions(session, consent_id)
        assert actions.count("consent.revoked") == 1, actions
        _denies(tenant, adult)
        return "one revoke recorded"

    _race("revoke_x_revoke", app, rep)
