"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import logging
import threading
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, Table, create_engine, event, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Select[Any])

READ_ONLY_OPTION = "videoqueue_read_only"
"""An engine execution option: its transactions only read (SQLite begins them DEFERRED)."""


def make_engine(url: str) -> Engine:
    """An engine for a `sqlite:///…` or `postgresql+psycopg://…` URL, tuned for the queue."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can open each one IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # One writer at a time: a transaction that may write takes the write lock up front, so
        # two processes never both read a balance or a queued job and then both write. Reads
        # (`READ_ONLY_OPTION`) begin deferred and, under WAL, never wait for a writer.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    return engine


def locked(stmt: T, *, skip_locked: bool = False) -> T:
    """Lock the selected rows for this transaction (PostgreSQL); SQLite holds its write lock."""
    return stmt.with_for_update(skip_locked=skip_locked)


def increment(session: Session, table: Table, key: dict[str, Any], column: str) -> int:
    """Add 1 to `column` of the row with primary key `key`, creating it at 1; the new value.

    One `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, atomic on both backends, so
    concurrent requests in several processes never lose a count.
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg_stmt = pg_insert(table).values(**key, **{column: 1})
        stmt = pg_stmt.on_conflict_do_update(
            index_elements=list(key), set_={column: table.c[column] + 1}
        ).returning(table.c[column])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite_stmt = sqlite_insert(table).values(**key, **{column: 1})
        stmt = lite_stmt.on_conflict_do_update(
            index_elements=list(key), set_={column: table.c[column] + 1}
        ).returning(table.c[column])
    return int(session.execute(stmt).scalar_one())


JOBS_CHANNEL = "videoqueue_jobs"


def notify_job_queued(session: Session) -> None:
    """Wake workers waiting on PostgreSQL (delivered when the transaction commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {JOBS_CHANNEL}"))


class JobWaiter:
    """Sleeps until a job may be waiting: a NOTIFY on PostgreSQL, else the poll interval.

    Polling stays as the fallback everywhere, so a lost notification (or a lost LISTEN
    connection, which is opened again on the next wait) only delays a job.
    """

    def __init__(self, engine: Engine) -> None:
        self._url: str | None = None
        self._connection: Any = None
        if engine.dialect.name == "postgresql":
            url = engine.url.set(drivername="postgresql")
            self._url = url.render_as_string(hide_password=False)

    def _listening(self) -> Any:
        if self._connection is None and self._url is not None:
            import psycopg

            self._connection = psycopg.connect(self._url, autocommit=True)
            self._connection.execute(f"LISTEN {JOBS_CHANNEL}")
        return self._connection

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return after `timeout` seconds, on a notification, or once `stop` is set."""
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

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
