"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event

T = TypeVar("T", bound=Select[Any])


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
        # One writer at a time: every transaction takes the write lock up front, so two
        # processes never both read a balance or a queued job and then both write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def locked(stmt: T, *, skip_locked: bool = False) -> T:
    """Lock the selected rows for this transaction (PostgreSQL); SQLite holds its write lock."""
    return stmt.with_for_update(skip_locked=skip_locked)
