"""The job row: a generation request, its lease, its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime, new_id
from videoqueue.jobs.states import JobState


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_model_finished", "model", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(50))
    state: Mapped[JobState] = mapped_column(Enum(JobState, native_enum=False, length=16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    price_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    output_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    output_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    media_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
