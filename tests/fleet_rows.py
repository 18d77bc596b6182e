"""Workers registered in a line, as their own heartbeat would have written them."""

from __future__ import annotations

from datetime import datetime

from videoqueue.db.session import Database
from videoqueue.fleet import store
from videoqueue.fleet.models import WorkerRow, WorkerState


def register(
    db: Database,
    worker_id: str,
    engines: dict[str, str],
    *,
    heard_at: datetime,
    state: WorkerState = WorkerState.RUNNING,
    job_id: str | None = None,
) -> None:
    with db.transaction() as session:
        store.register_worker(
            session,
            worker_id=worker_id,
            host="gpu-1",
            pid=4242,
            device="cuda:0",
            engines=engines,
            state=state,
            now=heard_at,
        )
        store.record_heartbeat(
            session,
            worker_id=worker_id,
            engines=engines,
            current_job_id=job_id,
            state=state,
            now=heard_at,
        )


def registered(db: Database) -> list[WorkerRow]:
    """The `workers` rows as they stand now (detached from their session)."""
    with db.transaction() as session:
        rows = store.list_workers(session)
        session.expunge_all()
        return rows
