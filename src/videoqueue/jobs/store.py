"""Every query on jobs. Functions take a session and never commit: the caller does."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from videoqueue.clock import Clock
from videoqueue.db.dialect import locked, notify_job_queued
from videoqueue.engines.base import UpstreamJob
from videoqueue.jobs.failure import Failure
from videoqueue.jobs.models import IdempotencyRecord, Job
from videoqueue.jobs.spec import JobSpec
from videoqueue.jobs.states import PENDING, JobState, check_transition

RECENT_JOBS_FOR_AVERAGE = 50
JOB_ID_LENGTH = 36


def create_job(
    session: Session,
    *,
    account_id: str,
    model: str,
    engine: str,
    spec: JobSpec,
    price_micros: int,
    max_attempts: int,
    clock: Clock,
    job_id: str | None = None,
) -> Job:
    """Insert a QUEUED job."""
    job = Job(
        account_id=account_id,
        model=model,
        engine=engine,
        state=JobState.QUEUED,
        spec=spec.to_json(),
        price_micros=price_micros,
        attempts=0,
        max_attempts=max_attempts,
        progress=0.0,
        created_at=clock.now(),
    )
    if job_id is not None:
        job.id = job_id
    session.add(job)
    session.flush()
    notify_job_queued(session)
    return job


def could_be_job_id(text: str) -> bool:
    """False for what no job id can be: text no database takes as a key (a NUL, a lone
    surrogate), or longer than an id's column."""
    return 0 < len(text) <= JOB_ID_LENGTH and text.isascii() and text.isprintable()


def get_job(session: Session, job_id: str, *, account_id: str) -> Job | None:
    """The job if it exists and belongs to the account (anyone else's is simply not found)."""
    if not could_be_job_id(job_id):
        return None
    return session.scalar(select(Job).where(Job.id == job_id, Job.account_id == account_id))


def get_job_for_update(session: Session, job_id: str) -> Job | None:
    return session.scalar(locked(select(Job).where(Job.id == job_id)))


def claim_next_job(
    session: Session,
    *,
    worker_id: str,
    engines: Collection[str],
    clock: Clock,
    lease_seconds: float,
) -> Job | None:
    """Lease the oldest runnable job (queued, or running on a lapsed lease with attempts left)."""
    now = clock.now()
    runnable = or_(
        Job.state == JobState.QUEUED,
        and_(
            Job.state == JobState.RUNNING,
            Job.lease_expires_at < now,
            Job.attempts < Job.max_attempts,
        ),
    )
    stmt = (
        select(Job).where(runnable, Job.engine.in_(list(engines))).order_by(Job.created_at).limit(1)
    )
    job = session.scalar(locked(stmt, skip_locked=True))
    if job is None:
        return None
    if job.state == JobState.QUEUED:
        check_transition(job.state, JobState.RUNNING)
    job.state = JobState.RUNNING
    job.attempts += 1
    job.lease_owner = worker_id
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.started_at = job.started_at or now
    job.progress = 0.0
    session.flush()
    return job


def renew_lease(
    session: Session,
    *,
    job_id: str,
    worker_id: str,
    clock: Clock,
    lease_seconds: float,
    progress: float | None = None,
) -> bool:
    """Extend the worker's lease (and record progress). False if the lease is no longer ours."""
    values: dict[str, Any] = {"lease_expires_at": clock.now() + timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.state == JobState.RUNNING)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def owned_running_job(session: Session, *, job_id: str, worker_id: str) -> Job | None:
    """The job, locked, if it is still running under this worker's lease."""
    job = get_job_for_update(session, job_id)
    if job is None or job.state != JobState.RUNNING or job.lease_owner != worker_id:
        return None
    return job


def record_upstream_job(
    session: Session, *, job_id: str, worker_id: str, upstream: UpstreamJob
) -> bool:
    """Store the upstream job the worker's engine started for this one. False if the lease is
    no longer ours."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.state == JobState.RUNNING)
        .values(upstream_queue_id=upstream.queue_id, upstream_download_url=upstream.download_url)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete_job(job: Job, *, output_key: str, output_bytes: int, clock: Clock) -> None:
    """Record the finished output."""
    check_transition(job.state, JobState.COMPLETED)
    job.state = JobState.COMPLETED
    job.output_key = output_key
    job.output_bytes = output_bytes
    job.progress = 1.0
    job.finished_at = clock.now()
    job.lease_owner = None
    job.lease_expires_at = None


def fail_job(job: Job, *, failure: Failure, clock: Clock) -> None:
    """Record why the job failed; each API renders it from these columns from now on."""
    check_transition(job.state, JobState.FAILED)
    job.state = JobState.FAILED
    job.failure_kind = failure.kind
    job.failure_message = failure.message
    job.failure_refunded = failure.refunded
    job.failure_recommended_model = failure.recommended_model
    job.finished_at = clock.now()
    job.lease_owner = None
    job.lease_expires_at = None


def exhausted_jobs(session: Session, *, clock: Clock, limit: int = 20) -> list[Job]:
    """Running jobs whose lease lapsed on their last allowed attempt, locked for failing."""
    stmt = (
        select(Job)
        .where(
            Job.state == JobState.RUNNING,
            Job.lease_expires_at < clock.now(),
            Job.attempts >= Job.max_attempts,
        )
        .limit(limit)
    )
    return list(session.scalars(locked(stmt, skip_locked=True)))


def mark_media_deleted(job: Job, *, clock: Clock) -> None:
    """The job's stored media is gone; retrieve answers 404 from now on."""
    if job.state != JobState.DELETED:
        check_transition(job.state, JobState.DELETED)
        job.state = JobState.DELETED
    job.media_deleted_at = clock.now()


def average_execution_ms(session: Session, model: str, default_ms: int) -> int:
    """P80 of the model's recent completed run times, in ms (`default_ms` before any)."""
    rows = session.execute(
        select(Job.started_at, Job.finished_at)
        .where(
            Job.model == model,
            Job.finished_at.is_not(None),
            Job.started_at.is_not(None),
            Job.state.in_([JobState.COMPLETED, JobState.DELETED]),
        )
        .order_by(Job.finished_at.desc())
        .limit(RECENT_JOBS_FOR_AVERAGE)
    ).all()
    durations = sorted(
        (finished - started).total_seconds() * 1000
        for started, finished in rows
        if isinstance(started, datetime) and isinstance(finished, datetime)
    )
    if not durations:
        return default_ms
    index = min(len(durations) - 1, max(0, round(0.8 * len(durations)) - 1))
    return int(durations[index])


def is_pending(job: Job) -> bool:
    return job.state in PENDING


def cancel_job(job: Job, *, clock: Clock) -> None:
    """Stop a pending job; a worker still running it will find its lease gone."""
    check_transition(job.state, JobState.CANCELLED)
    job.state = JobState.CANCELLED
    job.finished_at = clock.now()
    job.lease_owner = None
    job.lease_expires_at = None


def release_for_shutdown(session: Session, *, worker_id: str) -> list[str]:
    """Requeue the jobs running under `worker_id`'s lease, their attempt not counted (the
    worker stops on request: the job did nothing wrong); their ids."""
    jobs = session.scalars(
        locked(select(Job).where(Job.state == JobState.RUNNING, Job.lease_owner == worker_id))
    ).all()
    for job in jobs:
        release_job(job)
        job.attempts -= 1
        job.progress = 0.0
    if jobs:
        notify_job_queued(session)  # an idle worker takes it now, not at its next poll
    return [job.id for job in jobs]


def release_job(job: Job) -> None:
    """Hand a running job back to the queue for another attempt (its engine died)."""
    check_transition(job.state, JobState.QUEUED)
    job.state = JobState.QUEUED
    job.lease_owner = None
    job.lease_expires_at = None


def find_idempotency_record(
    session: Session, *, account_id: str, key: str, since: datetime
) -> IdempotencyRecord | None:
    """The account's record of `key` made after `since` (older ones have expired)."""
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.account_id == account_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > since,
        )
    )


def insert_idempotency_record(
    session: Session,
    *,
    account_id: str,
    key: str,
    request_hash: str,
    now: datetime,
    expired_before: datetime,
) -> IdempotencyRecord:
    """Take `key` for the account (replacing an expired record of it). Raises IntegrityError
    when another transaction holds it."""
    session.execute(
        delete(IdempotencyRecord)
        .where(
            IdempotencyRecord.account_id == account_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at <= expired_before,
        )
        .execution_options(synchronize_session=False)
    )
    record = IdempotencyRecord(
        account_id=account_id, key=key, request_hash=request_hash, response={}, created_at=now
    )
    session.add(record)
    session.flush()
    return record
