"""The heartbeat a worker keeps: a job's lease is renewed while it runs, and not once after."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_job
from tests.engines.fixture_engines import Instant
from tests.jobs.fixture_workers import queue_scripted
from tests.statements import recorded_statements
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.jobs.states import JobState
from videoqueue.jobs.worker import Worker
from videoqueue.storage.local import LocalStorage

HEARTBEAT_S = 0.05


def test_a_job_whose_folder_cannot_be_made_fails_and_its_lease_is_renewed_no_more(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_folder(job_id: str) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("videoqueue.jobs.worker.job_folder", no_folder)
    _, job_id = queue_scripted(db, "p", max_attempts=1, engine="instant")
    worker = Worker(
        db=db,
        storage=LocalStorage(tmp_path / "media"),
        engines={"instant": Instant()},
        clock=SystemClock(),
        lease_seconds=30,
        heartbeat_seconds=HEARTBEAT_S,
    )
    with recorded_statements(db) as executed:
        assert worker.run_once()
        time.sleep(4 * HEARTBEAT_S)
    job = load_job(db, job_id)
    assert job.state == JobState.FAILED
    assert job.failure_message is not None and "No space left" in job.failure_message
    renewals = [s for s, _ in executed if s.startswith("UPDATE jobs SET lease_expires_at")]
    assert renewals == [], executed
