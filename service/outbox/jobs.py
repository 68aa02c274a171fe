"""Jobs: work that a change calls for and that fans out, queued in the outbox like a message.

A material notice change, or the assessment that makes a purpose consentable again, owes each guardian
concerned an SMS with a fresh link (``service.domain.guardian.reconsent``). Each child is asked in a
transaction of its own, starting with the child's lock (the lock order forbids taking it under the
organization's), so the asking cannot happen inside the change's transaction. What is written there is the
*job*: one outbox row (``channel: job``, ``kind: reconsent``, the purposes). It leaves only if the change
commits, and a dispatcher runs it after that commit, with no request waiting: a crash between the two
loses nothing.

Running a job twice is harmless: a child already asked (their newest consent to the purpose is no longer
``reconsent_required``) is not asked again, and two dispatchers asking the same child at once meet on the
child's lock. A child that could not be asked (a database error) makes the job fail *retryably*, so that
the dispatcher runs it again on ``JOB_RETRY_SECONDS`` and asks only those left. A run asks at most
``CHILDREN_PER_RUN`` children, then the job is due again at once, behind what else is due, going on after
the last child it looked at (its body keeps the place): a large school neither holds the dispatcher's lane
nor outlasts its claim, and children that cannot be asked yet do not stop the pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service import outbox
from service.keys.crypto import DataProtector
from service.models import OutboxMessage
from service.outbox.dispatcher import Outcome

RECONSENT = "reconsent"
#: Children asked per run of a job: then it lets the dispatcher go on to what else is due, and is run again
#: at once for the next ones (a school of thousands must not hold the lane, nor its claim outlast its lease).
CHILDREN_PER_RUN = 25


def queue_reconsent(session: Session, protector: DataProtector, *, org_id: str, purpose_ids: list[str]) -> bool:
    """In the change's transaction, under the purposes' locks: ask, after its commit, each guardian owed a
    fresh link for these purposes; whether any was (no job is queued when nobody is).

    The caller holds the purposes' row locks (a notice change and an assessment both take them), so the look
    sees what a change of the same purpose committed before: an assessment that follows a material change
    finds the guardians that change moved, and one that ran first is not current for the new notice anyway.
    """
    from service.domain.guardian.reconsent import due

    if not due(session, org_id=org_id, purpose_ids=purpose_ids):
        return False
    outbox.enqueue(
        session,
        protector,
        org_id=org_id,
        channel=outbox.JOB,
        kind=RECONSENT,
        payload={"purpose_ids": sorted(set(purpose_ids))},
    )
    return True


@dataclass(frozen=True)
class JobRunner:
    """Runs a claimed job in sessions of its own (each child commits apart); how it went, as an ``Outcome``."""

    sessions: Callable[[], Session]
    messenger: Any  # service.domain.guardian.Messenger (imported late: the guardian domain imports the outbox)
    hours: int
    per_run: int = CHILDREN_PER_RUN

    @classmethod
    def of(cls, app: Any) -> JobRunner:
        from service.domain.guardian import Messenger

        return cls(
            sessions=app.extensions["consent_gate.sessionmaker"],
            messenger=Messenger.of(app),
            hours=app.config["GUARDIAN_REQUEST_HOURS"],
            per_run=CHILDREN_PER_RUN,
        )

    def run(self, message: OutboxMessage, payload: dict[str, Any]) -> Outcome:
        if message.kind != RECONSENT:
            return Outcome(ok=False, error="unknown_job")
        from service.domain.guardian import reconsent

        purpose_ids = list(payload.get("purpose_ids", []))
        failed = int(payload.get("failed", 0))
        with self.sessions() as session:
            asked = reconsent.ask_guardians(
                session,
                org_id=message.org_id,
                purpose_ids=purpose_ids,
                messenger=self.messenger,
                hours=self.hours,
                after=payload.get("after"),
                limit=self.per_run,
            )
        failed += asked.failed
        if asked.more:  # on with the next children; those that failed are tried again after the pass
            return Outcome(
                ok=False, again=True, payload={"purpose_ids": purpose_ids, "after": asked.last, "failed": failed}
            )
        if failed:  # the pass is over: a new one, later, for those left (only they are still due)
            return Outcome(
                ok=False,
                error="reconsent_incomplete",
                retryable=True,
                payload={"purpose_ids": purpose_ids, "after": None, "failed": 0},
            )
        return Outcome(ok=True)
