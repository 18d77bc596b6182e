"""Jobs for the fixture engines, and a real worker process that runs them."""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from tests.conftest import tiny_spec
from videoqueue.billing.ledger import charge, create_account, top_up
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.engines.isolation import IsolatedEngine
from videoqueue.fleet.terms import FleetTerms
from videoqueue.jobs import store
from videoqueue.jobs.worker import Worker
from videoqueue.storage.local import LocalStorage
from videoqueue.workers import run_until_stopped

CLOCK = SystemClock()
SCRIPTED = "tests.engines.fixture_engines:Scripted"
GATED = "tests.engines.fixture_engines:Gated"


def queue_scripted(
    db: Database, prompt: str, max_attempts: int, engine: str = "scripted", **spec: Any
) -> tuple[str, str]:
    """A charged job for the `scripted` engine (or `engine`), its spec changed by `spec`;
    returns its account's id and its own."""
    with db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=CLOCK)
        top_up(session, account_id=account.id, micros=1_000_000, clock=CLOCK)
        job = store.create_job(
            session,
            account_id=account.id,
            model="m",
            engine=engine,
            spec=tiny_spec(prompt, **spec),
            price_micros=400_000,
            max_attempts=max_attempts,
            clock=CLOCK,
        )
        charge(
            session, account_id=account.id, job_id=job.id, model="m", micros=400_000, clock=CLOCK
        )
        return account.id, job.id


FLEET = FleetTerms(heartbeat_seconds=0.2)


def scripted_worker(
    database_url: str, media_dir: str, grace_seconds: float, engines: dict[str, str]
) -> None:
    """A worker process's main, as `videoqueue worker` runs it, over the fixture `engines`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    worker = Worker(
        db=Database(database_url),
        storage=LocalStorage(Path(media_dir)),
        engines={name: IsolatedEngine(name, factory) for name, factory in engines.items()},
        clock=CLOCK,
        lease_seconds=30,
        heartbeat_seconds=0.2,
    )
    run_until_stopped(worker, poll_seconds=0.05, grace_seconds=grace_seconds, fleet=FLEET)


def start_scripted_worker(
    database_url: str,
    media_dir: Path,
    grace_seconds: float,
    engines: dict[str, str] | None = None,
) -> BaseProcess:
    """A worker process for `engines` (default: the scripted engine alone)."""
    process = multiprocessing.get_context("spawn").Process(
        target=scripted_worker,
        args=(database_url, str(media_dir), grace_seconds, engines or {"scripted": SCRIPTED}),
    )
    process.start()
    return process
