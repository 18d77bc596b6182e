"""The worker fleet in the `workers` table: a worker process registers with its engines'
states, beats while idle, and leaves on a clean stop; a silent one turns lost and is
forgotten later."""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

from tests.conftest import wait_until
from tests.fleet_rows import registered
from tests.jobs.fixture_workers import SCRIPTED, start_scripted_worker
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database
from videoqueue.fleet import store
from videoqueue.fleet.models import WorkerState
from videoqueue.fleet.terms import FleetTerms
from videoqueue.fleet.views import fleet_views
from videoqueue.jobs.presence import Presence
from videoqueue.jobs.worker import Worker
from videoqueue.storage.local import LocalStorage

UNLOADABLE = "tests.engines.fixture_engines:Unloadable"


def test_a_worker_process_registers_beats_while_idle_and_leaves_on_a_clean_stop(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    engines = {"scripted": SCRIPTED, "unloadable": UNLOADABLE}
    worker = start_scripted_worker(database_url, tmp_path / "media", 5, engines)
    try:
        row = wait_until(
            lambda: next(
                (r for r in registered(db) if r.engines["unloadable"].startswith("failed")), None
            )
        )
        assert (row.pid, row.state, row.current_job_id) == (worker.pid, WorkerState.RUNNING, None)
        assert row.engines == {
            "scripted": "ready",
            "unloadable": "failed: OSError: libvulkan.so.1: cannot open shared object file",
        }
        first_beat = row.heartbeat_at
        wait_until(lambda: registered(db)[0].heartbeat_at > first_beat)  # idle, it still beats
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGTERM)
        worker.join(30)
        assert worker.exitcode == 0
    finally:
        worker.kill()
    assert registered(db) == []


def _presence(db: Database, tmp_path: Path, clock: ManualClock, terms: FleetTerms) -> Presence:
    worker = Worker(
        db=db,
        storage=LocalStorage(tmp_path),
        engines={},
        clock=clock,
        lease_seconds=30,
        heartbeat_seconds=1,
        worker_id="w-1",
    )
    return Presence(worker, terms=terms, stopping=threading.Event(), device="cuda:1")


def test_a_silent_worker_is_lost_and_a_starting_worker_forgets_it_later(
    db: Database, tmp_path: Path
) -> None:
    clock = ManualClock()
    terms = FleetTerms(heartbeat_seconds=1, lost_after_seconds=60, forget_after_seconds=3600)
    _presence(db, tmp_path, clock, terms).register()
    clock.advance(61)
    with db.transaction() as session:
        views = fleet_views(session, now=clock.now(), lost_after_seconds=60)
        assert [(v.id, v.state, v.device, v.heartbeat_age_seconds) for v in views] == [
            ("w-1", WorkerState.LOST, "cuda:1", 61.0)
        ]
        assert (
            store.ready_engines(session, heard_since=clock.now() - timedelta(seconds=60)) == set()
        )
    clock.advance(3600)
    newcomer = _presence(db, tmp_path, clock, terms)
    newcomer.worker.worker_id = "w-2"
    newcomer.register()
    assert [row.id for row in registered(db)] == ["w-2"], "w-1 was silent for over an hour"


def test_a_worker_whose_row_was_pruned_registers_again_at_its_next_beat(
    db: Database, tmp_path: Path
) -> None:
    presence = _presence(db, tmp_path, ManualClock(), FleetTerms())
    presence.register()
    with db.transaction() as session:
        store.remove_worker(session, "w-1")
    presence.stopping.set()
    presence.beat()
    assert [(row.id, row.state) for row in registered(db)] == [("w-1", WorkerState.STOPPING)]
    presence.close()
    assert registered(db) == []


def test_a_beat_after_a_clean_stop_does_not_bring_the_row_back(
    db: Database, tmp_path: Path
) -> None:
    # As the shutdown thread's `stopping` beat can land after the main thread's close.
    presence = _presence(db, tmp_path, ManualClock(), FleetTerms())
    presence.register()
    presence.close()
    presence.stopping.set()
    presence.beat()
    assert registered(db) == []
