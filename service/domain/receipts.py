"""Consent receipts: the fields of ISO/IEC TS 27560, signed with the consent-token key."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.consent_lifecycle import effective_status
from service.domain.purposes import purpose_terms
from service.keys.tokens import ALGORITHM, KeySet
from service.models import AuditEvent, Consent, GuardianRequest, Organization, utcnow

RECEIPT_TYPE = "consent-receipt+jws"
RECEIPT_NAMESPACE = uuid.UUID("6f1d7a3e-6c2b-4f55-9d1e-3b0a7f4c2e10")


def build_receipt(session: Session, consent: Consent) -> dict[str, Any]:
    org = session.get(Organization, consent.org_id)
    assert org is not None
    purpose = consent.purpose
    now = utcnow()
    guardian: dict[str, Any] | None = None
    if consent.guardian_request_id:
        request = session.get(GuardianRequest, consent.guardian_request_id)
        if request is not None:
            guardian = {
                "relationship": request.guardian_relationship,
                "phone_masked": request.phone_masked,
                "verification": consent.evidence.get("guardian_verification"),
            }
    events = session.execute(
        select(AuditEvent.action, AuditEvent.occurred_at, AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.org_id == consent.org_id, AuditEvent.object_id == consent.id)
        .order_by(AuditEvent.seq)
    ).all()
    texts = purpose.notices[consent.notice_version - 1].texts if purpose.notices else {}
    language = consent.evidence.get("locale") or next(iter(texts), "zh-CN")
    return {
        "schema": "ISO/IEC TS 27560:2023 consent record",
        "receipt_id": str(uuid.uuid5(RECEIPT_NAMESPACE, f"{consent.id}:{consent.updated_at.isoformat()}")),
        "record_id": consent.id,
        "issued_at": now.isoformat(),
        "jurisdiction": "CN",
        "legal_basis": "separate consent (PIPL Art. 14, 29)"
        + (", guardian consent (PIPL Art. 31)" if guardian else ""),
        "subject": {"id": consent.subject_id, "guardian": guardian},
        "controller": {"id": org.id, "name": org.name, "contact": org.contact},
        "purpose": purpose_terms(purpose),
        "personal_data": {"categories": ["facial_recognition_data"], "sensitive": True},
        "notice": {"version": consent.notice_version, "digest": consent.notice_digest, "language": language},
        "retention": {
            "days": purpose.retention_days,
            "ends_at": consent.expires_at.isoformat() if consent.expires_at else None,
        },
        "collection": {
            "method": consent.evidence.get("method"),
            "channel": consent.evidence.get("channel"),
            "recorded_at": consent.evidence.get("recorded_at"),
            # A written consent's form: its digest and the day it was signed.
            **{name: consent.evidence[name] for name in ("form_sha256", "signed_on") if name in consent.evidence},
        },
        "consent": {
            "type": "explicit, separate, written"
            if consent.evidence.get("method") == "written"
            else "explicit, separate",
            "status": effective_status(consent, now),
            "granted_at": consent.granted_at.isoformat() if consent.granted_at else None,
            "guardian_authorized": consent.guardian_authorized,
        },
        "withdrawal": {
            "method": "at any time: POST /v1/consents/{id}/revoke through the organization, the guardian's "
            "withdrawal link, or the organization's contact",
            "contact": org.contact,
            "effective": "immediately",
        },
        "events": [
            {"type": action, "at": at.isoformat(), "audit_seq": seq, "audit_hash": digest}
            for action, at, seq, digest in events
        ],
    }


def sign_receipt(receipt: dict[str, Any], keys: KeySet) -> str:
    payload = json.dumps(receipt, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return jwt.api_jws.PyJWS().encode(
        payload, keys.signing_key, algorithm=ALGORITHM, headers={"typ": RECEIPT_TYPE, "kid": keys.kid}
    )
