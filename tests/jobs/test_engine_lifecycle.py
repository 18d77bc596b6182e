"""The engine lifecycle as a worker drives it: setup before jobs (a failed one uses up no job),
a time limit per model, and a cancel that reaches the engine."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import Env, load_job, retrieve_error, wait_until
from tests.jobs.fixture_workers import CLOCK, SCRIPTED, queue_scripted
from videoqueue.billing.models import LedgerEntry, LedgerKind
from videoqueue.db.session import Database
from videoqueue.engines.isolation import IsolatedEngine
from videoqueue.jobs.states import JobState
from videoqueue.jobs.worker import Worker
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.layout import output_key
from videoqueue.storage.local import LocalStorage
from videoqueue.workers import Supervisor

UNLOADABLE = "tests.engines.fixture_engines:Unloadable"
T2V = "wan-2.5-preview-text-to-video"


def _worker(
    database_url: str, media: Path, engines: dict[str, str], setup_retry_seconds: float = 0.2
) -> Worker:
    return Worker(
        db=Database(database_url),
        storage=LocalStorage(media),
        engines={name: IsolatedEngine(name, factory) for name, factory in engines.items()},
        clock=CLOCK,
        lease_seconds=30,
        heartbeat_seconds=0.2,
        setup_timeout_seconds=60,
        setup_retry_seconds=setup_retry_seconds,
    )


@pytest.fixture
def worker(database_url: str, tmp_path: Path) -> Iterator[Worker]:
    # No retry of the failed setup within a test: on a loaded machine one could begin before
    # the test reads the engines' states, which would then say `setting up`.
    worker = _worker(
        database_url,
        tmp_path / "media",
        {"scripted": SCRIPTED, "unloadable": UNLOADABLE},
        setup_retry_seconds=60,
    )
    yield worker
    worker.close()
    worker.db.dispose()


def _refunds(db: Database, job_id: str) -> int:
    with db.transaction() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    LedgerEntry.job_id == job_id, LedgerEntry.kind == LedgerKind.REFUND
                )
            )
            or 0
        )


def _output_pid(worker: Worker, job_id: str, tmp_path: Path) -> int:
    copy = tmp_path / f"{job_id}.out"
    worker.storage.fetch_to(output_key(job_id), copy)
    return int(copy.read_text())


def test_a_failed_setup_leaves_its_jobs_queued_unspent_while_other_engines_work(
    worker: Worker,
) -> None:
    _, stranded = queue_scripted(worker.db, "ok", max_attempts=1, engine="unloadable")
    _, runnable = queue_scripted(worker.db, "ok", max_attempts=1)
    assert worker.run_once()
    assert not worker.run_once(), "nothing this worker can run is left"
    assert load_job(worker.db, runnable).state == JobState.COMPLETED
    job = load_job(worker.db, stranded)
    assert (job.state, job.attempts, job.lease_owner) == (JobState.QUEUED, 0, None)
    assert _refunds(worker.db, stranded) == 0
    assert worker.engine_states() == {
        "scripted": "ready",
        "unloadable": "failed: OSError: libvulkan.so.1: cannot open shared object file",
    }


def test_a_worker_whose_engines_all_fail_keeps_running_and_retrying_setup(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker = _worker(database_url, tmp_path / "media", {"unloadable": UNLOADABLE})
    _, job_id = queue_scripted(worker.db, "ok", max_attempts=1, engine="unloadable")
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop, 0.05))
    with caplog.at_level(logging.ERROR, logger="videoqueue.jobs.worker"):
        loop.start()
        try:
            wait_until(lambda: sum("FAILED to set up" in r.message for r in caplog.records) >= 3)
            assert loop.is_alive()
        finally:
            stop.set()
            loop.join(30)
    assert "libvulkan.so.1" in caplog.records[0].message
    job = load_job(worker.db, job_id)
    assert (job.state, job.attempts) == (JobState.QUEUED, 0)
    worker.db.dispose()


def test_a_failed_setup_is_retried_in_the_background_while_healthy_engines_work(
    database_url: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    stalling = (
        f"tests.engines.fixture_engines:StallsOnRetry?marker={tmp_path / 'tried'}&gate={gate}"
    )
    worker = _worker(database_url, tmp_path / "media", {"scripted": SCRIPTED, "stalls": stalling})
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop, 0.05))
    loop.start()
    try:
        wait_until(lambda: worker.engine_states()["stalls"] == "setting up", timeout=30)
        _, job_id = queue_scripted(worker.db, "ok", max_attempts=1)
        wait_until(lambda: load_job(worker.db, job_id).state == JobState.COMPLETED, timeout=30)
        assert worker.engine_states()["stalls"] == "setting up", "its retry is still loading"
    finally:
        gate.touch()
        stop.set()
        loop.join(30)
        worker.db.dispose()
    assert worker.engine_states()["stalls"].startswith("failed: OSError: the weights are still")


def test_a_job_past_its_time_limit_fails_refunded_and_the_next_runs_on_a_fresh_child(
    worker: Worker, tmp_path: Path
) -> None:
    _, first = queue_scripted(worker.db, "ok", max_attempts=3)
    _, late = queue_scripted(worker.db, "tick", max_attempts=3, max_run_seconds=1.0)
    _, after = queue_scripted(worker.db, "ok", max_attempts=3)
    started = time.monotonic()
    assert worker.run_once() and worker.run_once()
    assert time.monotonic() - started < 20, "stopped at its limit, not after the engine's 30 s"
    job = load_job(worker.db, late)
    status, body = retrieve_error(job)
    assert (job.state, job.attempts, status) == (JobState.FAILED, 1, 500)
    assert body["credits_refunded"] is True
    assert "time limit of 1 s" in body["details"]
    assert _refunds(worker.db, late) == 1
    assert worker.run_once()
    assert load_job(worker.db, after).state == JobState.COMPLETED
    assert _output_pid(worker, after, tmp_path) != _output_pid(worker, first, tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The app and its worker with the `scripted` engine serving one model."""
    overlay = tmp_path / "catalog.toml"
    overlay.write_text(f'[models."{T2V}"]\nengine = "scripted"\nmax_run_seconds = 120\n')
    return Settings(
        data_dir=tmp_path / "data",
        catalog_path=overlay,
        engines={"scripted": SCRIPTED},
        lease_seconds=5.0,
        heartbeat_seconds=0.2,
        poll_seconds=0.05,
    )


def _queue(env: Env, key: str, prompt: str) -> str:
    body = {"model": T2V, "prompt": prompt, "duration": "5s", "resolution": "480p"}
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


def test_a_job_takes_its_models_time_limit_from_the_catalogue(env: Env) -> None:
    job = load_job(env.db, _queue(env, env.make_key(), "ok"))
    assert job.job_spec.max_run_seconds == 120


def test_completing_a_running_job_stops_its_engine_and_frees_the_worker(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    long_job = _queue(env, key, "tick")
    wait_until(lambda: load_job(env.db, long_job).progress > 0, timeout=120)
    completed = env.post("/video/complete", {"model": T2V, "queue_id": long_job}, key)
    assert completed.status_code == 200, completed.text
    cancelled_at = time.monotonic()
    next_job = _queue(env, key, "ok")
    wait_until(lambda: load_job(env.db, next_job).state == JobState.COMPLETED, timeout=60)
    assert time.monotonic() - cancelled_at < 10, "the engine stopped, not after its 30 s"
    assert load_job(env.db, long_job).state == JobState.DELETED
    storage = storage_from_url(env.settings.resolved_storage_url)
    assert not storage.exists(output_key(long_job)), "the partial output is discarded"
