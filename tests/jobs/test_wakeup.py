"""Idle workers wake when a job is queued: LISTEN/NOTIFY on PostgreSQL, a datagram on SQLite."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import load_job, tiny_spec, wait_until
from tests.statements import recorded_statements
from videoqueue.billing.ledger import create_account
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.dialect import WAKE_DIR_SUFFIX, JobWaiter
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.jobs.states import JobState
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _queue_a_job(db: Database, engine: str = "preview") -> str:
    clock = SystemClock()
    with db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        job = store.create_job(
            session,
            account_id=account.id,
            model="m",
            engine=engine,
            spec=tiny_spec("a kite"),
            price_micros=0,
            max_attempts=1,
            clock=clock,
        )
        return job.id


def _wait_in_thread(waiter: JobWaiter, timeout: float, stop: threading.Event) -> threading.Event:
    woke = threading.Event()

    def wait() -> None:
        waiter.wait(timeout, stop)
        woke.set()

    threading.Thread(target=wait, daemon=True).start()
    return woke


def test_a_queued_job_wakes_a_waiting_worker(db: Database) -> None:
    waiter = JobWaiter(db.engine)
    try:
        woke = _wait_in_thread(waiter, 120.0, threading.Event())
        assert not woke.wait(0.5), "nothing was queued yet"
        _queue_a_job(db)
        assert woke.wait(30.0), "the NOTIFY (PostgreSQL) or datagram (SQLite) did not wake it"
    finally:
        waiter.close()
    if db.engine.dialect.name == "sqlite":
        assert list(_wake_dir(db).iterdir()) == [], "a closed waiter leaves its socket behind"


def test_a_job_is_queued_and_its_wake_up_made_in_one_statement(db: Database) -> None:
    """On PostgreSQL the NOTIFY goes in the job's INSERT (a round trip less on every queue
    request); on SQLite the wake-up is a datagram after the commit."""
    with recorded_statements(db) as executed:
        job_id = _queue_a_job(db)
    statements = [statement for statement, _ in executed]
    inserts = [s for s in statements if "INSERT INTO jobs" in s]
    assert len(inserts) == 1, statements
    assert not [s for s in statements if s.startswith("NOTIFY")], statements
    job = load_job(db, job_id)
    assert (job.state, job.model, job.engine, job.attempts) == (JobState.QUEUED, "m", "preview", 0)


def test_a_stop_request_ends_the_wait_on_sqlite(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite waits on the stop event")
    waiter = JobWaiter(db.engine)
    try:
        stop = threading.Event()
        woke = _wait_in_thread(waiter, 120.0, stop)
        assert not woke.wait(0.3)
        stop.set()
        assert woke.wait(30.0)
    finally:
        waiter.close()


def _sqlite_only(db: Database) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the wake-up socket is SQLite's")


def _wake_dir(db: Database) -> Path:
    database = db.engine.url.database
    assert database is not None
    return Path(database + WAKE_DIR_SUFFIX)


def test_a_job_queued_before_the_wait_still_wakes_it(db: Database) -> None:
    _sqlite_only(db)
    waiter = JobWaiter(db.engine)
    try:
        _queue_a_job(db)
        started = time.monotonic()
        waiter.wait(120.0, threading.Event())
        assert time.monotonic() - started < 5.0
    finally:
        waiter.close()


def test_the_socket_of_a_dead_waiter_is_cleared_when_a_job_is_queued(db: Database) -> None:
    _sqlite_only(db)
    wake_dir = _wake_dir(db)
    wake_dir.mkdir()
    dead = wake_dir / "1-dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as orphan:
        orphan.bind(str(dead))  # closed without unlinking, as when a worker is killed
    waiter = JobWaiter(db.engine)
    try:
        woke = _wait_in_thread(waiter, 120.0, threading.Event())
        _queue_a_job(db)
        assert woke.wait(5.0)
    finally:
        waiter.close()
    assert not dead.exists()


def test_an_idle_worker_claims_a_queued_job_long_before_its_poll(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[models."wan-2.5-preview-text-to-video"]\nengine = "instant"\n')
    settings = Settings(
        data_dir=tmp_path / "data",
        poll_seconds=5.0,
        catalog_path=catalog,
        engines={"instant": "tests.engines.fixture_engines:Instant"},
    )
    settings.data_dir.mkdir()
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    supervisor = Supervisor(settings, 1)
    supervisor.start()
    try:
        wait_until(lambda: list(_wake_dir(db).glob("*.sock")), timeout=60)  # the worker waits
        job_id = _queue_a_job(db, engine="instant")
        queued = time.monotonic()
        wait_until(lambda: load_job(db, job_id).started_at is not None, timeout=60, interval=0.01)
        assert time.monotonic() - queued < 1.5, "claimed on the poll, not on the wake-up"
    finally:
        supervisor.stop()
        db.dispose()


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
