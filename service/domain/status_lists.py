"""Status lists (IETF OAuth Token Status List, ``statuslist+jwt``): one bit per consent token, 1 = invalid.

The bits are derived from the consents themselves when a list is served, so a revocation, expiry or
erasure sets its bit in the very transaction that changes the consent: there is no second copy to drift.
"""

from __future__ import annotations

from datetime import timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.keys.status_bits import encode_bits
from service.keys.tokens import ALGORITHM, KeySet
from service.models import STATUS_LIST_SIZE, Consent, StatusList, utcnow

STATUS_LIST_TYPE = "statuslist+jwt"
LIST_LIFETIME = timedelta(days=1)


def allocate_index(session: Session, org_id: str) -> tuple[str, int]:
    """Take the next free index of the organization's open list, creating a list when all are full."""
    current = session.scalars(
        select(StatusList)
        .where(StatusList.org_id == org_id, StatusList.next_idx < StatusList.size)
        .order_by(StatusList.created_at)
        .limit(1)
        .with_for_update()
    ).first()
    if current is None:
        current = StatusList(org_id=org_id, size=STATUS_LIST_SIZE, next_idx=0)
        session.add(current)
        session.flush()
    index = current.next_idx
    current.next_idx = index + 1
    session.flush()
    return current.id, index


def assign_index(session: Session, consent: Consent) -> None:
    if consent.status_idx is None:
        consent.status_list_id, consent.status_idx = allocate_index(session, consent.org_id)


def status_uri(public_url: str, list_id: str) -> str:
    return f"{public_url.rstrip('/')}/v1/status-lists/{list_id}"


def invalid_indexes(session: Session, list_id: str) -> list[int]:
    """Every index whose consent no longer backs its token: anything but active and unexpired."""
    now = utcnow()
    rows = session.execute(
        select(Consent.status_idx, Consent.status, Consent.expires_at).where(
            Consent.status_list_id == list_id, Consent.status_idx.is_not(None)
        )
    )
    return [
        idx
        for idx, status, expires in rows
        if idx is not None and (status != "active" or (expires is not None and expires <= now))
    ]


def status_list_token(session: Session, *, list_id: str, keys: KeySet, public_url: str, ttl: int) -> str:
    status_list = session.get(StatusList, list_id)
    if status_list is None:
        raise NotFound("no such status list")
    now = utcnow()
    claims = {
        "sub": status_uri(public_url, list_id),
        "iat": int(now.timestamp()),
        "exp": int((now + LIST_LIFETIME).timestamp()),
        "ttl": ttl,
        "status_list": {"bits": 1, "lst": encode_bits(invalid_indexes(session, list_id), status_list.size)},
    }
    return jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM, headers={"typ": STATUS_LIST_TYPE, "kid": keys.kid})
