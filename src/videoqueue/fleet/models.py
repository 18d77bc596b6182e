"""The `workers` row: one per worker process, written by its own heartbeat."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime

ENGINE_READY = "ready"
"""An engine's setup state when it takes jobs (see `Worker.engine_states`)."""


class WorkerState(enum.StrEnum):
    """What a worker says of itself; one whose heartbeat is too old is `lost` (never stored)."""

    RUNNING = "running"
    STOPPING = "stopping"
    """Told to stop: it claims nothing more and finishes or hands back its job."""
    LOST = "lost"


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The worker id, as jobs' `lease_owner` holds it."""
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(50), nullable=True)
    engines: Mapped[dict[str, str]] = mapped_column(JSON)
    """Each engine's setup state: `ready`, `setting up`, `failed: <why>`, `not set up`."""
    current_job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    state: Mapped[WorkerState] = mapped_column(
        Enum(
            WorkerState,
            native_enum=False,
            length=16,
            values_callable=lambda states: [s.value for s in states],
        )
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
