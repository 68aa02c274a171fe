"""The database: declarative base, one engine per app, one session per request.

The HTTP layer owns the transaction: views call :func:`session` to get the request's session and
commit it themselves; domain functions only flush. Whatever a request did not commit is rolled
back when the request ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


DEFERRED_OPTION = "consent_gate_read_only"
log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _driver_sql(conn: Any, sql: str) -> None:
    """Run a transaction statement on the driver itself, raising SQLAlchemy's errors as it would.

    Cheaper than ``exec_driver_sql``, whose execution machinery costs more than SQLite's ``BEGIN``.
    """
    dbapi = conn.dialect.loaded_dbapi
    try:
        conn.connection.dbapi_connection.execute(sql)
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc


def _configure_sqlite(engine: Engine, lock_path: str | None, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, a busy timeout, and write transactions that take the lock up front.

    pysqlite's own transaction handling is switched off so that every transaction starts with
    ``BEGIN IMMEDIATE`` (reads asked for with :func:`begin_read` start with a plain ``BEGIN``): two
    writers then queue on the lock instead of one failing with ``SQLITE_BUSY`` when it tries to upgrade a
    stale read snapshot. That keeps the per-organization audit chain linear on the embedded database.

    Writers of all worker processes also queue on an ``flock`` of a file beside the database before
    ``BEGIN IMMEDIATE``: the kernel wakes the next writer as soon as the lock is free, where SQLite's own
    busy handler would sleep and poll (1, 2, 5 ... 100 ms), which under load dominates the tail latency.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A served process checkpoints from a background thread (start_wal_checkpoints); this higher
        # automatic threshold is the safety net for processes that run none (the CLI, tests).
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()
        if lock_path is not None:
            record.info["write_lock"] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        fd = record.info.pop("write_lock", None)
        if fd is not None:
            os.close(fd)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only work (the verify path's lookups) asks for a deferred transaction: WAL readers never
        # wait for the write lock.
        if conn.get_execution_options().get(DEFERRED_OPTION):
            _driver_sql(conn, "BEGIN")
            return
        fd = conn.info.get("write_lock")
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            conn.info["write_locked"] = True
        try:
            _driver_sql(conn, "BEGIN IMMEDIATE")
        except BaseException:
            _release(conn)
            raise

    def _release(conn: Any) -> None:
        if conn.info.pop("write_locked", False):
            fcntl.flock(conn.info["write_lock"], fcntl.LOCK_UN)

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        # SQLAlchemy calls this *before* it commits. Commit here, then let the next writer in: released
        # any earlier, the next ``BEGIN IMMEDIATE`` would find SQLite still locked and fall into SQLite's
        # sleeping busy handler. (SQLAlchemy's own commit that follows has nothing left to do.)
        if conn.info.get("write_locked"):
            _driver_sql(conn, "COMMIT")
            _release(conn)

    event.listen(engine, "rollback", _release)


WAL_AUTOCHECKPOINT_PAGES = 10_000
WAL_CHECKPOINT_SECONDS = 0.5


def start_wal_checkpoints(engine: Engine, interval: float = WAL_CHECKPOINT_SECONDS) -> threading.Thread | None:
    """Checkpoint SQLite's write-ahead log from a daemon thread, so that no request pays for it.

    Left to itself, SQLite checkpoints inside the ``COMMIT`` that takes the log past its threshold: that
    request waits for the copy into the database file and its fsync (about 10 ms here, where a
    verification takes well under one). A ``PASSIVE`` checkpoint never blocks readers or writers; it
    runs outside any transaction on a connection of its own. Nothing to do on PostgreSQL.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None

    def run() -> None:
        while True:
            time.sleep(interval)
            try:
                connection = engine.raw_connection()
                try:
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    connection.close()
            except Exception:  # a locked or vanished database: try again next time
                log.warning("WAL checkpoint failed", exc_info=True)

    thread = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
    thread.start()
    return thread


def make_engine(url: str, *, echo: bool = False, timeout_ms: int = 10000) -> Engine:
    """Create the engine for ``url``: SQLite (embedded) or PostgreSQL through psycopg 3.

    ``timeout_ms`` bounds how long a statement may wait (SQLite's busy timeout, PostgreSQL's
    ``statement_timeout``), so a locked or stuck database turns into an error (and a verification into
    ``deny``) instead of a hung request.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": timeout_ms / 1000},
        )
        database = engine.url.database
        _configure_sqlite(engine, f"{database}.writelock" if database and database != ":memory:" else None, timeout_ms)
        return engine
    # hide_parameters: bound values (ids, references) never reach logs or error messages.
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"options": f"-c statement_timeout={int(timeout_ms)}", "connect_timeout": 5},
    )
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use if it has been idle a while (SQLAlchemy's "pessimistic" recipe).

    ``pool_pre_ping`` would ping on every checkout: a round trip per verification. A connection that was
    in use moments ago is taken as alive; if the server went away meanwhile, that one request fails (a
    verification fails closed) and SQLAlchemy discards the pool's connections, so the next one reconnects.
    """

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            if not dbapi_connection.autocommit:
                dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError("stale pooled connection") from exc


class HeldConnections:
    """One connection per thread, kept between uses instead of checked out of the pool for each.

    For the verify path, where a checkout and its return cost more than SQLite's own work. A connection
    unused for ``PING_AFTER_IDLE_SECONDS`` goes back to the pool, so the next checkout tests it again; one
    that saw any failure is discarded; all are closed when ``engine`` is disposed.
    """

    def __init__(self, engine: Engine, *, options: dict[str, Any] | None = None, session_sql: str | None = None):
        """``options`` are execution options for the held connections; ``session_sql`` a setting (``SET
        ...``) for them alone, run when one is checked out of the pool and reset before it goes back."""
        self.engine, self.options, self.session_sql = engine, options or {}, session_sql
        self._local = threading.local()
        self._held: dict[Any, threading.Thread] = {}  # each held connection, and the thread holding it
        self._lock = threading.Lock()
        event.listen(engine, "engine_disposed", self._close_all)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        held = getattr(self._local, "held", None)
        if held is not None and (time.monotonic() - held[1] > PING_AFTER_IDLE_SECONDS or held[0].invalidated):
            self._release(held[0], close=False)
            held = None
        conn = held[0] if held is not None else self._checkout()
        self._local.held = None
        try:
            yield conn
            if conn.in_transaction():  # nothing carries over to the next use, not even an empty transaction
                conn.rollback()
        except BaseException:
            self._release(conn, close=True)
            raise
        self._local.held = (conn, time.monotonic())

    def _checkout(self) -> Any:
        self._release_orphans()
        conn = self.engine.connect()
        if self.options:
            conn.execution_options(**self.options)
        if self.session_sql:
            try:
                _driver_sql(conn, self.session_sql)
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
        with self._lock:
            self._held[conn] = threading.current_thread()
        return conn

    def _release_orphans(self) -> None:
        """Give back the connections of threads that have ended (a server with a thread per request
        starts a new one for each): they would otherwise stay out of the pool until it ran dry."""
        with self._lock:
            orphans = [conn for conn, thread in self._held.items() if not thread.is_alive()]
            for conn in orphans:
                del self._held[conn]
        for conn in orphans:
            self._give_back(conn, close=False)

    def _release(self, conn: Any, *, close: bool) -> None:
        with self._lock:
            self._held.pop(conn, None)
        self._give_back(conn, close=close)

    def _give_back(self, conn: Any, *, close: bool) -> None:
        if close and not conn.invalidated:
            conn.invalidate()  # whatever failed, this connection's state is unknown: never reuse it
        elif self.session_sql and not conn.invalidated:
            try:
                _driver_sql(conn, "RESET ALL")  # the pool's next user gets the server's defaults
            except Exception:
                conn.invalidate()
        _close(conn)

    def _close_all(self, _engine: Engine) -> None:
        with self._lock:
            held, self._held = list(self._held), {}
        for conn in held:
            conn.invalidate()
            _close(conn)


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        if conn.in_transaction():
            conn.rollback()
    conn.close()


def init_app(app: Flask) -> None:
    engine = make_engine(
        app.config["DATABASE_URL"], echo=app.config["SQL_ECHO"], timeout_ms=app.config["DB_TIMEOUT_MS"]
    )
    app.extensions["consent_gate.engine"] = engine
    app.extensions["consent_gate.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["consent_gate.engine"]


def session() -> Session:
    """The session of the current request (or app context), created on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["consent_gate.sessionmaker"]()
    return g.db_session


def begin_read(db_session: Session) -> None:
    """Start the session's next transaction as a read: deferred on SQLite, a plain transaction elsewhere."""
    db_session.connection(execution_options={DEFERRED_OPTION: True})


def _close_session(_exc: BaseException | None) -> None:
    db_session: Session | None = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
