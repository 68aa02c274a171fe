"""Deletion confirmations (R13, PIPL 47): once a consent ends, each key that was allowed to use it owes a
deletion of the face data, due ``DELETION_HOURS`` later, confirmed by that key; overdue ones are reported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service import db
from service.domain.consent_lifecycle import expire_overdue
from service.domain.consents import grant_consent, revoke_consent
from service.domain.deletions import list_deletions, owe_late_allows, record_overdue
from service.domain.organizations import create_api_key, hash_api_key
from service.domain.purposes import publish_notice
from service.domain.subjects import erase_subject
from service.models import ApiKey, AuditEvent, Consent, Deletion, Verification, utcnow

if TYPE_CHECKING:
    from tests.support import Race, Tenant

EVIDENCE = {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN"}
HOURS = 72


def _key_id(session: Session, secret: str) -> str:
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret))).one()
    return key.id


def _grant(session: Session, tenant: Tenant) -> Consent:
    subject_id = tenant.subject()["id"]
    return grant_consent(
        session,
        org_id=tenant.org_id,
        actor="test",
        subject_id=subject_id,
        purpose_code="door_access",
        notice_version=1,
        evidence=EVIDENCE,
    )


def _record(session: Session, consent: Consent, key_id: str, decision: str) -> None:
    """A verification record, as the verify path writes it (that path uses connections of its own)."""
    session.add(
        Verification(
            org_id=consent.org_id,
            api_key_id=key_id,
            purpose="door_access",
            consent_id=consent.id,
            subject_id=consent.subject_id,
            decision=decision,
            reason="consent_active" if decision == "allow" else "revoked",
        )
    )
    session.flush()


def _owed(session: Session, consent_id: str) -> set[str]:
    return set(session.scalars(select(Deletion.api_key_id).where(Deletion.consent_id == consent_id)))


# --- The domain ------------------------------------------------------------------------------------------


def test_r13_ended_consent_owes_a_deletion_per_allowed_key_domain(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    allowed = _key_id(db_session, tenant.keys["verify"])
    denied, _ = create_api_key(db_session, org_id=tenant.org_id, scopes=["verify"])
    consent = _grant(db_session, tenant)
    for _ in range(3):  # many allows, one deletion
        _record(db_session, consent, allowed, "allow")
    _record(db_session, consent, denied.id, "deny")
    revoke_consent(db_session, org_id=tenant.org_id, actor="test", consent_id=consent.id, note=None)
    assert _owed(db_session, consent.id) == {allowed}
    row = db_session.scalars(select(Deletion).where(Deletion.consent_id == consent.id)).one()
    assert row.ended_at == consent.ended_at and row.confirmed_at is None
    # Revoking again (idempotent) owes nothing more.
    revoke_consent(db_session, org_id=tenant.org_id, actor="test", consent_id=consent.id, note=None)
    assert db_session.scalars(select(Deletion.id).where(Deletion.consent_id == consent.id)).all() == [row.id]


def _revoke(session: Session, tenant: Tenant, consent: Consent) -> None:
    revoke_consent(session, org_id=tenant.org_id, actor="test", consent_id=consent.id, note=None)


def _erase(session: Session, tenant: Tenant, consent: Consent) -> None:
    erase_subject(session, org_id=tenant.org_id, actor="test", subject_id=consent.subject_id)


def _material_change(session: Session, tenant: Tenant, consent: Consent) -> None:
    publish_notice(
        session, org_id=tenant.org_id, actor="test", code="door_access", texts={"zh-CN": "变更"}, material=True
    )


def _expire(session: Session, tenant: Tenant, consent: Consent) -> None:
    consent.expires_at = utcnow() - timedelta(hours=1)
    session.flush()
    assert expire_overdue(session) == 1


@pytest.mark.parametrize(
    ("end", "status"),
    [(_revoke, "revoked"), (_erase, "revoked"), (_material_change, "reconsent_required"), (_expire, "expired")],
    ids=["revoke", "erase", "material_change", "expiry"],
)
def test_r13_every_way_a_consent_ends_owes_the_deletion_domain(
    tenant: Tenant, db_session: Session, end: Callable[[Session, Tenant, Consent], None], status: str
) -> None:
    tenant.purpose()
    key = _key_id(db_session, tenant.keys["verify"])
    consent = _grant(db_session, tenant)
    _record(db_session, consent, key, "allow")
    end(db_session, tenant, consent)
    db_session.refresh(consent)
    assert consent.status == status
    row = db_session.scalars(select(Deletion).where(Deletion.consent_id == consent.id)).one()
    assert row.api_key_id == key
    if status == "expired":  # due from the moment it expired, not from when the sweep noticed
        assert consent.expires_at is not None and row.ended_at == consent.expires_at


def test_r13_erasing_a_paused_consent_keeps_the_first_deletion_domain(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    key = _key_id(db_session, tenant.keys["verify"])
    consent = _grant(db_session, tenant)
    _record(db_session, consent, key, "allow")
    _material_change(db_session, tenant, consent)
    first = db_session.scalars(select(Deletion).where(Deletion.consent_id == consent.id)).one()
    _erase(db_session, tenant, consent)
    assert db_session.scalars(select(Deletion).where(Deletion.consent_id == consent.id)).one().id == first.id


def test_r13_an_allow_recorded_after_the_end_is_owed_by_the_sweep_domain(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    key = _key_id(db_session, tenant.keys["verify"])
    consent = _grant(db_session, tenant)
    _revoke(db_session, tenant, consent)
    assert _owed(db_session, consent.id) == set()
    # A verification that read the consent as active commits its allow after the end read the records.
    _record(db_session, consent, key, "allow")
    assert owe_late_allows(db_session, hours=HOURS) == 1
    row = db_session.scalars(select(Deletion).where(Deletion.consent_id == consent.id)).one()
    assert (row.api_key_id, row.ended_at) == (key, consent.ended_at)
    assert owe_late_allows(db_session, hours=HOURS) == 0


def test_r13_overdue_is_recorded_once_domain(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    key = _key_id(db_session, tenant.keys["verify"])
    consent = _grant(db_session, tenant)
    _record(db_session, consent, key, "allow")
    _revoke(db_session, tenant, consent)
    assert record_overdue(db_session, hours=HOURS) == 0  # not due yet
    later = utcnow() + timedelta(hours=HOURS, minutes=1)
    assert record_overdue(db_session, hours=HOURS, now=later) == 1
    assert record_overdue(db_session, hours=HOURS, now=later) == 0
    db_session.commit()  # events are appended to the chain at commit
    events = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "deletion.overdue")).all()
    assert [(e.data["consent_id"], e.data["api_key_id"]) for e in events] == [(consent.id, key)]


def test_r13_deletions_page_by_cursor_domain(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    key = _key_id(db_session, tenant.keys["verify"])
    for _ in range(5):
        consent = _grant(db_session, tenant)
        _record(db_session, consent, key, "allow")
        _revoke(db_session, tenant, consent)
    seen: list[str] = []
    cursor = None
    while True:
        page = list_deletions(
            db_session, org_id=tenant.org_id, api_key_id=key, status="pending", hours=HOURS, cursor=cursor, limit=2
        )
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5


# --- Through HTTP (verifications use connections of their own: committed) --------------------------------


def _second_verify_key(app: Flask, tenant: Tenant) -> str:
    with app.app_context():
        session = db.session()
        _, secret = create_api_key(session, org_id=tenant.org_id, scopes=["verify"])
        session.commit()
    return secret


def _as(tenant: Tenant, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.committed
def test_r13_only_the_allowed_key_owes_sees_and_confirms(tenant: Tenant, other_tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    other_key = _second_verify_key(app, tenant)
    consent = tenant.consent(tenant.subject()["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").status_code == 200
    denied = tenant.client.post(
        "/v1/verifications", json={"purpose": "door_access", "token": consent["token"]}, headers=_as(tenant, other_key)
    )
    assert denied.json["decision"] == "deny"

    mine = tenant.get("/v1/deletions?status=pending", scope="verify")
    assert mine.status_code == 200 and mine.json["next_cursor"] is None
    [item] = mine.json["items"]
    assert (item["consent_id"], item["subject_id"], item["purpose"], item["status"]) == (
        consent["id"],
        consent["subject_id"],
        "door_access",
        "pending",
    )
    assert tenant.client.get("/v1/deletions", headers=_as(tenant, other_key)).json["items"] == []
    assert [i["id"] for i in tenant.get("/v1/deletions").json["items"]] == [item["id"]]  # admin: all
    assert other_tenant.get("/v1/deletions").json["items"] == []
    assert tenant.get("/v1/deletions", scope="consents").status_code == 403

    # Neither another organization nor another key may confirm it.
    assert other_tenant.post(f"/v1/deletions/{item['id']}/confirm").status_code == 404
    assert other_tenant.post(f"/v1/deletions/{item['id']}/confirm", scope="verify").status_code == 404
    assert tenant.client.post(f"/v1/deletions/{item['id']}/confirm", headers=_as(tenant, other_key)).status_code == 404
    assert tenant.post("/v1/deletions/no-such-id/confirm", scope="verify").status_code == 404

    first = tenant.post(f"/v1/deletions/{item['id']}/confirm", scope="verify")
    again = tenant.post(f"/v1/deletions/{item['id']}/confirm", scope="verify")
    assert first.status_code == again.status_code == 200
    assert first.json["status"] == "confirmed" and first.json["confirmed_at"] == again.json["confirmed_at"]
    assert tenant.get("/v1/deletions?status=pending", scope="verify").json["items"] == []
    assert [i["id"] for i in tenant.get("/v1/deletions?status=confirmed", scope="verify").json["items"]] == [item["id"]]
    events = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "deletion.confirmed"]
    assert len(events) == 1 and events[0]["data"]["on_behalf"] is False


@pytest.mark.committed
def test_r13_overdue_deletions_are_swept_once_fed_and_reported(tenant: Tenant, app: Flask, runner: Any) -> None:
    tenant.purpose()
    ids = []
    for _ in range(3):
        consent = tenant.consent(tenant.subject()["id"]).json
        assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
        assert tenant.post(f"/v1/consents/{consent['id']}/revoke", scope="consents").status_code == 200
        ids.append(consent["id"])
    assert runner.invoke(args=["sweep"]).output.splitlines()[1].endswith(" 0 now overdue")
    # Two consents ended longer ago than DELETION_HOURS (rows moved back, never a sleep).
    with app.app_context():
        session = db.session()
        session.execute(
            update(Deletion)
            .where(Deletion.consent_id.in_(ids[:2]))
            .values(ended_at=utcnow() - timedelta(hours=app.config["DELETION_HOURS"], minutes=1))
        )
        session.commit()
    assert [i["consent_id"] for i in tenant.get("/v1/deletions?status=overdue", scope="verify").json["items"]] == ids[
        :2
    ]
    assert runner.invoke(args=["sweep"]).output.splitlines()[1].endswith(" 2 now overdue")
    assert runner.invoke(args=["sweep"]).output.splitlines()[1].endswith(" 0 now overdue")
    events = [e for e in tenant.get("/v1/audit/events?limit=1000").json["events"] if e["action"] == "deletion.overdue"]
    assert sorted(e["data"]["consent_id"] for e in events) == sorted(ids[:2])
    feed = tenant.get("/v1/consent-events", scope="verify").json["events"]
    assert sorted(e["consent_id"] for e in feed if e["type"] == "deletion_overdue") == sorted(ids[:2])

    # A late confirmation is still recorded; the report counts what is left.
    overdue = tenant.get("/v1/deletions?status=overdue", scope="verify").json["items"]
    assert tenant.post(f"/v1/deletions/{overdue[0]['id']}/confirm", scope="verify").status_code == 200
    report = tenant.get("/v1/reports/compliance").json
    assert report["deletions"] == {"pending": 2, "overdue": 1, "confirmed": 1}
    page = tenant.get("/v1/reports/compliance.html").get_data(as_text=True)
    assert 'id="deletions"' in page and "<td>2</td><td>1</td><td>1</td>" in page


@pytest.mark.committed
def test_r13_admin_confirms_for_a_removed_key_and_says_so(tenant: Tenant, app: Flask) -> None:
    tenant.purpose()
    consent = tenant.consent(tenant.subject()["id"]).json
    assert tenant.verify("door_access", token=consent["token"]).json["decision"] == "allow"
    assert tenant.delete(f"/v1/subjects/{consent['subject_id']}").status_code == 204  # erasure ends it
    with app.app_context():
        session = db.session()
        key = session.get(ApiKey, _key_id(session, tenant.keys["verify"]))
        assert key is not None
        key.revoked_at = utcnow()
        session.commit()
    [item] = tenant.get("/v1/deletions?status=pending").json["items"]
    confirmed = tenant.post(f"/v1/deletions/{item['id']}/confirm")
    assert confirmed.status_code == 200 and confirmed.json["confirmed_by"].startswith("api_key:")
    assert confirmed.json["confirmed_by"] != f"api_key:{item['api_key_id']}"
    events = [e for e in tenant.get("/v1/audit/events").json["events"] if e["action"] == "deletion.confirmed"]
    assert events[0]["data"]["on_behalf"] is True


@pytest.mark.committed
def test_r13_verifications_racing_a_revoke_leave_every_allowed_key_owing(
    tenant: Tenant, app: Flask, runner: Any, race: Race
) -> None:
    tenant.purpose()
    keys = [tenant.keys["verify"], _second_verify_key(app, tenant)]
    for _ in range(6):
        consent = tenant.consent(tenant.subject()["id"]).json

        def verifier(secret: str, token: str = consent["token"]) -> Callable[[], Any]:
            client = app.test_client()
            body = {"purpose": "door_access", "token": token}
            return lambda: [
                client.post("/v1/verifications", json=body, headers={"Authorization": f"Bearer {secret}"})
                for _ in range(3)
            ]

        def revoke(consent_id: str = consent["id"]) -> Any:
            return app.test_client().post(f"/v1/consents/{consent_id}/revoke", headers=tenant.headers("consents"))

        [results] = race(verifier(keys[0]), verifier(keys[1]), revoke)
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert results[2].status_code == 200
        assert runner.invoke(args=["sweep"]).exit_code == 0
        with app.app_context():
            session = db.session()
            allowed = set(
                session.scalars(
                    select(Verification.api_key_id).where(
                        Verification.consent_id == consent["id"], Verification.decision == "allow"
                    )
                )
            )
            assert _owed(session, consent["id"]) == allowed
