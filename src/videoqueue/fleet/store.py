"""Every query on the `workers` table. Functions take a session and never commit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from videoqueue.db.base import table
from videoqueue.fleet.models import ENGINE_READY, WorkerRow, WorkerState

_WORKERS = table(WorkerRow)


def register_worker(
    session: Session,
    *,
    worker_id: str,
    host: str,
    pid: int,
    device: str | None,
    engines: Mapping[str, str],
    state: WorkerState,
    now: datetime,
) -> None:
    """Insert a worker's row (its first heartbeat)."""
    session.execute(
        insert(_WORKERS),
        {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "device": device,
            "engines": dict(engines),
            "current_job_id": None,
            "state": state,
            "started_at": now,
            "heartbeat_at": now,
        },
    )


def record_heartbeat(
    session: Session,
    *,
    worker_id: str,
    engines: Mapping[str, str],
    current_job_id: str | None,
    state: WorkerState,
    now: datetime,
) -> bool:
    """Write what the worker is doing now; False if its row is gone (pruned while it was
    paused), so that it registers again."""
    result = session.execute(
        update(_WORKERS)
        .where(_WORKERS.c.id == worker_id)
        .values(engines=dict(engines), current_job_id=current_job_id, state=state, heartbeat_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def remove_worker(session: Session, worker_id: str) -> None:
    """Delete the row of a worker that stopped cleanly."""
    session.execute(delete(_WORKERS).where(_WORKERS.c.id == worker_id))


def prune_lost_workers(session: Session, *, silent_since: datetime) -> int:
    """Delete the rows of workers not heard from since `silent_since`; how many."""
    result = session.execute(delete(_WORKERS).where(_WORKERS.c.heartbeat_at < silent_since))
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_workers(session: Session) -> list[WorkerRow]:
    """Every registered worker, oldest first."""
    return list(session.scalars(select(WorkerRow).order_by(WorkerRow.started_at, WorkerRow.id)))


def ready_engines(session: Session, *, heard_since: datetime) -> set[str]:
    """The engines some running worker heard from since `heard_since` has ready."""
    rows = session.execute(
        select(_WORKERS.c.engines).where(
            _WORKERS.c.state == WorkerState.RUNNING, _WORKERS.c.heartbeat_at >= heard_since
        )
    ).scalars()
    return {name for engines in rows for name, state in engines.items() if state == ENGINE_READY}
