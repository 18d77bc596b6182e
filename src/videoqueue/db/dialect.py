"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Executable,
    Insert,
    Select,
    Table,
    create_engine,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Session

from videoqueue.db.commit_hooks import after_commit
from videoqueue.db.writer_gate import LOCK_SUFFIX, WriterGate

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Select[*tuple[Any, ...]])

BUSY_TIMEOUT_S = 30
"""How long a SQLite writer waits for the database (its turn, then SQLite's lock) before it
fails with "database is locked"."""

READ_ONLY_OPTION = "videoqueue_read_only"
"""An engine execution option: its transactions only read (SQLite begins them DEFERRED)."""


def make_engine(url: str) -> Engine:
    """An engine for a `sqlite:///…` or `postgresql+psycopg://…` URL, tuned for the queue."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # Every connection is kept: an overflow connection is closed when returned, so under load
    # a pool smaller than the threads using it opens a connection for most requests (a
    # PostgreSQL backend each). 30 in all per process, as before (10 kept, 20 overflow).
    return create_engine(url, pool_pre_ping=True, pool_size=30, max_overflow=0)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can open each one IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # One writer at a time: a transaction that may write takes the write lock up front, so
        # two processes never both read a balance or a queued job and then both write. Reads
        # (`READ_ONLY_OPTION`) begin deferred and, under WAL, never wait for a writer.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        # Straight to the driver: every transaction begins here, and SQLAlchemy's statement
        # path (events, result set-up) costs more than the BEGIN itself.
        begin = "BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE"
        connection.connection.dbapi_connection.execute(begin)

    return engine


def writer_gate(engine: Engine) -> WriterGate | None:
    """What a write transaction of this process holds while it runs: on SQLite, which has one
    writer at a time, a turn among all the database's writers (`WriterGate`); PostgreSQL locks
    rows, not the database, so there is nothing to hold."""
    if engine.dialect.name != "sqlite":
        return None
    database = _database_file(engine.url)
    lock_path = None if database is None else database.with_name(database.name + LOCK_SUFFIX)
    return WriterGate(lock_path, wait_seconds=BUSY_TIMEOUT_S)


MIGRATION_LOCK_KEY = 0x76715F6D  # "vq_m": a PostgreSQL advisory lock no other code takes


@contextlib.contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Held while migrations run on `connection`, so that processes starting together on one
    database migrate it one after another: the first upgrades, the others find it current.

    On PostgreSQL a session advisory lock (without it each creates the same tables and all but
    one fail); on SQLite the migrations run in one `BEGIN IMMEDIATE` transaction instead.
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()  # a session lock outlives the transaction that took it
    try:
        yield
    finally:
        connection.rollback()  # what a failed migration left, so that the unlock can run
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


def one_at_a_time(session: Session, lock_key: int) -> None:
    """From here to its end, no other transaction that calls this with `lock_key` runs: a
    PostgreSQL advisory transaction lock (SQLite's write transactions already take turns)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})


def locked(stmt: T, *, skip_locked: bool = False, keys_shared: bool = False) -> T:
    """Lock the selected rows for this transaction (PostgreSQL); SQLite holds its write lock.

    `keys_shared`: lock `FOR NO KEY UPDATE`, which still excludes every other locker but lets
    other transactions insert rows that reference these (a foreign key's check takes a KEY
    SHARE lock, which `FOR UPDATE` would make them wait for, or deadlock with)."""
    return stmt.with_for_update(skip_locked=skip_locked, key_share=keys_shared)


def writes_in_one_statement(session: Session) -> bool:
    """Whether one statement may carry a write and more: PostgreSQL takes an `INSERT` or
    `UPDATE … RETURNING` in a WITH, whose rows the rest of the statement writes or reads.
    SQLite takes no write in a WITH, and needs none: its statements run in the process, with
    no round trip to save."""
    return session.get_bind().dialect.name == "postgresql"


def workers_notified(written: Insert) -> Select[tuple[Any]]:
    """`written` (an INSERT of queued jobs) and PostgreSQL's wake-up of the workers, the
    NOTIFY of `notify_job_queued`, as one statement: for sessions `writes_in_one_statement`.
    A NOTIFY of a transaction is sent at its commit, and once however often it is made."""
    rows = written.returning(literal_column("1")).cte("written")
    return func.pg_notify(JOBS_CHANNEL, "").select().select_from(rows)


def increment(session: Session, table: Table, key: dict[str, Any], column: str) -> int:
    """Add 1 to `column` of the row with primary key `key`, creating it at 1; the new value.

    One `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, atomic on both backends, so
    concurrent requests in several processes never lose a count.
    """
    stmt = _increment(session.get_bind().dialect.name, table, tuple(key), column)
    return int(session.execute(stmt, {**key, column: 1}).scalar_one())


@functools.cache
def _increment(dialect: str, table: Table, key: tuple[str, ...], column: str) -> Executable:
    """`increment`'s statement, built once per table (a request counts on every queue)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg_stmt = pg_insert(table).on_conflict_do_update(
            index_elements=list(key), set_={column: table.c[column] + 1}
        )
        return pg_stmt.returning(table.c[column])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    lite_stmt = sqlite_insert(table).on_conflict_do_update(
        index_elements=list(key), set_={column: table.c[column] + 1}
    )
    return lite_stmt.returning(table.c[column])


JOBS_CHANNEL = "videoqueue_jobs"

WAKE_DIR_SUFFIX = "-wake"
"""SQLite waiters bind their sockets in `<database file>-wake/`, beside `-wal` and `-shm`."""
STOP_CHECK_S = 0.2
"""How often a waiter on a socket looks at its stop event."""
_MAX_SOCKET_PATH = 104  # bytes, with the final NUL: macOS's limit (Linux allows 108)
_MAX_SOCKET_NAME = 32  # "<pid>-<8 hex>.sock" and the slash before it


_NOTIFY_JOBS = text(f"NOTIFY {JOBS_CHANNEL}")


def notify_job_queued(session: Session) -> None:
    """Wake idle workers once this transaction commits: a NOTIFY on PostgreSQL (delivered
    at commit), a datagram to each waiting worker's socket on SQLite (sent after commit)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(_NOTIFY_JOBS)
        return
    wake_dir = _wake_dir(bind.engine.url)
    if wake_dir is not None:
        after_commit(session, "wake_workers", partial(_wake_after_commit, wake_dir))


@functools.cache
def _database_file(url: URL) -> Path | None:
    """The SQLite database's file, or None (PostgreSQL, or SQLite in memory)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).resolve()


@functools.cache
def _wake_dir(url: URL) -> Path | None:
    path = _database_file(url)
    return None if path is None else path.with_name(path.name + WAKE_DIR_SUFFIX)


def _wake_after_commit(wake_dir: Path) -> None:
    try:
        _wake_waiters(wake_dir)
    except Exception:  # the job is committed whatever happens here; workers still poll
        log.warning("could not wake the workers waiting in %s", wake_dir, exc_info=True)


def _wake_waiters(wake_dir: Path) -> None:
    """One datagram to each waiter's socket; a socket no process holds any more is removed."""
    try:
        names = [name for name in os.listdir(wake_dir) if name.endswith(".sock")]
    except FileNotFoundError:
        return  # no worker has waited on this database yet
    with (
        _addresses(wake_dir) as address,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender,
    ):
        sender.setblocking(False)
        for name in names:
            try:
                sender.sendto(b"!", address(name))
            except (ConnectionRefusedError, FileNotFoundError):
                (wake_dir / name).unlink(missing_ok=True)  # its worker died without removing it
            except BlockingIOError:
                pass  # its queue is full: it has been woken already


@contextlib.contextmanager
def _addresses(wake_dir: Path) -> Iterator[Callable[[str], str]]:
    """The socket address of each name in `wake_dir`: its path, or where that is too long for
    AF_UNIX (~100 bytes), the same file reached through an open descriptor of the folder
    (`/proc/self/fd/N/name`, Linux; elsewhere the bind fails and workers poll)."""
    if len(os.fsencode(wake_dir)) + _MAX_SOCKET_NAME < _MAX_SOCKET_PATH:
        yield lambda name: str(wake_dir / name)
        return
    folder = os.open(wake_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield lambda name: f"/proc/self/fd/{folder}/{name}"
    finally:
        os.close(folder)


class JobWaiter:
    """Sleeps until a job may be waiting: a NOTIFY on PostgreSQL, a datagram on its socket
    on SQLite (see `notify_job_queued`), else the poll interval.

    Polling stays as the fallback everywhere, so a lost notification (or a lost LISTEN
    connection, which is opened again on the next wait) only delays a job.
    """

    def __init__(self, engine: Engine) -> None:
        self._url: str | None = None
        self._connection: Any = None
        self._socket: socket.socket | None = None
        self._socket_path: Path | None = None
        if engine.dialect.name == "postgresql":
            url = engine.url.set(drivername="postgresql")
            self._url = url.render_as_string(hide_password=False)
        elif (wake_dir := _wake_dir(engine.url)) is not None:
            self._bind(wake_dir)

    def _bind(self, wake_dir: Path) -> None:
        """Bind this waiter's socket now, so a job queued before the first wait still wakes it."""
        name = f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            wake_dir.mkdir(mode=0o700, exist_ok=True)
            with _addresses(wake_dir) as address:
                receiver.bind(address(name))
        except OSError:
            receiver.close()
            log.warning("cannot bind %s; idle workers will poll", wake_dir / name, exc_info=True)
            return
        receiver.setblocking(False)
        self._socket, self._socket_path = receiver, wake_dir / name

    def _listening(self) -> Any:
        if self._connection is None and self._url is not None:
            import psycopg

            self._connection = psycopg.connect(self._url, autocommit=True)
            self._connection.execute(f"LISTEN {JOBS_CHANNEL}")
        return self._connection

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return after `timeout` seconds, on a notification, or once `stop` is set."""
        if self._socket is not None:
            self._wait_for_datagram(self._socket, timeout, stop)
            return
        try:
            connection = self._listening()
            if connection is not None:
                for _ in connection.notifies(timeout=timeout, stop_after=1):
                    pass
                return
        except Exception:
            log.warning("LISTEN connection lost; polling until it is back", exc_info=True)
            self.close()
        stop.wait(timeout)

    @staticmethod
    def _wait_for_datagram(receiver: socket.socket, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([receiver], [], [], min(left, STOP_CHECK_S))
            if readable:
                # One wake-up for however many jobs were queued meanwhile.
                with contextlib.suppress(BlockingIOError):
                    while receiver.recv(64):
                        pass
                return

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._socket_path is not None:
            self._socket_path.unlink(missing_ok=True)
            self._socket_path = None
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
