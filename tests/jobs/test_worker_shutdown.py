"""A worker told to stop (SIGTERM, or SIGINT from Ctrl-C) claims nothing more, lets its job
finish within the grace period, and past it hands the job back with its attempt unspent."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import load_job, wait_until
from tests.jobs.fixture_workers import CLOCK, queue_scripted, start_scripted_worker
from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.jobs.states import JobState


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_worker_finishes_its_job_and_claims_no_more(
    db: Database, database_url: str, tmp_path: Path, signum: int
) -> None:
    _, running = queue_scripted(db, "slow", max_attempts=1)
    _, waiting = queue_scripted(db, "ok", max_attempts=1)
    worker = start_scripted_worker(database_url, tmp_path / "media", grace_seconds=60)
    try:
        wait_until(lambda: load_job(db, running).state == JobState.RUNNING)
        assert worker.pid is not None
        os.kill(worker.pid, signum)
        worker.join(60)
        assert worker.exitcode == 0
    finally:
        worker.kill()
    assert load_job(db, running).state == JobState.COMPLETED
    job = load_job(db, waiting)
    assert (job.state, job.attempts) == (JobState.QUEUED, 0)


def test_a_job_that_outlasts_the_grace_is_handed_back_with_its_attempt_unspent(
    db: Database, database_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _, job_id = queue_scripted(db, "tick", max_attempts=1)
    worker = start_scripted_worker(database_url, tmp_path / "media", grace_seconds=1)
    try:
        wait_until(lambda: load_job(db, job_id).progress == 0.5, timeout=60)  # the engine runs
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGTERM)
        worker.join(20)
        assert worker.exitcode == 0, "the worker stops soon after its grace"
    finally:
        worker.kill()
    job = load_job(db, job_id)
    assert (job.state, job.attempts, job.lease_owner) == (JobState.QUEUED, 0, None)
    with db.transaction() as session:
        claimed = store.claim_next_job(
            session, worker_id="another", engines=["scripted"], clock=CLOCK, lease_seconds=30
        )
        assert claimed is not None and claimed.id == job_id, "its only attempt is still there"
    assert "Traceback" not in capfd.readouterr().err
