"""Idle workers wake when a job is queued: LISTEN/NOTIFY on PostgreSQL, polling on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.conftest import tiny_spec, wait_until
from videoqueue.billing.ledger import create_account
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.dialect import JobWaiter
from videoqueue.db.session import Database
from videoqueue.jobs import store


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _queue_a_job(db: Database) -> None:
    clock = SystemClock()
    with db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        store.create_job(
            session,
            account_id=account.id,
            model="m",
            engine="preview",
            spec=tiny_spec(),
            price_micros=0,
            max_attempts=1,
            clock=clock,
        )


def _wait_in_thread(waiter: JobWaiter, timeout: float, stop: threading.Event) -> threading.Event:
    woke = threading.Event()

    def wait() -> None:
        waiter.wait(timeout, stop)
        woke.set()

    threading.Thread(target=wait, daemon=True).start()
    return woke


def test_a_queued_job_wakes_a_worker_waiting_on_postgres(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    waiter = JobWaiter(db.engine)
    try:
        woke = _wait_in_thread(waiter, 120.0, threading.Event())
        assert not woke.wait(0.5), "nothing was queued yet"
        _queue_a_job(db)
        assert woke.wait(30.0), "the NOTIFY did not wake the waiter"
    finally:
        waiter.close()


def test_a_stop_request_ends_the_wait_on_sqlite(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite waits on the stop event")
    waiter = JobWaiter(db.engine)
    stop = threading.Event()
    woke = _wait_in_thread(waiter, 120.0, stop)
    assert not woke.wait(0.3)
    stop.set()
    assert woke.wait(30.0)


def test_a_lost_listen_connection_is_opened_again(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    waiter = JobWaiter(db.engine)
    try:
        waiter.wait(0.01, threading.Event())
        with db.engine.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                )
            )
        waiter.wait(0.01, threading.Event())  # finds the connection dead, polls instead
        woke = _wait_in_thread(waiter, 120.0, threading.Event())
        wait_until(lambda: _listeners(db) >= 1)
        _queue_a_job(db)
        assert woke.wait(30.0), "the re-opened LISTEN connection missed the NOTIFY"
    finally:
        waiter.close()


def _listeners(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' "
                    "AND datname = current_database()"
                )
            ).scalar()
            or 0
        )
