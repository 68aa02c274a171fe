"""The consent lifecycle's rules, called directly in the domain (``service.domain.consent_lifecycle``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.consent_lifecycle import ConsentStatus, StateChanged, activate, end_consent, take_notice
from service.domain.consents import grant_consent, revoke_consent
from service.domain.purposes import publish_notice
from service.domain.statuses import ENDABLE_CONSENT, FINAL_CONSENT, LIVE_CONSENT, GuardianRequestStatus
from service.errors import Conflict
from service.models import AuditEvent, Consent, utcnow

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant

EVIDENCE = {"method": "checkbox", "channel": "mobile_app", "locale": "zh-CN"}


def _grant(db_session: Session, tenant: Tenant, subject_id: str, version: int = 1) -> Consent:
    return grant_consent(
        db_session,
        org_id=tenant.org_id,
        actor="test",
        subject_id=subject_id,
        purpose_code="door_access",
        notice_version=version,
        evidence=EVIDENCE,
    )


def _actions(db_session: Session, consent_id: str) -> list[str]:
    db_session.commit()  # events are appended to the chain at commit
    return list(db_session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == consent_id)))


def test_statuses_are_one_closed_set() -> None:
    assert set(LIVE_CONSENT) < set(ENDABLE_CONSENT)
    assert not set(ENDABLE_CONSENT) & set(FINAL_CONSENT)
    assert set(ENDABLE_CONSENT) | set(FINAL_CONSENT) == set(ConsentStatus)
    assert "pending" in set(GuardianRequestStatus)


def test_r3_a_final_status_never_changes_again(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    consent = _grant(db_session, tenant, tenant.subject()["id"])
    assert end_consent(db_session, consent, status=ConsentStatus.REVOKED, actor="test", reason="withdrawn")
    # The compare-and-set finds it revoked: no expiry, no second revoke, no event for either.
    for status in (ConsentStatus.EXPIRED, ConsentStatus.REVOKED, ConsentStatus.DECLINED):
        assert not end_consent(db_session, consent, status=status, actor="test", reason="late")
    assert consent.status == ConsentStatus.REVOKED
    assert _actions(db_session, consent.id) == ["consent.granted", "consent.revoked"]


def test_r3_revoke_is_idempotent_and_keeps_the_note_out_of_the_trail(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    consent = _grant(db_session, tenant, tenant.subject()["id"])
    first = revoke_consent(db_session, org_id=tenant.org_id, actor="test", consent_id=consent.id, note="他说不用了")
    ended_at = first.ended_at
    again = revoke_consent(db_session, org_id=tenant.org_id, actor="test", consent_id=consent.id, note="again")
    assert again.ended_at == ended_at and again.end_note == "他说不用了" and again.end_reason == "withdrawn"
    db_session.commit()
    data = db_session.scalars(
        select(AuditEvent.data).where(AuditEvent.object_id == consent.id, AuditEvent.action == "consent.revoked")
    ).all()
    assert data == [{"subject_id": consent.subject_id, "purpose": "door_access", "reason": "withdrawn"}]


def test_r4_a_pending_consent_that_moved_cannot_be_activated(
    tenant: Tenant, db_session: Session, guardian: GuardianKit
) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"], delivery="qr").json
    consent = db_session.get(Consent, created["consents"][0]["id"])
    assert consent is not None and consent.status == ConsentStatus.PENDING_GUARDIAN
    assert end_consent(db_session, consent, status=ConsentStatus.REVOKED, actor="test", reason="withdrawn")
    notice = take_notice(db_session, consent.purpose)
    with pytest.raises(StateChanged):
        activate(
            db_session,
            consent,
            actor="guardian:test",
            notice=notice,
            granted_at=utcnow(),
            expires_at=utcnow(),
            evidence={"method": "checkbox"},
        )
    assert consent.status == ConsentStatus.REVOKED


def test_r5_a_grant_binds_to_the_notice_it_read_under_the_lock(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    person = tenant.subject()["id"]
    publish_notice(
        db_session, org_id=tenant.org_id, actor="test", code="door_access", texts={"zh-CN": "第二版"}, material=False
    )
    with pytest.raises(Conflict) as stale:
        _grant(db_session, tenant, person, version=1)
    assert stale.value.code == "stale_notice"
    consent = _grant(db_session, tenant, person, version=2)
    assert (consent.status, consent.notice_version) == (ConsentStatus.ACTIVE, 2)


def test_r5_a_material_change_moves_active_consents_once(tenant: Tenant, db_session: Session) -> None:
    tenant.purpose()
    consent = _grant(db_session, tenant, tenant.subject()["id"])
    publish_notice(
        db_session, org_id=tenant.org_id, actor="test", code="door_access", texts={"zh-CN": "变更"}, material=True
    )
    db_session.refresh(consent)
    assert consent.status == ConsentStatus.RECONSENT_REQUIRED
    # A consent that is no longer active is not moved (nor recorded) again.
    publish_notice(
        db_session, org_id=tenant.org_id, actor="test", code="door_access", texts={"zh-CN": "再变"}, material=True
    )
    assert _actions(db_session, consent.id).count("consent.reconsent_required") == 1
