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
from sqlalchemy import MetaData, create_engine, event, make_url
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


class WriterLockTimeout(Exception):
    """The writer lock was not free within the timeout (raised as the driver's ``OperationalError``)."""


class WriterQueue:
    """This process's writers to one SQLite file: a place in the queue of all processes' writers.

    The threads of the process queue on :attr:`turn`, a lock of the process that hands over at once. The
    thread whose turn it is takes the ``flock`` of the file beside the database for the whole process,
    on one open file of the process's own, so the kernel releases it if the process dies. An uncontended
    lock costs a lock call that does not wait and one non-blocking ``flock``. While another process
    holds it, a helper thread waits in a blocking ``flock``, so that the kernel wakes it the moment the
    lock is free (no polling, no sleeping busy handler), while the writer waits for the helper no longer
    than its deadline: ``flock`` itself cannot time out. A writer that gives up leaves the helper's
    request to the next writer of the process; if nobody wants the lock when the helper gets it, the
    helper lets it go at once.
    """

    def __init__(self, path: str):
        self.path = path
        self._open()

    def _open(self) -> None:
        self.turn = threading.Lock()
        self._state = threading.Condition(threading.Lock())
        self._waiting = False  # the helper is in (or about to enter) a blocking flock
        self._asked = False  # the thread whose turn it is waits for the helper
        self._granted = False  # the helper got the flock for that thread
        self._helper: threading.Thread | None = None
        self.fd = -1
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def after_fork(self) -> None:
        # The child has only the forking thread, and shares the parent's open file (and so its flock):
        # start afresh, on a file of its own. (If the folder is gone, so is the database: writers fail.)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            self._open()

    def acquire(self, timeout: float) -> float | None:
        """Take the turn and the flock within ``timeout`` seconds in all.

        ``None`` when both were free at once (the fast path); otherwise the seconds left of ``timeout``.
        Raises :class:`WriterLockTimeout`, holding neither, when time runs out.
        """
        deadline = None
        if not self.turn.acquire(blocking=False):
            deadline = time.monotonic() + timeout
            if not self.turn.acquire(timeout=max(timeout, 0.0)):
                raise WriterLockTimeout
        try:
            # Only the thread whose turn it is starts the helper: while it is not waiting, nobody else
            # uses the file, and a non-blocking try cannot meet the helper's request.
            if not self._waiting:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
                except BlockingIOError:  # another process writes
                    pass
            if deadline is None:
                deadline = time.monotonic() + timeout
            self._wait_for_helper(deadline)
            return max(deadline - time.monotonic(), 0.0)
        except BaseException:
            self.turn.release()
            raise

    def _wait_for_helper(self, deadline: float) -> None:
        with self._state:
            if not self._waiting:
                self._waiting = True
                if self._helper is None or not self._helper.is_alive():
                    self._helper = threading.Thread(target=self._help, name="sqlite-writer-lock", daemon=True)
                    self._helper.start()
                self._state.notify_all()
            self._asked = True
            try:
                while not self._granted:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WriterLockTimeout
                    self._state.wait(left)
            except BaseException:
                if self._granted:  # granted just as an interrupt came: nobody takes it, let it go
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                raise
            finally:
                self._granted = self._asked = False

    def _help(self) -> None:
        while True:
            with self._state:
                while not self._waiting:
                    self._state.wait()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
                failed = False
            except Exception:  # waiting writers time out; the next one tries again
                log.exception("waiting for the SQLite writer lock failed")
                failed = True
            with self._state:
                if not failed and self._asked:
                    self._granted = True
                    self._state.notify_all()
                elif not failed:  # whoever asked has given up, and nobody else of this process has asked since
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                # Only now: a thread whose turn it is and sees the helper idle takes the flock on the same
                # open file without asking, which would succeed while the helper still held it.
                self._waiting = False

    def release(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.turn.release()


#: One queue per SQLite file (by real path) for the whole process: every engine's writers queue on it.
_writer_queues: dict[str, WriterQueue] = {}
_writer_queues_guard = threading.Lock()


def writer_queue(lock_path: str) -> WriterQueue:
    path = os.path.realpath(lock_path)
    with _writer_queues_guard:
        found = _writer_queues.get(path)
        if found is None:
            found = _writer_queues[path] = WriterQueue(path)
        return found


def _writer_queues_after_fork() -> None:
    global _writer_queues_guard
    _writer_queues_guard = threading.Lock()
    for queue in _writer_queues.values():
        queue.after_fork()


os.register_at_fork(after_in_child=_writer_queues_after_fork)


def _drop_writer_lock(info: dict[str, Any]) -> None:
    """Let the next writer in, if the connection whose ``info`` this is holds the writer lock."""
    if info.pop("write_locked", False):
        info.pop("write_queue").release()


def _configure_sqlite(engine: Engine, lock_path: str | None, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, a busy timeout, and write transactions that take the lock up front.

    pysqlite's own transaction handling is switched off so that every transaction starts with
    ``BEGIN IMMEDIATE`` (reads asked for with :func:`begin_read` start with a plain ``BEGIN``): two
    writers then queue on the lock instead of one failing with ``SQLITE_BUSY`` when it tries to upgrade a
    stale read snapshot. That keeps the per-organization audit chain linear on the embedded database.

    Writers also queue before ``BEGIN IMMEDIATE``, where SQLite's own busy handler would sleep and poll
    (1, 2, 5 ... 100 ms), which under load dominates the tail latency: on a :class:`WriterQueue`, whose
    lock of the process and ``flock`` of a file beside the database wake the next writer as soon as the
    lock is free. The whole wait, in the queue and then in ``BEGIN IMMEDIATE``, is bounded by the busy
    timeout (``DB_TIMEOUT_MS``): a writer that cannot get the lock in time fails with the driver's
    ``OperationalError`` ("database is locked"), as SQLite's own busy timeout does, so that a
    verification denies instead of hanging.
    """
    queue = writer_queue(lock_path) if lock_path is not None else None
    timeout = busy_timeout_ms / 1000

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

    # A connection closed while writing (invalidated), or dropped without a rollback (garbage collected:
    # the pool rolls it back, which fires no "rollback" event), lets the next writer in.
    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        _drop_writer_lock(record.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            _drop_writer_lock(record.info)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only work (the verify path's lookups) asks for a deferred transaction: WAL readers never
        # wait for the write lock.
        if conn.get_execution_options().get(DEFERRED_OPTION):
            _driver_sql(conn, "BEGIN")
            return
        left = None
        if queue is not None:
            try:
                left = queue.acquire(timeout)
            except WriterLockTimeout:
                dbapi = conn.dialect.loaded_dbapi
                raise DBAPIError.instance(
                    "BEGIN IMMEDIATE",
                    None,
                    dbapi.OperationalError(f"database is locked: no writer lock within {busy_timeout_ms} ms"),
                    dbapi.Error,
                ) from None
            info = conn.info
            info["write_queue"] = queue
            info["write_locked"] = True
        try:
            if left is None:
                _driver_sql(conn, "BEGIN IMMEDIATE")
            else:  # SQLite's busy handler gets what is left of the timeout
                _driver_sql(conn, f"PRAGMA busy_timeout={int(left * 1000)}")
                try:
                    _driver_sql(conn, "BEGIN IMMEDIATE")
                finally:
                    _driver_sql(conn, f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        except BaseException:
            _release(conn)
            raise

    def _release(conn: Any) -> None:
        if not conn.invalidated:  # an invalidated connection let the next writer in when it was closed
            _drop_writer_lock(conn.info)

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


def make_engine(
    url: str, *, echo: bool = False, timeout_ms: int = 10000, pool_size: int = 5, max_overflow: int = 10
) -> Engine:
    """Create the engine for ``url``: SQLite (embedded) or PostgreSQL through psycopg 3.

    ``timeout_ms`` bounds how long a statement may wait (SQLite's busy timeout and writer lock,
    PostgreSQL's ``statement_timeout``), and how long a thread may wait for a free connection of the
    pool, so a locked or stuck database turns into an error (and a verification into ``deny``) instead of
    a hung request. The pool keeps ``pool_size`` connections open and opens up to ``max_overflow`` more
    while they are all in use (an in-memory SQLite database has one connection per thread instead).
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": timeout_ms / 1000}
    if url.startswith("sqlite"):
        database = make_url(url).database
        in_memory = database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": timeout_ms / 1000},
            **({} if in_memory else pool),
        )
        _configure_sqlite(engine, None if in_memory else f"{database}.writelock", timeout_ms)
        return engine
    # hide_parameters: bound values (ids, references) never reach logs or error messages.
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"options": f"-c statement_timeout={int(timeout_ms)}", "connect_timeout": 5},
        **pool,
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
    # DB_POOL_SIZE covers every serving thread's connections (config.pool_size); the overflow covers a
    # third connection per thread at once (a PostgreSQL batch verification's transaction).
    engine = make_engine(
        app.config["DATABASE_URL"],
        echo=app.config["SQL_ECHO"],
        timeout_ms=app.config["DB_TIMEOUT_MS"],
        pool_size=app.config["DB_POOL_SIZE"],
        max_overflow=max(10, app.config["WORKER_THREADS"]),
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
