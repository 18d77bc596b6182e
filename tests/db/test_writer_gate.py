"""SQLite's write transactions, in every thread and process, take turns on a kernel lock
beside the database instead of polling SQLite's busy handler."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from videoqueue.db.session import Database
from videoqueue.db.writer_gate import LOCK_SUFFIX, WriterGate, WriterGateTimeout


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with database.transaction() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
    yield database
    database.dispose()


def _lock_file(tmp_path: Path) -> Path:
    return tmp_path / f"gate.db{LOCK_SUFFIX}"


def _held_elsewhere(path: Path) -> bool:
    """Whether another open file of `path` holds its lock (a probe through our own)."""
    probe = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(probe)  # closing drops a lock the probe took
    return False


def test_a_write_transaction_holds_the_lock_file_and_a_read_does_not(
    db: Database, tmp_path: Path
) -> None:
    with db.transaction() as session:
        session.execute(text("INSERT INTO t (who) VALUES ('writer')"))
        assert _held_elsewhere(_lock_file(tmp_path))
    assert not _held_elsewhere(_lock_file(tmp_path))
    with db.read() as session:
        session.execute(text("SELECT count(*) FROM t"))
        assert not _held_elsewhere(_lock_file(tmp_path))


def test_a_failed_transaction_lets_the_lock_go(db: Database, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), db.transaction() as session:
        session.execute(text("INSERT INTO t (who) VALUES ('doomed')"))
        raise RuntimeError("boom")
    assert not _held_elsewhere(_lock_file(tmp_path))
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def test_a_nested_turn_keeps_the_lock_until_the_outer_one_ends(tmp_path: Path) -> None:
    path = tmp_path / "nested.lock"
    gate = WriterGate(path, wait_seconds=30)
    with gate:
        with gate:
            assert _held_elsewhere(path)
        assert _held_elsewhere(path)  # the inner exit did not unlock the outer turn
    assert not _held_elsewhere(path)
    gate.close()


def test_a_writer_whose_turn_never_comes_gives_up_and_can_try_again(tmp_path: Path) -> None:
    """A holder that hangs does not hang every writer: they fail as SQLite's busy timeout
    would ("database is locked"), and nothing of the failed wait is left held."""
    path = tmp_path / "hung.lock"
    gate = WriterGate(path, wait_seconds=0.2)
    holder = os.open(path, os.O_RDONLY | os.O_CREAT)  # another open file: another writer
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with pytest.raises(WriterGateTimeout, match="database is locked"), gate:
            pass
        assert time.monotonic() - started >= 0.2
    finally:
        os.close(holder)  # its lock goes with it
    entered = threading.Event()

    def enter() -> None:  # another thread: the failed wait left the thread lock free
        with gate:
            entered.set()

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join(10)
    assert entered.is_set()
    gate.close()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    gate = WriterGate(tmp_path / "threads.lock", wait_seconds=30)
    inside, most = 0, 0
    count_lock = threading.Lock()

    def turn() -> None:
        nonlocal inside, most
        for _ in range(50):
            with gate:
                with count_lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0002)
                with count_lock:
                    inside -= 1

    threads = [threading.Thread(target=turn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gate.close()
    assert most == 1


def _hold_a_transaction(url: str, holding: Event, release: Event) -> None:
    database = Database(url)
    with database.transaction() as session:
        session.execute(text("INSERT INTO t (who) VALUES ('other process')"))
        holding.set()
        release.wait(30)
    database.dispose()


@contextmanager
def _no_busy_wait(db: Database) -> Iterator[None]:
    """SQLite's busy handler off on `db`'s connections: a write that found the database
    locked would fail at once ("database is locked") instead of retrying."""

    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    db.engine.dispose()
    event.listen(db.engine, "connect", _on_connect)
    try:
        yield
    finally:
        event.remove(db.engine, "connect", _on_connect)


def test_a_writer_waits_its_turn_behind_another_process_without_the_busy_handler(
    db: Database,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    holding, release = spawn.Event(), spawn.Event()
    other = spawn.Process(target=_hold_a_transaction, args=(db.url, holding, release))
    other.start()
    try:
        assert holding.wait(60)
        timer = threading.Timer(0.3, release.set)
        timer.start()
        with _no_busy_wait(db), db.transaction() as session:
            # Had this reached SQLite while the other process held its write lock, it would
            # have failed: the gate kept it waiting until the other transaction ended.
            assert release.is_set()
            session.execute(text("INSERT INTO t (who) VALUES ('this process')"))
        timer.join()
    finally:
        release.set()
        other.join(30)
    assert other.exitcode == 0
    with db.read() as session:
        rows = session.execute(text("SELECT who FROM t ORDER BY id")).scalars().all()
    assert rows == ["other process", "this process"]


def _enter_after_the_parent(gate: WriterGate, parent_holds: Event, answer: Any) -> None:
    parent_holds.wait(30)
    entered = threading.Event()

    def enter() -> None:
        with gate:
            entered.set()

    threading.Thread(target=enter, daemon=True).start()
    answer.put("got in" if entered.wait(0.5) else "waits")
    answer.put("got in" if entered.wait(30) else "waits")


def test_a_forked_child_takes_its_turns_on_a_file_of_its_own(tmp_path: Path) -> None:
    """A descriptor inherited across `fork` shares the parent's lock, so a child holding one
    would walk in while the parent writes."""
    path = tmp_path / "fork.lock"
    gate = WriterGate(path, wait_seconds=30)
    with gate:  # the parent's file is open before the fork
        pass
    fork = multiprocessing.get_context("fork")
    parent_holds, answer = fork.Event(), fork.SimpleQueue()
    child = fork.Process(target=_enter_after_the_parent, args=(gate, parent_holds, answer))
    child.start()
    try:
        with gate:
            parent_holds.set()
            assert answer.get() == "waits"
        assert answer.get() == "got in"  # once the parent's turn ended
    finally:
        parent_holds.set()
        child.join(30)
    gate.close()
