"""A job that fails for a reason that is not the client's is refunded exactly once: after an
engine error or a provider's content-policy rejection, when two settles race, when the
lapsed-lease path races the worker, and when the worker is killed while failing the job."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts import (
    BODY,
    assert_books_balance,
    balance,
    money_settings,
    price_micros,
    rows,
)
from tests.conftest import Env, build_env, load_job, reap_now, wait_until
from videoqueue.billing.models import LedgerKind
from videoqueue.clock import Clock, ManualClock, SystemClock
from videoqueue.engines.base import EngineError, JobInput, ProviderContentPolicy, VideoInfo
from videoqueue.jobs.worker import Worker
from videoqueue.storage.factory import storage_from_url

LEASE = 30.0


class FailingEngine:
    """Stands in for `preview`: waits for `gate` (if any), then raises `error`."""

    name = "preview"

    def __init__(self, error: EngineError, gate: threading.Event | None = None) -> None:
        self.error = error
        self.gate = gate
        self.started = threading.Event()

    def generate(self, job: JobInput, output_path: Path, progress: Any) -> VideoInfo:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        raise self.error


@pytest.fixture
def env(tmp_path: Path, database_url: str, clock: ManualClock) -> Iterator[Env]:
    settings = money_settings(tmp_path, database_url, max_attempts=1, lease_seconds=LEASE)
    yield from build_env(settings, clock=clock)


def _worker(env: Env, engine: FailingEngine, clock: Clock, worker_id: str) -> Worker:
    return Worker(
        db=env.db,
        storage=storage_from_url(env.settings.resolved_storage_url),
        engines={"preview": engine},
        clock=clock,
        lease_seconds=LEASE,
        heartbeat_seconds=3600,
        worker_id=worker_id,
    )


def _queue(env: Env) -> tuple[str, str, str]:
    """A paid job: (account id, key, queue_id)."""
    account = env.make_account("5")
    key = env.make_key(account)
    response = env.post("/video/queue", BODY, key)
    assert response.status_code == 200, response.text
    return account, key, response.json()["queue_id"]


def _retrieve(env: Env, key: str, queue_id: str) -> Any:
    return env.post("/video/retrieve", {"model": BODY["model"], "queue_id": queue_id}, key)


def _refunds(env: Env, account: str) -> list[str | None]:
    return [r.job_id for r in rows(env, account, LedgerKind.REFUND)]


def test_an_engine_error_is_refunded_once_even_if_settled_twice(
    env: Env, clock: ManualClock
) -> None:
    account, key, queue_id = _queue(env)
    worker = _worker(env, FailingEngine(EngineError("out of memory")), clock, "w1")
    assert worker.run_once()
    worker._settle(load_job(env.db, queue_id), error=EngineError("out of memory"))  # again

    response = _retrieve(env, key, queue_id)
    assert response.status_code == 500
    assert response.json() == {
        "error": "Inference processing failed",
        "details": "out of memory",
        "credits_refunded": True,
    }
    assert _refunds(env, account) == [queue_id]
    assert balance(env, account) == 5_000_000
    assert_books_balance(env)


def test_a_provider_content_policy_rejection_is_refunded_and_says_so(
    env: Env, clock: ManualClock
) -> None:
    account, key, queue_id = _queue(env)
    error = ProviderContentPolicy(recommended_model="wan-2.7-text-to-video")
    assert _worker(env, FailingEngine(error), clock, "w1").run_once()

    response = _retrieve(env, key, queue_id)
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "message": "The selected model provider rejected this request due to its content "
            "policies. Credits have been refunded. Try using wan-2.7-text-to-video "
            "instead.",
            "type": "provider_content_policy",
            "recommended_model": "wan-2.7-text-to-video",
            "credits_refunded": True,
        }
    }
    assert _refunds(env, account) == [queue_id]
    assert balance(env, account) == 5_000_000


def test_a_failure_caused_by_the_input_keeps_the_charge(env: Env, clock: ManualClock) -> None:
    account, key, queue_id = _queue(env)
    error = EngineError("image_path: cannot read in.png as an image", refundable=False)
    assert _worker(env, FailingEngine(error), clock, "w1").run_once()

    assert _retrieve(env, key, queue_id).json()["credits_refunded"] is False
    assert _refunds(env, account) == []
    assert balance(env, account) == 5_000_000 - price_micros(env)
    assert_books_balance(env)


@pytest.mark.parametrize("first", ["worker", "reaper", "together"])
def test_the_lapsed_lease_path_racing_the_worker_refunds_once(
    env: Env, clock: ManualClock, first: str
) -> None:
    account, key, queue_id = _queue(env)
    gate = threading.Event()
    engine = FailingEngine(EngineError("the GPU fell off the bus"), gate)
    worker = _worker(env, engine, clock, "slow")
    running = threading.Thread(target=worker.run_once)
    running.start()
    assert engine.started.wait(30)
    clock.advance(LEASE + 1)  # the worker's only lease has lapsed while it still works

    if first == "worker":
        gate.set()
        running.join()
        assert reap_now(env.db, clock) == 0
    elif first == "reaper":
        assert reap_now(env.db, clock) == 1
        gate.set()
        running.join()
    else:
        start = threading.Barrier(2)
        reaping = threading.Thread(target=lambda: (start.wait(), reap_now(env.db, clock)))
        reaping.start()
        start.wait()
        gate.set()
        running.join()
        reaping.join()

    response = _retrieve(env, key, queue_id)
    assert response.status_code == 500 and response.json()["credits_refunded"] is True
    assert _refunds(env, account) == [queue_id]
    assert balance(env, account) == 5_000_000
    assert_books_balance(env)


DOOMED_WORKER = textwrap.dedent("""
    import os, signal, sys
    from videoqueue.clock import SystemClock
    from videoqueue.db.session import Database
    from videoqueue.engines.base import EngineError
    from videoqueue.jobs import worker as worker_module
    from videoqueue.storage.factory import storage_from_url

    class Failing:
        name = "preview"
        def generate(self, job, output_path, progress):
            raise EngineError("the model crashed")

    write_refund = worker_module.refund

    def refund_then_die(session, **kwargs):
        write_refund(session, **kwargs)
        session.flush()  # the refund row is written, and not yet committed
        os.kill(os.getpid(), signal.SIGKILL)

    worker_module.refund = refund_then_die
    worker = worker_module.Worker(
        db=Database(sys.argv[1]), storage=storage_from_url(sys.argv[2]),
        engines={"preview": Failing()}, clock=SystemClock(), lease_seconds=float(sys.argv[3]),
        heartbeat_seconds=0.2, worker_id="doomed")
    worker.run_once()
""")


@pytest.fixture
def system_env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    settings = money_settings(tmp_path, database_url, max_attempts=1, lease_seconds=1.0)
    yield from build_env(settings)


def test_a_worker_killed_while_failing_a_job_leaves_one_refund(system_env: Env) -> None:
    env = system_env
    account, key, queue_id = _queue(env)
    charged = balance(env, account)

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            DOOMED_WORKER,
            env.settings.resolved_database_url,
            env.settings.resolved_storage_url,
            str(env.settings.lease_seconds),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    # Nothing of the dead worker's failing transaction survived.
    assert _retrieve(env, key, queue_id).json()["status"] == "PROCESSING"
    assert _refunds(env, account) == []
    assert balance(env, account) == charged

    # Once the dead worker's lease lapses, any worker process's reaper fails the job, once.
    wait_until(lambda: reap_now(env.db, SystemClock()), timeout=30)
    assert reap_now(env.db, SystemClock()) == 0

    response = _retrieve(env, key, queue_id)
    assert response.status_code == 500
    assert response.json()["credits_refunded"] is True
    assert _refunds(env, account) == [queue_id]
    assert balance(env, account) == 5_000_000
    assert_books_balance(env)
