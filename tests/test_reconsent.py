"""People are told of material changes (PIPL Arts. 14, 17): each guardian whose consent a material notice
change moved to ``reconsent_required`` gets an SMS with a fresh link to the new notice (issue 12, point 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from service import db
from service.domain.guardian import Messenger, reconsent
from service.models import Consent, GuardianRequest, OutboxMessage, SmsMessage, Subject, utcnow
from service.outbox.dispatcher import Dispatcher

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support import GuardianKit, Tenant

MATERIAL = {"texts": {"zh-CN": "我们现在还会记录进出时间。", "en": "We now also log entry times."}, "material": True}


def _age_sms(app: Flask, minutes: int = 61) -> None:
    """Every SMS so far sent long enough ago that the phone's allowance is whole again."""
    with app.app_context():
        session = db.session()
        session.execute(update(SmsMessage).values(created_at=utcnow() - timedelta(minutes=minutes)))
        session.commit()


def _approved_child(tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask) -> tuple[dict[str, Any], str]:
    """A child whose guardian approved door access over the SMS link; the consent's id."""
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"], child_display_name="张*明")
    assert created.status_code == 202, created.json
    parent = guardian.browser(guardian.url_from(outbox()[-1]))
    decided = parent.submit(purpose="door_access", attest_guardian="yes", action="approve")
    assert decided.status_code == 200, decided.get_data(as_text=True)
    polled = tenant.get(f"/v1/guardian-requests/{created.json['id']}", scope="consents").json
    assert polled["consents"][0]["status"] == "active"
    _age_sms(app)
    return child, polled["consents"][0]["id"]


def test_pipl17_guardians_are_told_of_material_changes_domain(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    _, consent_id = _approved_child(tenant, guardian, outbox, app)
    sent_before = len(outbox())
    assert tenant.post("/v1/purposes/door_access/notices", MATERIAL).status_code == 201
    with app.app_context():
        session = db.session()
        purpose_id = session.get(Consent, consent_id).purpose_id  # type: ignore[union-attr]
        # Not before the purpose has a current assessment again: its approval could not take effect.
        assert reconsent.due(session, org_id=tenant.org_id, purpose_ids=[purpose_id]) != []
        messenger = Messenger.of(app)
        assert (
            reconsent.ask_guardians(
                session, org_id=tenant.org_id, purpose_ids=[purpose_id], messenger=messenger, hours=72
            ).opened
            == 0
        )
    assert len(outbox()) == sent_before
    tenant.assess(["door_access"])  # the assessment queues the job; the dispatcher runs that function
    assert len(outbox()) == sent_before + 1
    with app.app_context():
        session = db.session()
        assert reconsent.due(session, org_id=tenant.org_id, purpose_ids=[purpose_id]) == []
        assert (
            reconsent.ask_guardians(
                session, org_id=tenant.org_id, purpose_ids=[purpose_id], messenger=Messenger.of(app), hours=72
            ).opened
            == 0
        )  # asked once per notice version
    messages = outbox()[sent_before:]
    assert len(messages) == 1
    body = messages[0]["body"]
    assert "变更了处理孩子人脸信息的告知内容" in body and "可全部不同意" in body
    assert "确认" not in body and "张" not in body  # neutral, and never names the child


@pytest.mark.committed
def test_pipl17_reconsent_link_shows_the_new_notice_and_restores_access(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    child, consent_id = _approved_child(tenant, guardian, outbox, app)
    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    assert tenant.verify("door_access", subject_id=child["id"]).json["reason"] == "reconsent_required"
    tenant.assess(["door_access"])
    parent = guardian.browser(guardian.url_from(outbox()[-1]))
    page = parent.open().get_data(as_text=True)
    assert "我们现在还会记录进出时间。" in page and "张*明" in page
    parent.submit(purpose="door_access", notice_version_door_access="2", attest_guardian="yes", action="approve")
    assert tenant.verify("door_access", subject_id=child["id"]).json["decision"] == "allow"
    old = tenant.get(f"/v1/consents/{consent_id}", scope="consents").json
    assert old["status"] == "reconsent_required"  # the old consent stays what it was; the new one allows
    actions = [(e["action"], e["actor"]) for e in tenant.get("/v1/audit/events").json["events"]]
    assert ("guardian_request.created", "system:reconsent") in actions


def test_pipl17_reconsent_respects_the_sms_allowance(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    child, _ = _approved_child(tenant, guardian, outbox, app)
    _age_sms(app, minutes=0)  # the link and withdrawal SMS just now: the phone's minute is spent
    sent_before = len(outbox())
    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    tenant.assess(["door_access"])
    assert len(outbox()) == sent_before  # nothing beyond the limit
    with app.app_context():
        session = db.session()
        opened = session.scalars(
            select(GuardianRequest)
            .where(GuardianRequest.subject_id == child["id"])
            .order_by(GuardianRequest.created_at)
        ).all()[-1]
        assert (opened.delivery_status, opened.delivery_error) == ("failed", "rate_limited")
        request_id = opened.id
    _age_sms(app)
    resent = tenant.post(f"/v1/guardian-requests/{request_id}/resend", scope="consents")
    assert resent.status_code == 200 and resent.json["delivery_status"] == "queued"
    assert len(outbox()) == sent_before + 1


def test_pipl17_no_reconsent_sms_for_adults_erased_or_grown_children_or_other_tenants(
    tenant: Tenant, other_tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    child, _ = _approved_child(tenant, guardian, outbox, app)
    erased, _ = _second_child(tenant, guardian, outbox, app)
    adult = tenant.subject(age_years=30)
    assert tenant.consent(adult["id"]).status_code == 201
    other_child = guardian.setup_child(other_tenant)
    assert other_tenant.guardian_request(other_child["id"], ["door_access"]).status_code == 202
    other_parent = guardian.browser(guardian.url_from(outbox()[-1]))
    other_parent.submit(purpose="door_access", attest_guardian="yes", action="approve")
    _age_sms(app)
    assert tenant.delete(f"/v1/subjects/{erased['id']}").status_code == 204
    with app.app_context():  # the first child turned 14 meanwhile: they decide for themselves now
        session = db.session()
        session.execute(
            update(Subject)
            .where(Subject.id == child["id"])
            .values(guardian_required_until=utcnow().date() - timedelta(days=1))
        )
        session.commit()
    sent_before = len(outbox())
    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    tenant.assess(["door_access"])
    assert outbox()[sent_before:] == []


def _second_child(tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask) -> tuple[dict[str, Any], str]:
    child = tenant.subject(age_years=7)
    created = tenant.guardian_request(child["id"], ["door_access"], phone="+8613912345678")  # another family
    assert created.status_code == 202, created.json
    guardian.browser(guardian.url_from(outbox()[-1])).submit(
        purpose="door_access", attest_guardian="yes", action="approve"
    )
    polled = tenant.get(f"/v1/guardian-requests/{created.json['id']}", scope="consents").json
    return child, polled["consents"][0]["id"]


@pytest.mark.committed
def test_pipl17_two_assessments_at_once_ask_each_guardian_once(
    tenant: Tenant,
    guardian: GuardianKit,
    outbox: Any,
    app: Flask,
    race: Callable[..., list[list[object]]],
) -> None:
    children = [_approved_child(tenant, guardian, outbox, app)[0], _second_child(tenant, guardian, outbox, app)[0]]
    ids = [child["id"] for child in children]

    def assess() -> object:
        return tenant.assess(["door_access"])["id"]

    def one_job() -> object:  # a dispatcher claiming one row at a time: each takes one of the two jobs
        with app.app_context():
            return Dispatcher.of(app).drain(limit=1)

    for round_ in range(4):
        _age_sms(app)
        version = tenant.post("/v1/purposes/door_access/notices", MATERIAL).json["version"]
        sent_before = len(outbox())
        [results] = race(assess, assess)
        assert all(isinstance(result, str) for result in results), results
        # Each assessment queued a job: two dispatchers run them at once, each asking both children.
        [drained] = race(one_job, one_job)
        assert all(isinstance(result, int) for result in drained), drained
        with app.app_context():
            session = db.session()
            pending = session.scalars(
                select(Consent).where(Consent.subject_id.in_(ids), Consent.status == "pending_guardian")
            ).all()
            assert sorted(c.subject_id for c in pending) == sorted(ids), round_
            assert {c.notice_version for c in pending} == {version}
            # The guardians agree again, and the next change asks them again.
            session.execute(update(Consent).where(Consent.id.in_([c.id for c in pending])).values(status="active"))
            session.execute(
                update(GuardianRequest).where(GuardianRequest.status == "pending").values(status="approved")
            )
            session.commit()
        assert len(outbox()) - sent_before == 2, round_


def test_r6_a_guardian_who_declined_the_new_notice_is_not_texted_again(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    """A refusal is respected (R6): more material changes never text a guardian who declined a fresh link."""
    child, _ = _approved_child(tenant, guardian, outbox, app)
    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    tenant.assess(["door_access"])
    parent = guardian.browser(guardian.url_from(outbox()[-1]))
    assert parent.submit(action="decline").status_code == 200
    _age_sms(app)
    sent_before = len(outbox())
    for _ in range(3):
        tenant.post("/v1/purposes/door_access/notices", MATERIAL)
        tenant.assess(["door_access"])
    assert outbox()[sent_before:] == []
    again = tenant.guardian_request(child["id"], ["door_access"])
    assert (again.status_code, again.json["code"]) == (409, "recently_declined")


def _jobs(app: Flask, org_id: str) -> list[OutboxMessage]:
    with app.app_context():
        session = db.session()
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.org_id == org_id, OutboxMessage.channel == "job")
                .order_by(OutboxMessage.created_at)
            )
        )


def _requests_of(app: Flask, subject_id: str) -> int:
    with app.app_context():
        return len(db.session().scalars(select(GuardianRequest).where(GuardianRequest.subject_id == subject_id)).all())


def test_issue15_the_reconsent_job_is_queued_with_the_change_and_run_after_its_commit(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    """The material change and the assessment write a job in their own transaction; no request asks, and no
    SMS leaves, until a dispatcher runs it (issue 15, point 1)."""
    child, _ = _approved_child(tenant, guardian, outbox, app)
    sent_before = len(outbox())
    requests_before = _requests_of(app, child["id"])
    jobs_before = len(_jobs(app, tenant.org_id))  # each assessment so far queued one (it found nobody to ask)
    assert tenant.post("/v1/purposes/door_access/notices", MATERIAL).status_code == 201
    tenant.assess(["door_access"])
    queued = _jobs(app, tenant.org_id)[jobs_before:]
    assert [(job.kind, job.status) for job in queued] == [("reconsent", "queued"), ("reconsent", "queued")]
    assert _requests_of(app, child["id"]) == requests_before  # nothing was asked inside the requests
    assert len(outbox()) == sent_before + 1  # the dispatcher ran both jobs: the guardian is asked once
    assert _requests_of(app, child["id"]) == requests_before + 1
    settled = _jobs(app, tenant.org_id)
    assert {job.status for job in settled} == {"sent"}
    assert all(job.payload_ciphertext is None for job in settled)
    assert tenant.post("/v1/purposes/door_access/notices", {**MATERIAL, "material": False}).status_code == 201
    assert len(_jobs(app, tenant.org_id)) == jobs_before + 2  # a change that is not material queues nothing


def test_issue15_a_dispatcher_dying_mid_job_leaves_it_to_another(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask
) -> None:
    """A job claimed by a dispatcher that died is run by another once the lease runs out: the guardian is
    still asked, once (before, a crash right after the change's commit lost the SMS)."""
    child, _ = _approved_child(tenant, guardian, outbox, app)
    requests_before = _requests_of(app, child["id"])
    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    sent_before = len(outbox())  # its job ran: no current assessment, nobody asked yet
    tenant.assess(["door_access"])
    with app.app_context():
        session = db.session()
        dead = Dispatcher.of(app)
        claimed = dead.claim(session)  # claimed, never run: the process died here
        assert [(row.channel, row.kind) for row in claimed] == [("job", "reconsent")]
        assert Dispatcher.of(app).drain() == 0  # another leaves it alone while the lease holds
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claimed[0].id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert len(outbox()) == sent_before + 1
    assert _requests_of(app, child["id"]) == requests_before + 1
    assert {job.status for job in _jobs(app, tenant.org_id)} == {"sent"}


def test_issue15_a_child_that_could_not_be_asked_is_asked_when_the_job_runs_again(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One child's failure does not stop the others, and makes the job run again (with backoff) for them."""
    first, _ = _approved_child(tenant, guardian, outbox, app)
    second, _ = _second_child(tenant, guardian, outbox, app)
    _age_sms(app)
    sent_before = len(outbox())
    real = reconsent.open_reconsent
    failing = {first["id"]}

    def flaky(session: Any, reask: reconsent.Reask, **kwargs: Any) -> Any:
        if reask.subject_id in failing:
            raise RuntimeError("the database went away")
        return real(session, reask, **kwargs)

    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    assert len(outbox()) == sent_before  # its job ran: no current assessment, nobody asked yet
    monkeypatch.setattr(reconsent, "open_reconsent", flaky)
    monkeypatch.setitem(app.config, "JOB_RETRY_SECONDS", (3600.0, 3600.0))
    tenant.assess(["door_access"])
    assert len(outbox()) == sent_before + 1  # the second child's guardian is asked
    job = _jobs(app, tenant.org_id)[-1]
    assert (job.status, job.attempts, job.last_error) == ("queued", 1, "reconsent_incomplete")
    failing.clear()
    with app.app_context():
        session = db.session()
        session.execute(update(OutboxMessage).where(OutboxMessage.id == job.id).values(next_attempt_at=utcnow()))
        session.commit()
    assert len(outbox()) == sent_before + 2  # the first child's guardian now, and the second's not again
    assert (_requests_of(app, first["id"]), _requests_of(app, second["id"])) == (2, 2)
    assert {job.status for job in _jobs(app, tenant.org_id)} == {"sent"}


def test_issue15_a_job_asks_a_few_children_per_run_and_goes_on(
    tenant: Tenant, guardian: GuardianKit, outbox: Any, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large school must not hold the dispatcher's lane: a run asks CHILDREN_PER_RUN children, then the job
    is due again at once (not counted as an attempt), until every guardian is asked, each once."""
    from service.outbox import jobs

    first, _ = _approved_child(tenant, guardian, outbox, app)
    second, _ = _second_child(tenant, guardian, outbox, app)
    _age_sms(app)
    monkeypatch.setattr(jobs, "CHILDREN_PER_RUN", 1)
    tenant.post("/v1/purposes/door_access/notices", MATERIAL)
    sent_before = len(outbox())
    # The notice's own job could ask nobody yet (no current assessment): it went past both children all the
    # same, one run each, and ended, rather than looking at the first one again and again.
    assert [(job.status, job.attempts) for job in _jobs(app, tenant.org_id)] == [("sent", 1)]
    tenant.assess(["door_access"])
    with app.app_context():
        assert Dispatcher.of(app).drain(limit=1) == 1  # one run of the job: one child asked
    assert (_requests_of(app, first["id"]), _requests_of(app, second["id"])) in {(2, 1), (1, 2)}
    job = _jobs(app, tenant.org_id)[-1]
    assert (job.status, job.attempts, job.claimed_by) == ("queued", 0, None)
    assert len(outbox()) == sent_before + 2  # the drain runs it again: the other child, then both SMS
    assert (_requests_of(app, first["id"]), _requests_of(app, second["id"])) == (2, 2)
    assert [(job.status, job.attempts) for job in _jobs(app, tenant.org_id)][-1] == ("sent", 1)
