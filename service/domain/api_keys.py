"""An organization's own API keys: list, create, revoke; and when each was last used.

An ``admin`` key manages its organization's keys and may create keys of any scope, ``admin`` included:
``admin`` is the top scope (whoever holds it can already change everything the other scopes reach), so a
narrower rule would protect nothing. A key may revoke itself: that is what one does with a leaked key.
Revoking a revoked key changes nothing and answers as the first revocation did (idempotent).

An organization holds at most :data:`MAX_ACTIVE_KEYS` active keys (422 ``too_many_keys`` beyond): a leaked
admin key cannot mint keys without end. A key's name is the organization's words, shown on operators'
terminals by ``keys list``: it may hold no control or format characters (422 ``invalid_name``).

``last_used_at`` is written at most once a minute per key and process (:data:`USE_RECORD_SECONDS`), after
the request's answer is decided, never inside the verify path's decision; it is at most that much behind.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.organizations import create_api_key
from service.domain.pages import Page, page
from service.errors import NotFound, Unprocessable
from service.models import ApiKey, Organization, utcnow

#: How often, at most, a key's ``last_used_at`` is written.
USE_RECORD_SECONDS = 60
#: How many keys an organization may hold that are not revoked.
MAX_ACTIVE_KEYS = 100
MAX_NAME_LENGTH = 100
#: Unicode categories a name may not use: control (terminal escapes), format (bidirectional overrides,
#: zero-width characters), surrogates, and line and paragraph separators.
REFUSED_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class TooManyKeys(Unprocessable):
    code = "too_many_keys"


def list_api_keys(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[ApiKey]:
    """The organization's keys, oldest first, revoked ones included."""
    query = select(ApiKey).where(ApiKey.org_id == org_id)
    return page(session, query, ApiKey, kind="api_keys", cursor=cursor, limit=limit)


def key_name(name: str) -> str:
    """A key's name as stored: trimmed, 1 to 100 characters, no control or format character; else 422
    ``invalid_name``."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise Unprocessable(f"a key needs a name of 1 to {MAX_NAME_LENGTH} characters", code="invalid_name")
    if any(unicodedata.category(character) in REFUSED_NAME_CATEGORIES for character in name):
        raise Unprocessable("a key's name may not hold control or format characters", code="invalid_name")
    return name


def shown_name(name: str) -> str:
    """A key's name for a terminal: each control or format character (which names stored before they were
    refused may hold) written as its escape, ``\\u001b``, so that a name can never drive the terminal."""
    return "".join(_escaped(character) for character in name)


def _escaped(character: str) -> str:
    if unicodedata.category(character) not in REFUSED_NAME_CATEGORIES:
        return character
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def new_api_key(
    session: Session, *, org_id: str, actor: str, name: str | None, scopes: list[str], created_by: str | None
) -> tuple[ApiKey, str]:
    """A new key of the organization; the secret is returned once and never stored.

    The API and the command line both create keys here. ``name`` is required by the API (the command line
    may leave it out); ``created_by`` is the creating key's id, ``None`` on the command line. The
    organization's row is locked while its active keys are counted, so two creations at once cannot both
    take the last place.
    """
    if name is not None:
        name = key_name(name)
    if session.get(Organization, org_id, with_for_update=True) is None:
        raise NotFound(f"organization {org_id} does not exist")
    active = session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
    )
    if (active or 0) >= MAX_ACTIVE_KEYS:
        raise TooManyKeys(
            f"an organization holds at most {MAX_ACTIVE_KEYS} active keys: revoke one it no longer uses first"
        )
    return create_api_key(session, org_id=org_id, scopes=scopes, actor=actor, name=name, created_by=created_by)


def get_api_key(session: Session, *, org_id: str, key_id: str) -> ApiKey:
    api_key = session.get(ApiKey, key_id) if 1 <= len(key_id) <= 36 else None
    if api_key is None or api_key.org_id != org_id:
        raise NotFound(f"API key {key_id} does not exist")
    return api_key


def revoke_api_key(session: Session, *, org_id: str | None, key_id: str, actor: str) -> ApiKey:
    """Revoke a key of the organization (``org_id``; ``None``: any, for the command line); again: nothing changes.

    A compare-and-set on ``revoked_at IS NULL``: two revocations racing record one revocation.
    """
    api_key = session.get(ApiKey, key_id) if 1 <= len(key_id) <= 36 else None
    if api_key is None or (org_id is not None and api_key.org_id != org_id):
        raise NotFound(f"API key {key_id} does not exist")
    now = utcnow()
    claimed = session.execute(
        update(ApiKey)
        .where(ApiKey.id == api_key.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(api_key)
    if claimed:
        record_event(
            session,
            org_id=api_key.org_id,
            actor=actor,
            action="api_key.revoked",
            object_type="api_key",
            object_id=api_key.id,
            data={"prefix": api_key.prefix},
        )
    return api_key


def record_key_use(connection: Connection | Session, *, key_id: str, now: datetime | None = None) -> None:
    """Set the key's ``last_used_at`` unless it was set less than :data:`USE_RECORD_SECONDS` ago (by any
    process). Not audited: it is a reading, not a change of what the key may do."""
    now = now or utcnow()
    connection.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - timedelta(seconds=USE_RECORD_SECONDS)),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
