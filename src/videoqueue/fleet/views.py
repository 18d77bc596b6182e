"""A registered worker as the API and `videoqueue workers` show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from videoqueue.clock import iso_z
from videoqueue.fleet import store
from videoqueue.fleet.models import WorkerRow, WorkerState


@dataclass(frozen=True)
class WorkerView:
    """One worker at a moment: `lost` when its heartbeat is older than the fleet allows."""

    id: str
    host: str
    pid: int
    device: str | None
    state: WorkerState
    engines: dict[str, str]
    current_job_id: str | None
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float

    @classmethod
    def of(cls, row: WorkerRow, *, now: datetime, lost_after_seconds: float) -> WorkerView:
        age = now - row.heartbeat_at
        lost = age > timedelta(seconds=lost_after_seconds)
        return cls(
            id=row.id,
            host=row.host,
            pid=row.pid,
            device=row.device,
            state=WorkerState.LOST if lost else row.state,
            engines=dict(row.engines),
            current_job_id=row.current_job_id,
            started_at=row.started_at,
            heartbeat_at=row.heartbeat_at,
            heartbeat_age_seconds=round(max(0.0, age.total_seconds()), 1),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "device": self.device,
            "state": self.state.value,
            "engines": self.engines,
            "current_job_id": self.current_job_id,
            "started_at": iso_z(self.started_at),
            "last_heartbeat_at": iso_z(self.heartbeat_at),
            "heartbeat_age_seconds": self.heartbeat_age_seconds,
        }


def fleet_views(session: Session, *, now: datetime, lost_after_seconds: float) -> list[WorkerView]:
    """Every registered worker as it stands at `now`, oldest first."""
    return [
        WorkerView.of(row, now=now, lost_after_seconds=lost_after_seconds)
        for row in store.list_workers(session)
    ]
