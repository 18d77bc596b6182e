"""A worker told to stop (SIGTERM, or SIGINT from Ctrl-C) claims nothing more, lets its job
finish within the grace period, and past it hands the job back with its attempt unspent."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import load_job, wait_until
from tests.fleet_rows import registered
from tests.jobs.fixture_workers import GATED, queue_scripted, start_scripted_worker
from videoqueue.db.session import Database
from videoqueue.jobs.states import JobState


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


def test_a_job_that_outlasts_the_grace_is_handed_back_unspent_and_another_worker_ends_it(
    db: Database, database_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    gate = tmp_path / "gate"
    _, job_id = queue_scripted(db, f"gate:{gate}", max_attempts=1, engine="gated")
    engines = {"gated": GATED}
    worker = start_scripted_worker(database_url, tmp_path / "media", 2, engines)
    try:
        wait_until(lambda: load_job(db, job_id).progress == 0.5, timeout=60)  # the engine runs
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGTERM)
        stopping = wait_until(lambda: [w for w in registered(db) if w.state == "stopping"])
        assert (stopping[0].pid, stopping[0].current_job_id) == (worker.pid, job_id)
        worker.join(20)
        assert worker.exitcode == 0, "the worker stops soon after its grace"
    finally:
        worker.kill()
    job = load_job(db, job_id)
    assert (job.state, job.attempts, job.lease_owner) == (JobState.QUEUED, 0, None)
    assert registered(db) == [], "a clean stop leaves the fleet"
    assert "Traceback" not in capfd.readouterr().err
    gate.touch()
    another = start_scripted_worker(database_url, tmp_path / "media", 2, engines)
    try:
        wait_until(lambda: load_job(db, job_id).state == JobState.COMPLETED, timeout=60)
    finally:
        another.terminate()
        another.join(20)
    assert load_job(db, job_id).attempts == 1, "its only attempt was still there"
