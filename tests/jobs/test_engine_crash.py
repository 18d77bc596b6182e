"""A job whose engine process dies is handed back for another attempt, then failed and
refunded once attempts run out; the worker itself carries on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import load_job, retrieve_error
from tests.jobs.fixture_workers import CLOCK, SCRIPTED, queue_scripted
from videoqueue.billing.models import Account, LedgerEntry, LedgerKind
from videoqueue.db.session import Database
from videoqueue.engines.isolation import IsolatedEngine
from videoqueue.jobs.states import JobState
from videoqueue.jobs.worker import Worker
from videoqueue.storage.local import LocalStorage


@pytest.fixture
def worker(database_url: str, tmp_path: Path) -> Iterator[Worker]:
    db = Database(database_url)
    worker = Worker(
        db=db,
        storage=LocalStorage(tmp_path / "media"),
        engines={"scripted": IsolatedEngine("scripted", SCRIPTED)},
        clock=CLOCK,
        lease_seconds=30,
        heartbeat_seconds=5,
    )
    yield worker
    worker.close()
    db.dispose()


def test_a_crashed_attempt_is_retried_then_failed_and_refunded_once(worker: Worker) -> None:
    account_id, job_id = queue_scripted(worker.db, "crash", max_attempts=2)
    assert worker.run_once()
    job = load_job(worker.db, job_id)
    assert (job.state, job.attempts, job.lease_owner) == (JobState.QUEUED, 1, None)
    assert worker.run_once()
    job = load_job(worker.db, job_id)
    status, body = retrieve_error(job)
    assert job.state == JobState.FAILED and status == 500
    assert body["credits_refunded"] is True
    assert "process died" in body["details"]
    with worker.db.transaction() as session:
        refunds = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.job_id == job_id, LedgerEntry.kind == LedgerKind.REFUND
            )
        ).all()
        account = session.get(Account, account_id)
        assert len(refunds) == 1 and account is not None
        assert account.balance_micros == 1_000_000
    assert not worker.run_once(), "nothing left to run"


def test_the_worker_runs_the_next_job_after_a_crash(worker: Worker) -> None:
    _, crashing = queue_scripted(worker.db, "crash", max_attempts=1)
    _, fine = queue_scripted(worker.db, "ok", max_attempts=1)
    assert worker.run_once() and worker.run_once()
    assert load_job(worker.db, crashing).state == JobState.FAILED
    assert load_job(worker.db, fine).state == JobState.COMPLETED


def test_an_input_error_is_not_retried_and_not_refunded(worker: Worker) -> None:
    _, job_id = queue_scripted(worker.db, "refuse", max_attempts=3)
    assert worker.run_once()
    job = load_job(worker.db, job_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert retrieve_error(job)[1]["credits_refunded"] is False
