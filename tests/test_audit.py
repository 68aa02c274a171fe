"""The tamper-evident audit trail (R15)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from service import db
from service.domain.audit import GENESIS, canonical_json
from service.models import AuditEvent

if TYPE_CHECKING:
    from tests.support import Tenant


def journey(tenant: Tenant) -> dict[str, Any]:
    tenant.purpose()
    tenant.post("/v1/purposes/door_access/notices", {"texts": {"zh-CN": "新版告知", "en": "v2"}, "material": False})
    person = tenant.subject()
    consent = tenant.consent(person["id"], notice_version=2).json
    tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents")
    tenant.delete(f"/v1/subjects/{person['id']}")
    return consent  # type: ignore[no-any-return]


def test_r15_every_state_change_is_an_audit_event(tenant: Tenant) -> None:
    journey(tenant)
    actions = [e["action"] for e in tenant.get("/v1/audit/events").json["events"]]
    assert actions == [
        "organization.created",
        "api_key.created",
        "api_key.created",
        "api_key.created",
        "purpose.created",
        "assessment.recorded",
        "notice.published",
        "subject.registered",
        "consent.granted",
        "consent.revoked",
        "subject.erased",
    ]


def test_r15_events_are_chained_by_sha256(tenant: Tenant) -> None:
    journey(tenant)
    events = tenant.get("/v1/audit/events").json["events"]
    prev = GENESIS
    for index, event in enumerate(events, start=1):
        assert event["seq"] == index
        assert event["prev_hash"] == prev
        body = canonical_json(
            {
                "org_id": tenant.org_id,
                "seq": event["seq"],
                "occurred_at": event["occurred_at"],
                "actor": event["actor"],
                "action": event["action"],
                "object_type": event["object_type"],
                "object_id": event["object_id"],
                "data": event["data"],
            }
        )
        assert event["hash"] == hashlib.sha256((prev + body).encode()).hexdigest()
        prev = event["hash"]


def test_r15_paging_with_after_and_limit(tenant: Tenant) -> None:
    journey(tenant)
    first = tenant.get("/v1/audit/events?limit=4").json
    assert [e["seq"] for e in first["events"]] == [1, 2, 3, 4]
    rest = tenant.get(f"/v1/audit/events?after={first['next_after']}&limit=1000").json
    assert rest["events"][0]["seq"] == 5
    assert tenant.get("/v1/audit/events?limit=5000").status_code == 422
    assert tenant.get("/v1/audit/events?after=-1").status_code == 422


def test_r15_audit_verify_passes_on_an_intact_trail(tenant: Tenant, other_tenant: Tenant, runner: Any) -> None:
    journey(tenant)
    journey(other_tenant)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def _event_id(app: Flask, org_id: str, seq: int) -> int:
    with app.app_context():
        return (
            db.session().scalars(select(AuditEvent.id).where(AuditEvent.org_id == org_id, AuditEvent.seq == seq)).one()
        )


def _tamper(app: Flask, statement: Any) -> None:
    with app.app_context():
        session = db.session()
        session.execute(statement)
        session.commit()


@pytest.mark.parametrize("how", ["edited", "deleted", "reordered", "tail_deleted"])
def test_r15_audit_verify_names_the_first_altered_event(tenant: Tenant, app: Flask, runner: Any, how: str) -> None:
    journey(tenant)
    target = _event_id(app, tenant.org_id, 6)
    if how == "edited":
        _tamper(app, update(AuditEvent).where(AuditEvent.id == target).values(data={"purposes": ["forged"]}))
        expected = f"position 6 (event id {target})"
    elif how == "deleted":
        _tamper(app, text("DELETE FROM audit_events WHERE id = :id").bindparams(id=target))
        expected = "position 6"
    elif how == "reordered":
        following = _event_id(app, tenant.org_id, 7)
        _tamper(app, update(AuditEvent).where(AuditEvent.id == target).values(seq=-1))
        _tamper(app, update(AuditEvent).where(AuditEvent.id == following).values(seq=6))
        _tamper(app, update(AuditEvent).where(AuditEvent.id == target).values(seq=7))
        expected = "position 6"
    else:
        last = _event_id(app, tenant.org_id, 11)
        _tamper(app, text("DELETE FROM audit_events WHERE id = :id").bindparams(id=last))
        expected = "position 11"
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert tenant.org_id in result.output
    assert expected in result.output


def test_r15_a_failed_change_leaves_no_event(tenant: Tenant) -> None:
    tenant.purpose()
    before = len(tenant.get("/v1/audit/events").json["events"])
    person = tenant.subject(age_years=8)
    assert tenant.consent(person["id"]).status_code == 409
    events = tenant.get("/v1/audit/events").json["events"]
    assert len(events) == before + 1  # only subject.registered
    assert events[-1]["action"] == "subject.registered"
