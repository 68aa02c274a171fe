"""The verifier: connections, transactions and failing closed, around the store.

Whatever goes wrong while deciding (a database down or locked, a bug), the answer is deny: callers get
``None`` and the endpoint answers 503 ``{decision: deny, reason: unavailable}``.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from typing import Any

from flask import Flask

from service import db
from service.domain.api_keys import record_key_use
from service.keys.api_keys import Caller, KeyCache
from service.keys.tokens import VerifiedTokenCache
from service.models import utcnow
from service.observability import DECISIONS
from service.verification.rules import Decision, Reason, VerificationRequest
from service.verification.store import Work, decide_and_record, find_caller, prepare

log = logging.getLogger(__name__)

AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


@functools.cache
def _decision_counter(reason: Reason) -> Any:
    """The decisions counter's child for ``reason`` (looking children up costs more than counting)."""
    return DECISIONS.labels("allow" if reason is Reason.CONSENT_ACTIVE else "deny", reason.value)


class Verifier:
    """Authenticates, decides and records verifications on connections of its own.

    Each worker thread keeps one connection between verifications (``db.HeldConnections``), so there is
    at most one per thread on top of the pool's.

    A verification, single or batch, is one statement that reads the state and records the decisions
    (``service.verification.store``). On PostgreSQL it runs in autocommit: atomic (all of a batch's
    records or none), a consistent snapshot of its own, and committed when it returns, so no
    ``BEGIN``/``COMMIT`` round trips are needed. On SQLite it is one short write transaction.

    On PostgreSQL the verifier's connections commit with ``VERIFICATION_SYNCHRONOUS_COMMIT`` (``off`` by
    default): a verification is recorded, visible and atomic before its answer, but the server
    acknowledges it before flushing its log to disk, so a crash of the database server (not of the
    service) can lose the last fraction of a second of verification records. Every consent change
    (grant, withdrawal, erasure) commits on other connections, with the server's full durability.
    """

    def __init__(self, app: Flask, keys: KeyCache):
        self.engine = app.extensions["consent_gate.engine"]
        self.keyring = app.extensions["consent_gate.keyring"]
        self.issuer = app.config["ISSUER"]
        self.keys = keys
        self.token_cache = VerifiedTokenCache()
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            self.held = db.HeldConnections(self.engine)
        else:
            # For the verifier's connections alone: the durability class of verification records (consent
            # changes keep the server's), and one plan per statement, made once: the verify statement's
            # custom plans cost more to make than to run, and its generic plan is as good (index lookups).
            level = app.config["VERIFICATION_SYNCHRONOUS_COMMIT"]
            session = f"SET synchronous_commit TO {level}; SET plan_cache_mode TO force_generic_plan"
            self.held = db.HeldConnections(self.engine, options=AUTOCOMMIT, session_sql=session)

    def caller(self, secret: str) -> Caller | None:
        """The caller an API key stands for (from the key cache, else the database); raises if it cannot tell."""
        cached = self.keys.peek(secret)
        if cached is not None:
            return cached
        read_at = self.keys.clock()  # before the read: an entry lives ttl from what it saw
        with self.held.connection() as conn:
            if self.sqlite:
                conn.execution_options(**{db.DEFERRED_OPTION: True})
                with conn.begin():
                    found = find_caller(conn, secret)
                conn.execution_options(**{db.DEFERRED_OPTION: False})
            else:
                found = find_caller(conn, secret)
        return self.keys.remember(secret, found, read_at=read_at)

    def record_key_use(self, key_id: str) -> None:
        """Write the key's ``last_used_at`` (see :mod:`service.domain.api_keys`); a failure is only logged."""
        try:
            with self.held.connection() as conn, conn.begin():
                record_key_use(conn, key_id=key_id)
        except Exception:
            log.warning("could not record the use of API key %s", key_id, exc_info=True)

    def answer(
        self, caller: Caller, requests: list[VerificationRequest], request_id: str | None = None
    ) -> list[tuple[Decision, str]] | None:
        """Every request's decision and verification id, recorded; ``None`` if anything failed."""
        try:
            work = self._prepare(caller, requests)  # tokens and parameters, before any lock is taken
            if self.sqlite:  # one short write transaction, queued on the writers' lock
                with self.held.connection() as conn, conn.begin():
                    results = decide_and_record(conn, work)
            else:  # one statement in autocommit (a batch's too): atomic, committed when it returns
                with self.held.connection() as conn:
                    results = decide_and_record(conn, work)
        except Exception:
            # Fail closed: whatever went wrong, the answer is deny.
            log.exception("verification failed; answering deny", extra={"request_id": request_id})
            _decision_counter(Reason.UNAVAILABLE).inc(len(requests))
            return None
        for reason, count in Counter(decision.reason for decision, _ in results).items():
            _decision_counter(reason).inc(count)
        return results

    def _prepare(self, caller: Caller, requests: list[VerificationRequest]) -> Work:
        return prepare(
            self.engine.dialect,
            org_id=caller.org_id,
            api_key_id=caller.key_id,
            requests=requests,
            keys=self.keyring.current().public_keys,
            issuer=self.issuer,
            token_cache=self.token_cache,
            now=utcnow(),
        )
