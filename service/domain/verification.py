"""The question recognition systems ask before processing a face, and the record of each answer.

Consent state is read from the database on every call: nothing here is cached, so a withdrawal that
has committed is seen by the very next verification on every instance. A single verification is a batch
of one: the same few queries serve one item or a thousand.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection

from service.db.prepared import Prepared
from service.domain.places import PROHIBITED_LOCATION_TYPES, PUBLIC_PLACE_CATEGORY
from service.keys.tokens import ExpiredToken, InvalidToken, VerifiedTokenCache, decode_consent_token
from service.models import Consent, Device, Purpose, Subject, Verification, new_sequential_id, utcnow


class Reason(enum.StrEnum):
    """Every reason a verification can give: ``consent_active`` allows, all others deny."""

    CONSENT_ACTIVE = "consent_active"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason, not a secret)
    NO_CONSENT = "no_consent"
    UNKNOWN_PURPOSE = "unknown_purpose"
    PURPOSE_MISMATCH = "purpose_mismatch"
    PENDING_GUARDIAN = "pending_guardian"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"
    ASSESSMENT_REQUIRED = "assessment_required"
    DEVICE_UNKNOWN = "device_unknown"
    PROHIBITED_LOCATION = "prohibited_location"
    PUBLIC_SAFETY_ONLY = "public_safety_only"
    SUBJECT_ERASED = "subject_erased"
    UNAVAILABLE = "unavailable"


STATUS_REASONS = {
    "pending_guardian": Reason.PENDING_GUARDIAN,
    "declined": Reason.DECLINED,
    "revoked": Reason.REVOKED,
    "expired": Reason.EXPIRED,
    "reconsent_required": Reason.RECONSENT_REQUIRED,
}


@dataclass(frozen=True)
class VerificationRequest:
    purpose: str
    token: str | None = None
    subject_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class Decision:
    reason: Reason
    consent_id: str | None = None
    subject_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.CONSENT_ACTIVE


_CONSENT_STATE = (
    Consent.id,
    Consent.subject_id,
    Consent.status,
    Consent.expires_at,
    Subject.erased_at,
    Purpose.assessed_until,
    Purpose.code,
    Consent.created_at,
)
SUBJECT_COLUMN, PURPOSE_COLUMN = 1, 6  # positions in _CONSENT_STATE


def _state_query() -> Any:
    return (
        select(*_CONSENT_STATE)
        .join(Subject, Subject.id == Consent.subject_id)
        .join(Purpose, Purpose.id == Consent.purpose_id)
    )


# Statements built once: constructing SQLAlchemy expressions costs more than running these lookups.
# A single item (the common case) uses "=" rather than an expanding IN, which is re-rendered per call.
STATE_BY_CONSENT = _state_query().where(Consent.id == bindparam("consent_id"), Consent.org_id == bindparam("org_id"))
STATE_BY_CONSENTS = _state_query().where(
    Consent.id.in_(bindparam("consent_ids", expanding=True)), Consent.org_id == bindparam("org_id")
)
STATE_BY_SUBJECT = (
    _state_query()
    .where(
        Consent.subject_id == bindparam("subject_id"),
        Consent.org_id == bindparam("org_id"),
        Purpose.code == bindparam("purpose"),
    )
    .order_by(Consent.created_at.desc())
    .limit(1)
)
STATE_BY_SUBJECTS = (
    _state_query()
    .where(
        Consent.subject_id.in_(bindparam("subject_ids", expanding=True)),
        Consent.org_id == bindparam("org_id"),
        Purpose.code.in_(bindparam("purposes", expanding=True)),
    )
    .order_by(Consent.created_at.desc())
)
INSERT_VERIFICATIONS = insert(Verification)
RECORD_COLUMNS = (
    "id",
    "org_id",
    "api_key_id",
    "purpose",
    "consent_id",
    "subject_id",
    "device_id",
    "decision",
    "reason",
    "created_at",
)
# The single-item forms, run on the DBAPI cursor (see service.db.prepared): one verification is the hot path.
STATE_OF_CONSENT = Prepared(STATE_BY_CONSENT)
STATE_OF_SUBJECT = Prepared(STATE_BY_SUBJECT)
INSERT_VERIFICATION = Prepared(INSERT_VERIFICATIONS, column_keys=RECORD_COLUMNS)


def _judge(row: Any, now: datetime) -> Decision:
    consent_id, subject_id, status, expires_at, erased_at, assessed_until = row[:6]
    if erased_at is not None:
        return Decision(Reason.SUBJECT_ERASED, consent_id, subject_id)
    if status != "active":
        return Decision(STATUS_REASONS.get(status, Reason.NO_CONSENT), consent_id, subject_id)
    if expires_at is not None and expires_at <= now:
        return Decision(Reason.EXPIRED, consent_id, subject_id)
    if assessed_until is None or assessed_until < now.date():
        return Decision(Reason.ASSESSMENT_REQUIRED, consent_id, subject_id)
    return Decision(Reason.CONSENT_ACTIVE, consent_id, subject_id)


class _Batch:
    """Decides many requests with a handful of queries, whatever their number."""

    def __init__(self, conn: Connection, org_id: str, keys: Any, issuer: str, token_cache: VerifiedTokenCache | None):
        # Core statements on a plain connection: the ORM's per-statement bookkeeping would be most of
        # the cost of these small lookups.
        self.conn = conn
        self.org_id, self.keys, self.issuer = org_id, keys, issuer
        self.decode = token_cache.decode if token_cache is not None else decode_consent_token
        self.now = utcnow()

    def decide(self, requests: Sequence[VerificationRequest]) -> list[Decision]:
        decisions: list[Decision | None] = [None] * len(requests)
        by_token: dict[int, dict[str, Any]] = {}
        by_subject: list[int] = []
        for position, request in enumerate(requests):
            if request.token is None:
                by_subject.append(position)
                continue
            try:
                claims = self.decode(request.token, self.keys, issuer=self.issuer, audience=self.org_id)
            except ExpiredToken:
                decisions[position] = Decision(Reason.EXPIRED)
                continue
            except InvalidToken:
                decisions[position] = Decision(Reason.INVALID_TOKEN)
                continue
            if claims["pur"] != request.purpose:
                decisions[position] = Decision(Reason.PURPOSE_MISMATCH, claims["jti"], claims["sub"])
                continue
            by_token[position] = claims
        self._decide_tokens(requests, by_token, decisions)
        self._decide_subjects(requests, by_subject, decisions)
        final = [d or Decision(Reason.NO_CONSENT) for d in decisions]
        return self._apply_devices(requests, final)

    def _decide_tokens(
        self,
        requests: Sequence[VerificationRequest],
        claims: dict[int, dict[str, Any]],
        decisions: list[Decision | None],
    ) -> None:
        if not claims:
            return
        ids = list({c["jti"] for c in claims.values()})
        found = (
            STATE_OF_CONSENT.rows(self.conn, {"consent_id": ids[0], "org_id": self.org_id})
            if len(ids) == 1
            else self.conn.execute(STATE_BY_CONSENTS, {"consent_ids": ids, "org_id": self.org_id})
        )
        rows = {row[0]: row for row in found}
        for position, claim in claims.items():
            row = rows.get(claim["jti"])
            if row is None:
                decisions[position] = Decision(Reason.NO_CONSENT, None, claim["sub"])
            elif row[SUBJECT_COLUMN] != claim["sub"] or row[PURPOSE_COLUMN] != claim["pur"]:
                # Signed by us, but not for this consent: a token is bound to its consent's subject and
                # purpose (and, by the query's org_id, its organization), not merely to its id.
                decisions[position] = Decision(Reason.INVALID_TOKEN)
            else:
                decisions[position] = _judge(row, self.now)

    def _decide_subjects(
        self, requests: Sequence[VerificationRequest], positions: list[int], decisions: list[Decision | None]
    ) -> None:
        if not positions:
            return
        subjects = {requests[p].subject_id for p in positions}
        purposes = {requests[p].purpose for p in positions}
        newest: dict[tuple[str | None, str], Any] = {}
        rows: Any
        if len(positions) == 1:
            rows = STATE_OF_SUBJECT.rows(
                self.conn,
                {
                    "subject_id": requests[positions[0]].subject_id,
                    "org_id": self.org_id,
                    "purpose": requests[positions[0]].purpose,
                },
            )
        else:
            rows = self.conn.execute(
                STATE_BY_SUBJECTS,
                {"subject_ids": list(subjects), "org_id": self.org_id, "purposes": list(purposes)},
            )
        for row in rows:
            newest.setdefault((row[1], row[6]), row)  # (subject id, purpose code)
        missing = [p for p in positions if (requests[p].subject_id, requests[p].purpose) not in newest]
        known_subjects: dict[str, Any] = {}
        known_purposes: set[str] = set()
        if missing:
            # No consent at all: say precisely why, without revealing anything of another organization.
            known_subjects = {
                subject_id: erased_at
                for subject_id, erased_at in self.conn.execute(
                    select(Subject.id, Subject.erased_at).where(
                        Subject.id.in_({requests[p].subject_id for p in missing}), Subject.org_id == self.org_id
                    )
                )
            }
            known_purposes = set(
                self.conn.scalars(
                    select(Purpose.code).where(
                        Purpose.org_id == self.org_id, Purpose.code.in_({requests[p].purpose for p in missing})
                    )
                )
            )
        for position in positions:
            request = requests[position]
            found = newest.get((request.subject_id, request.purpose))
            if found is not None:
                decisions[position] = _judge(found, self.now)
            elif request.subject_id not in known_subjects:
                decisions[position] = Decision(Reason.NO_CONSENT)
            elif known_subjects[request.subject_id] is not None:
                decisions[position] = Decision(Reason.SUBJECT_ERASED, None, request.subject_id)
            elif request.purpose not in known_purposes:
                decisions[position] = Decision(Reason.UNKNOWN_PURPOSE, None, request.subject_id)
            else:
                decisions[position] = Decision(Reason.NO_CONSENT, None, request.subject_id)

    def _apply_devices(self, requests: Sequence[VerificationRequest], decisions: list[Decision]) -> list[Decision]:
        """Where the face is captured matters (R7): unknown, deactivated or misplaced devices deny."""
        wanted = {r.device_id for r, d in zip(requests, decisions, strict=True) if r.device_id and d.allowed}
        if not wanted:
            return decisions
        devices = {
            row.id: row
            for row in self.conn.execute(
                select(Device.id, Device.active, Device.location_type, Device.public_place).where(
                    Device.id.in_(wanted), Device.org_id == self.org_id
                )
            )
        }
        categories: dict[str, str] = {}
        if any(d.public_place for d in devices.values()):
            categories = {
                code: category
                for code, category in self.conn.execute(
                    select(Purpose.code, Purpose.category).where(Purpose.org_id == self.org_id)
                )
            }
        result = []
        for request, decision in zip(requests, decisions, strict=True):
            refusal = None
            if request.device_id and decision.allowed:
                device = devices.get(request.device_id)
                if device is None or not device.active:
                    refusal = Reason.DEVICE_UNKNOWN
                elif device.location_type in PROHIBITED_LOCATION_TYPES:
                    refusal = Reason.PROHIBITED_LOCATION
                elif device.public_place and categories.get(request.purpose) != PUBLIC_PLACE_CATEGORY:
                    refusal = Reason.PUBLIC_SAFETY_ONLY
            result.append(Decision(refusal, decision.consent_id, decision.subject_id) if refusal else decision)
        return result


def decide_many(
    conn: Connection,
    *,
    org_id: str,
    requests: Sequence[VerificationRequest],
    keys: Any,
    issuer: str,
    token_cache: VerifiedTokenCache | None = None,
) -> list[Decision]:
    """Decide every request, reading only; results keep the input order."""
    return _Batch(conn, org_id, keys, issuer, token_cache).decide(requests)


def record_decisions(
    conn: Connection,
    *,
    org_id: str,
    api_key_id: str,
    requests: Sequence[VerificationRequest],
    decisions: Sequence[Decision],
) -> list[str]:
    """Record every decision (one multi-row insert); return the verification ids. The caller commits."""
    now = utcnow()
    ids = [new_sequential_id() for _ in requests]
    records = []
    for verification_id, request, decision in zip(ids, requests, decisions, strict=True):
        records.append(
            {
                "id": verification_id,
                "org_id": org_id,
                "api_key_id": api_key_id,
                "purpose": request.purpose,
                "consent_id": decision.consent_id,
                "subject_id": decision.subject_id or request.subject_id,
                "device_id": request.device_id,
                "decision": "allow" if decision.allowed else "deny",
                "reason": decision.reason.value,
                "created_at": now,
            }
        )
    INSERT_VERIFICATION.run_many(conn, records)
    return ids
