"""The job row (a generation request, its lease, its result) and the idempotency-key row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime, new_id
from videoqueue.engines.base import UpstreamJob
from videoqueue.jobs.failure import Failure, FailureKind
from videoqueue.jobs.spec import JobSpec
from videoqueue.jobs.states import JobState

MAX_IDEMPOTENCY_KEY_LENGTH = 255
UNRELEASED = text("upstream_queue_id IS NOT NULL AND upstream_released_at IS NULL")
"""Jobs holding an upstream job not yet released there."""


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_model_finished", "model", "finished_at"),
        # Only the few rows an upstream release is due on: the sweep reads no others.
        Index(
            "ix_jobs_upstream_unreleased",
            "finished_at",
            postgresql_where=UNRELEASED,
            sqlite_where=UNRELEASED,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(50))
    state: Mapped[JobState] = mapped_column(Enum(JobState, native_enum=False, length=16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
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
    failure_kind: Mapped[FailureKind | None] = mapped_column(
        Enum(
            FailureKind,
            native_enum=False,
            length=32,
            values_callable=lambda kinds: [k.value for k in kinds],
        ),
        nullable=True,
    )
    failure_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_refunded: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    failure_recommended_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    media_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    upstream_queue_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The job another server runs for this one (an engine that forwards), kept across
    attempts so that a retry resumes it."""
    upstream_download_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    upstream_released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the upstream let go of that job (cancelled it or freed its video) after this one
    ended; until then a worker with the job's engine releases it."""
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Where the job's end is announced (a delivery is written when it ends), if anywhere."""

    @property
    def job_spec(self) -> JobSpec:
        return JobSpec.from_json(self.spec)

    @property
    def upstream(self) -> UpstreamJob | None:
        if self.upstream_queue_id is None:
            return None
        return UpstreamJob(self.upstream_queue_id, self.upstream_download_url)

    @property
    def failure(self) -> Failure | None:
        if self.failure_kind is None:
            return None
        return Failure(
            self.failure_kind,
            self.failure_message or "",
            bool(self.failure_refunded),
            self.failure_recommended_model,
        )


class IdempotencyRecord(Base):
    """The answer given to the first request that used an idempotency key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(MAX_IDEMPOTENCY_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
