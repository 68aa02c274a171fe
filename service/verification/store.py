"""The verification store: the statements that read consent state and record decisions, on one connection.

Consent state is read from the database on every call: nothing here is cached, so a withdrawal that
has committed is seen by the very next verification on every instance.

One statement decides and records a request: ``INSERT INTO verifications ... SELECT`` over the request
(a one-row ``VALUES``), joined with its consent, subject, purpose and device, the reason computed by the
rules' SQL expression (``service.verification.rules.reason``) and ``RETURNING`` what was recorded. So a
verification is one round trip, reads and records one consistent snapshot, and its decision can never
differ from its record. The statement is compiled once per dialect. A batch is the same statement over
all its requests: on PostgreSQL over arrays, one per column, unnested (one shape for any number); on
SQLite over a ``VALUES`` list of the next power of two rows, the unused ones left empty (11 shapes).
Tokens are checked and parameters bound before (:func:`prepare`), so no transaction waits on Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Date, Integer, String, bindparam, case, column, func, insert, literal_column, select, values
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Insert

from service.db.prepared import Bound, Prepared
from service.domain.organizations import hash_api_key
from service.keys.api_keys import Caller
from service.keys.tokens import ExpiredToken, InvalidToken, VerifiedTokenCache
from service.models import ApiKey, Consent, Device, Purpose, Subject, Verification, new_sequential_id
from service.models.types import UTCDateTime
from service.verification import rules
from service.verification.rules import Decision, Reason, VerificationRequest

#: One request, as the statement reads it: its id-to-be, its purpose, the consent its token names, the
#: subject it names, the token's subject, its device, and any verdict its token alone gave.
ITEM_COLUMNS = ("vid", "purpose", "consent_id", "subject_id", "token_sub", "device_id", "verdict")
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
Item = tuple[Any, ...]  # values in ITEM_COLUMNS order


def _param(name: str, row: int) -> str:
    """The parameter for ``name`` in row ``row`` of a ``VALUES`` list: ``vid`` in the first, ``vid_1`` ..."""
    return name if row == 0 else f"{name}_{row}"


def _rows(count: int) -> Any:
    """``count`` requests as bound parameters (``_param``): a ``VALUES`` list, any dialect."""
    rows = [tuple(bindparam(_param(name, n), type_=String) for name in ITEM_COLUMNS) for n in range(count)]
    return values(*(column(name, String) for name in ITEM_COLUMNS), name="items").data(rows).cte("items")


#: The statements over a ``VALUES`` list, by their number of rows: one request (any dialect), and SQLite's
#: batches, in powers of two, the unused rows left empty.
_BY_SIZE: dict[int, Prepared] = {}


def _for_size(count: int) -> Prepared:
    size = 1 << (count - 1).bit_length()  # at most 11 shapes for 1 to 1000 requests
    found = _BY_SIZE.get(size)
    if found is None:
        found = _BY_SIZE[size] = Prepared(_statement(_rows(size)))
    return found


def _item_arrays() -> Any:
    """Many requests as one array parameter per column (``vid`` → ``vids`` ...), unnested: PostgreSQL."""
    arrays = [bindparam(f"{name}s", type_=ARRAY(String)) for name in ITEM_COLUMNS]
    return func.unnest(*arrays).table_valued(*ITEM_COLUMNS).render_derived(name="items")


def _statement(items: Any) -> Insert:
    """Decide and record each request of ``items`` (a table of ``ITEM_COLUMNS``), by the rules."""
    consent, subject, purpose, device = (t.__table__ for t in (Consent, Subject, Purpose, Device))
    org = bindparam("org_id", type_=String)
    now, today = bindparam("now", type_=UTCDateTime), bindparam("today", type_=Date)
    earlier = consent.alias("earlier")  # the person's consents for the purpose, newest first
    newest = (
        select(earlier.c.id)
        .where(
            earlier.c.org_id == org,
            earlier.c.subject_id == items.c.subject_id,
            earlier.c.purpose_id == purpose.c.id,
        )
        .order_by(earlier.c.created_at.desc())
        .limit(literal_column("1", Integer))
        .scalar_subquery()
    )
    joined = (
        items.outerjoin(purpose, (purpose.c.org_id == org) & (purpose.c.code == items.c.purpose))
        .outerjoin(
            consent,
            (consent.c.org_id == org)
            & (consent.c.id == case((items.c.consent_id.is_not(None), items.c.consent_id), else_=newest)),
        )
        .outerjoin(
            subject,
            (subject.c.org_id == org) & (subject.c.id == func.coalesce(consent.c.subject_id, items.c.subject_id)),
        )
        .outerjoin(device, (device.c.org_id == org) & (device.c.id == items.c.device_id))
    )
    found = rules.reason(rules.Judged(items, consent, subject, purpose, device), now, today)
    decided = (
        select(
            items.c.vid,
            items.c.purpose,
            items.c.device_id,
            items.c.verdict,
            items.c.consent_id.label("named_consent"),
            func.coalesce(consent.c.subject_id, items.c.subject_id, items.c.token_sub).label("subject_id"),
            consent.c.id.label("consent_id"),
            found.label("reason"),
        )
        .select_from(joined)
        .where(items.c.vid.is_not(None))  # a batch statement's unused rows
        .subquery("decided")
    )
    d = decided.c
    unbound = d.reason == rules.text_constant(Reason.INVALID_TOKEN)  # recorded without the consent it pretended to be
    record = select(
        d.vid,
        org,
        bindparam("api_key_id", type_=String),
        d.purpose,
        case((unbound, None), (d.verdict.is_not(None), d.named_consent), else_=d.consent_id),
        case((unbound, None), else_=d.subject_id),
        d.device_id,
        rules.decision(d.reason),
        d.reason,
        now,
    )
    return (
        insert(Verification)
        .from_select(RECORD_COLUMNS, record)
        .returning(Verification.id, Verification.reason, Verification.consent_id)
    )


DECIDE_AND_RECORD = _for_size(1)
DECIDE_AND_RECORD_MANY = Prepared(_statement(_item_arrays()))  # PostgreSQL


FIND_CALLER = Prepared(
    select(ApiKey.id, ApiKey.org_id, ApiKey.scopes).where(
        ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
    )
)


def find_caller(conn: Connection, secret: str) -> Caller | None:
    """The caller an API key stands for, if it is a key and not revoked."""
    for key_id, org_id, scopes in FIND_CALLER.rows(conn, {"key_hash": hash_api_key(secret)}):
        return Caller(key_id=key_id, org_id=org_id, scopes=frozenset(scopes.split(",")))
    return None


def _item(request: VerificationRequest, decode: Any, org_id: str, keys: Any, issuer: str) -> Item:
    """The statement's row for ``request``: what its token alone decides is decided here, in Python."""
    claims, failure = None, None
    if request.token is not None:
        try:
            claims = decode(request.token, keys, issuer=issuer, audience=org_id)
        except ExpiredToken:
            failure = Reason.EXPIRED
        except InvalidToken:
            failure = Reason.INVALID_TOKEN
        verdict = rules.token_verdict(claims, failure, request.purpose)
    else:
        verdict = None
    return (
        new_sequential_id(),
        request.purpose,
        claims["jti"] if claims else None,
        request.subject_id,
        claims["sub"] if claims else None,
        request.device_id,
        verdict.value if verdict else None,
    )


@dataclass(frozen=True)
class Work:
    """Verifications ready to run: their ids, and the statement with its parameters bound."""

    ids: list[str]
    bound: Bound


def prepare(
    dialect: Dialect,
    *,
    org_id: str,
    api_key_id: str,
    requests: Sequence[VerificationRequest],
    keys: Any,
    issuer: str,
    token_cache: VerifiedTokenCache,
    now: datetime,
) -> Work:
    """Everything before the database, in Python: each token checked, each request's row and the
    statement's parameters. No transaction is open yet, so no lock is held meanwhile."""
    items = [_item(request, token_cache.decode, org_id, keys, issuer) for request in requests]
    ids = [item[0] for item in items]
    shared = {"org_id": org_id, "api_key_id": api_key_id, "now": now, "today": now.date()}
    if len(items) > 1 and dialect.name == "postgresql":  # one statement, whatever the number of items
        arrays = {f"{name}s": list(column) for name, column in zip(ITEM_COLUMNS, zip(*items, strict=True), strict=True)}
        return Work(ids, DECIDE_AND_RECORD_MANY.bind(dialect, {**arrays, **shared}))
    # One request; or a SQLite batch, in this process: a VALUES list of the next power-of-two size.
    named = {
        _param(name, n): value for n, item in enumerate(items) for name, value in zip(ITEM_COLUMNS, item, strict=True)
    }
    return Work(ids, _for_size(len(items)).bind(dialect, {**named, **shared}))


def decide_and_record(conn: Connection, work: Work) -> list[tuple[Decision, str]]:
    """Decide and record the prepared verifications; each decision and verification id, in input order.
    The caller commits (or runs in autocommit)."""
    rows = work.bound.run(conn)
    recorded = {vid: Decision(Reason(reason), consent_id) for vid, reason, consent_id in rows}
    return [(recorded[vid], vid) for vid in work.ids]
