"""Every query on jobs. Functions take a session and never commit: the caller does."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Subquery,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, defer

from videoqueue.clock import Clock
from videoqueue.db.base import could_be_key, new_id, table
from videoqueue.db.dialect import (
    locked,
    notify_job_queued,
    workers_notified,
    writes_in_one_statement,
)
from videoqueue.engines.base import UpstreamJob
from videoqueue.jobs.end_events import record_end_event
from videoqueue.jobs.failure import Failure
from videoqueue.jobs.models import IdempotencyRecord, Job
from videoqueue.jobs.spec import JobSpec
from videoqueue.jobs.states import ENDED, GONE, PENDING, JobState, check_transition

RECENT_JOBS_FOR_AVERAGE = 50
JOB_ID_LENGTH = 36
STATES_PER_QUERY = 500

# Built once, as each statement every job runs is: building one costs more CPU than running
# it from SQLAlchemy's compiled cache.
_JOBS = table(Job)
# The columns a queued job is written with, as parameters: an INSERT in a WITH takes no others.
_INSERT_JOB = insert(_JOBS).values(
    {
        name: bindparam(name, type_=_JOBS.c[name].type)
        for name in (
            "id",
            "account_id",
            "model",
            "engine",
            "state",
            "spec",
            "price_micros",
            "attempts",
            "max_attempts",
            "progress",
            "created_at",
            "webhook_url",
        )
    }
)
_INSERT_JOB_NOTIFYING = workers_notified(_INSERT_JOB)
_JOB_FOR_UPDATE = locked(select(Job).where(Job.id == bindparam("job_id")))
_OWNED_JOB = select(Job).where(Job.id == bindparam("job_id"), Job.account_id == bindparam("owner"))


def _runnable(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Jobs a worker may claim: queued, or running on a lapsed lease with attempts left."""
    return or_(
        Job.state == JobState.QUEUED,
        and_(
            Job.state == JobState.RUNNING,
            Job.lease_expires_at < now,
            Job.attempts < Job.max_attempts,
        ),
    )


def _oldest_job_of_engines(state: ColumnElement[bool]) -> Subquery:
    """The oldest job in `state` of the engines asked for, its row locked (rows other workers
    hold are skipped): one step along `ix_jobs_state_created`, whatever the backlog."""
    oldest = (
        select(Job.id, Job.created_at)
        .where(state, Job.engine.in_(bindparam("engines", expanding=True)))
        .order_by(Job.created_at)
        .limit(1)
    )
    return locked(oldest, skip_locked=True).subquery()


# The runnable job a worker claims is the older of two candidates, each found through the
# index: one `_runnable` filter (an OR of two states) would gather and sort every queued job.
_CANDIDATES = union_all(
    select(_oldest_job_of_engines(Job.state == JobState.QUEUED)),
    select(
        _oldest_job_of_engines(
            and_(
                Job.state == JobState.RUNNING,
                Job.lease_expires_at < bindparam("now"),
                Job.attempts < Job.max_attempts,
            )
        )
    ),
).subquery()
# One statement claims, leases and returns the job, where a select and a flush took two.
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.id
        == select(_CANDIDATES.c.id).order_by(_CANDIDATES.c.created_at).limit(1).scalar_subquery()
    )
    .values(
        state=JobState.RUNNING,
        attempts=_JOBS.c.attempts + 1,
        lease_owner=bindparam("worker_id"),
        lease_expires_at=bindparam("lease_expires_at"),
        started_at=func.coalesce(_JOBS.c.started_at, bindparam("now")),
        progress=0.0,
    )
    .returning(*_JOBS.c)
)
# Settling a finished job likewise: one UPDATE that holds only while the lease is ours.
_COMPLETE_OWNED = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job_id"),
        _JOBS.c.state == JobState.RUNNING,
        _JOBS.c.lease_owner == bindparam("worker_id"),
    )
    .values(
        state=JobState.COMPLETED,
        output_key=bindparam("output_key"),
        output_bytes=bindparam("output_bytes"),
        progress=1.0,
        finished_at=bindparam("now"),
        lease_owner=None,
        lease_expires_at=None,
    )
    .returning(_JOBS.c.webhook_url)
)


def insert_job(
    session: Session,
    *,
    job_id: str,
    account_id: str,
    model: str,
    engine: str,
    spec: JobSpec,
    price_micros: int,
    max_attempts: int,
    clock: Clock,
    webhook_url: str | None = None,
) -> None:
    """Insert a QUEUED job (one plain INSERT: no ORM object is built) and wake the workers,
    on PostgreSQL in the same statement."""
    one_statement = writes_in_one_statement(session)
    session.execute(
        _INSERT_JOB_NOTIFYING if one_statement else _INSERT_JOB,
        {
            "id": job_id,
            "account_id": account_id,
            "model": model,
            "engine": engine,
            "state": JobState.QUEUED,
            "spec": spec.to_json(),
            "price_micros": price_micros,
            "attempts": 0,
            "max_attempts": max_attempts,
            "progress": 0.0,
            "created_at": clock.now(),
            "webhook_url": webhook_url,
        },
    )
    if not one_statement:
        notify_job_queued(session)


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
    webhook_url: str | None = None,
) -> Job:
    """Insert a QUEUED job under a new id, and load it for a caller that goes on to change it."""
    job_id = new_id()
    insert_job(
        session,
        job_id=job_id,
        account_id=account_id,
        model=model,
        engine=engine,
        spec=spec,
        price_micros=price_micros,
        max_attempts=max_attempts,
        clock=clock,
        webhook_url=webhook_url,
    )
    job = session.get(Job, job_id)
    assert job is not None
    return job


def could_be_job_id(text: str) -> bool:
    """False for what no job id can be (see `could_be_key`)."""
    return could_be_key(text, JOB_ID_LENGTH)


def get_job(session: Session, job_id: str, *, account_id: str) -> Job | None:
    """The job if it exists and belongs to the account (anyone else's is simply not found)."""
    if not could_be_job_id(job_id):
        return None
    return session.scalar(_OWNED_JOB, {"job_id": job_id, "owner": account_id})


def polled_job_query(flag: ColumnElement[bool]) -> Select[Job, bool]:
    """What a poll reads, for `get_polled_job` (built once: building it costs more than
    running it): the job without its spec, which a poll never reads (it raises if touched),
    and `flag`, a column expression on the job's row (e.g. whether a link serves it)."""
    return (
        select(Job, flag)
        .options(defer(Job.spec, raiseload=True))
        .where(Job.id == bindparam("job_id"), Job.account_id == bindparam("owner"))
    )


def get_polled_job(
    session: Session, query: Select[Job, bool], job_id: str, *, account_id: str
) -> tuple[Job, bool] | None:
    """The account's job as `get_job` finds it, and its flag, by a `polled_job_query`."""
    if not could_be_job_id(job_id):
        return None
    found = session.execute(query, {"job_id": job_id, "owner": account_id}).first()
    return None if found is None else (found[0], bool(found[1]))


def list_jobs(
    session: Session,
    *,
    account_id: str,
    after: Job | None,
    limit: int,
    descending: bool,
    states: Collection[JobState] = (),
    model: str | None = None,
) -> list[Job]:
    """Up to `limit` of the account's jobs whose media is kept, by creation time (then id),
    starting past `after`; only those in `states` and of `model` when given."""
    stmt = select(Job).where(Job.account_id == account_id, Job.state.not_in(list(GONE)))
    if states:
        stmt = stmt.where(Job.state.in_(list(states)))
    if model is not None:
        stmt = stmt.where(Job.model == model)
    if after is not None:
        if descending:
            past = or_(
                Job.created_at < after.created_at,
                and_(Job.created_at == after.created_at, Job.id < after.id),
            )
        else:
            past = or_(
                Job.created_at > after.created_at,
                and_(Job.created_at == after.created_at, Job.id > after.id),
            )
        stmt = stmt.where(past)
    if descending:
        stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc())
    else:
        stmt = stmt.order_by(Job.created_at, Job.id)
    return list(session.scalars(stmt.limit(limit)))


def job_states(session: Session, job_ids: Collection[str]) -> dict[str, JobState]:
    """The state of each job of `job_ids` that exists."""
    ids = [job_id for job_id in job_ids if could_be_job_id(job_id)]
    states: dict[str, JobState] = {}
    for start in range(0, len(ids), STATES_PER_QUERY):
        chunk = ids[start : start + STATES_PER_QUERY]
        rows = session.execute(select(Job.id, Job.state).where(Job.id.in_(chunk)))
        states.update((job_id, state) for job_id, state in rows)
    return states


def get_job_for_update(session: Session, job_id: str) -> Job | None:
    return session.scalar(_JOB_FOR_UPDATE, {"job_id": job_id})


def queue_position(session: Session, job: Job, *, now: datetime) -> int:
    """How many runnable jobs of the job's engine a worker claims before it (oldest first)."""
    ahead = or_(
        Job.created_at < job.created_at, and_(Job.created_at == job.created_at, Job.id < job.id)
    )
    stmt = (
        select(func.count())
        .select_from(Job)
        .where(_runnable(now), Job.engine == job.engine, ahead, Job.id != job.id)
    )
    return int(session.scalar(stmt) or 0)


def claim_next_job(
    session: Session,
    *,
    worker_id: str,
    engines: Collection[str],
    clock: Clock,
    lease_seconds: float,
) -> Job | None:
    """Lease the oldest runnable job (queued, or running on a lapsed lease with attempts left).
    The Job returned is as leased, and detached: no session holds it, so changing it writes
    nothing."""
    now = clock.now()
    # QUEUED → RUNNING is the table's; a lapsed RUNNING job is leased again as it stands.
    check_transition(JobState.QUEUED, JobState.RUNNING)
    params = {
        "now": now,
        "engines": list(engines),
        "worker_id": worker_id,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
    }
    row = session.connection().execute(_CLAIM, params).first()
    return None if row is None else Job(**row._mapping)


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
    no longer ours; the upstream job is stored still if the job has ended meanwhile (so that
    it is released), never on a job another worker now runs (its engine gets the same
    upstream job by the idempotency key, and stores it)."""
    values = {
        "upstream_queue_id": upstream.queue_id,
        "upstream_download_url": upstream.download_url,
    }
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.state == JobState.RUNNING)
        .values(**values)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.not_in(list(PENDING)), Job.upstream_queue_id.is_(None))
        .values(**values)
    )
    return False


def unreleased_upstream_jobs(
    session: Session, *, engines: Collection[str], limit: int, job_id: str | None = None
) -> list[Job]:
    """Up to `limit` ended jobs of `engines` (only `job_id`, when given) whose upstream job is
    not yet released, those that ended first first."""
    stmt = select(Job).where(
        Job.upstream_queue_id.is_not(None),
        Job.upstream_released_at.is_(None),
        Job.state.not_in(list(PENDING)),
        Job.engine.in_(list(engines)),
    )
    if job_id is not None:
        stmt = stmt.where(Job.id == job_id)
    return list(session.scalars(stmt.order_by(Job.finished_at).limit(limit)))


def mark_upstream_released(session: Session, *, job_id: str, queue_id: str, clock: Clock) -> None:
    """Record that the job's upstream job `queue_id` was released there."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.upstream_queue_id == queue_id)
        .values(upstream_released_at=clock.now())
    )


def _end(session: Session, job: Job, state: JobState, *, clock: Clock, refunded: bool) -> None:
    """The one place a job ends (completed, failed or cancelled): its lease goes, and its
    webhook's delivery, if it has a webhook, is written in the transaction that ends it."""
    check_transition(job.state, state)
    job.state = state
    job.finished_at = clock.now()
    job.lease_owner = None
    job.lease_expires_at = None
    record_end_event(session, job, refunded=refunded)


def complete_owned_job(
    session: Session,
    *,
    job_id: str,
    worker_id: str,
    output_key: str,
    output_bytes: int,
    clock: Clock,
) -> bool:
    """Record the finished output of the job this worker runs, in one statement; False
    (nothing changed) if the job is no longer running under this worker's lease."""
    check_transition(JobState.RUNNING, JobState.COMPLETED)
    params = {
        "job_id": job_id,
        "worker_id": worker_id,
        "output_key": output_key,
        "output_bytes": output_bytes,
        "now": clock.now(),
    }
    # On the connection: the session would treat an UPDATE of a mapped table as an ORM bulk
    # update, and its bookkeeping costs more than the statement.
    ended = session.connection().execute(_COMPLETE_OWNED, params).first()
    if ended is None:
        return False
    if ended.webhook_url is not None:
        job = session.get(Job, job_id, populate_existing=True)
        assert job is not None
        record_end_event(session, job, refunded=False)
    return True


def fail_job(session: Session, job: Job, *, failure: Failure, clock: Clock) -> None:
    """Record why the job failed; each API renders it from these columns from now on."""
    job.failure_kind = failure.kind
    job.failure_message = failure.message
    job.failure_refunded = failure.refunded
    job.failure_recommended_model = failure.recommended_model
    _end(session, job, JobState.FAILED, clock=clock, refunded=failure.refunded)


def cancel_job(session: Session, job: Job, *, clock: Clock, refunded: bool) -> None:
    """Stop a pending job (its charge given back when `refunded`); a worker still running it
    will find its lease gone."""
    _end(session, job, JobState.CANCELLED, clock=clock, refunded=refunded)


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


def jobs_past_retention(session: Session, *, ended_before: datetime, limit: int) -> list[Job]:
    """Up to `limit` ended jobs whose media is kept and which ended before `ended_before`,
    oldest first, locked for expiring (rows another worker holds are skipped)."""
    stmt = (
        select(Job)
        .where(Job.state.in_(list(ENDED)), Job.finished_at < ended_before)
        .order_by(Job.finished_at)
        .limit(limit)
    )
    return list(session.scalars(locked(stmt, skip_locked=True)))


def mark_media_expired(job: Job, *, clock: Clock) -> None:
    """The job's stored media was removed by the retention; retrieve answers 404 from now on."""
    check_transition(job.state, JobState.EXPIRED)
    job.state = JobState.EXPIRED
    job.media_deleted_at = clock.now()


def average_execution_ms(session: Session, model: str, default_ms: int) -> int:
    """P80 of the model's recent completed run times, in ms (`default_ms` before any)."""
    rows = session.execute(
        select(Job.started_at, Job.finished_at)
        .where(
            Job.model == model,
            Job.finished_at.is_not(None),
            Job.started_at.is_not(None),
            Job.output_key.is_not(None),
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


def jobs_by_state_and_model(session: Session) -> list[tuple[JobState, str, int]]:
    """How many jobs each (state, model) pair holds."""
    rows = session.execute(
        select(Job.state, Job.model, func.count()).group_by(Job.state, Job.model)
    ).all()
    return [(state, model, int(count)) for state, model, count in rows]


def queued_by_engine(session: Session) -> list[tuple[str, int, datetime]]:
    """Per engine: how many jobs are queued, and when the oldest of them was created."""
    rows = session.execute(
        select(Job.engine, func.count(), func.min(Job.created_at))
        .where(Job.state == JobState.QUEUED)
        .group_by(Job.engine)
    ).all()
    return [(engine, int(count), oldest) for engine, count, oldest in rows]


def is_pending(job: Job) -> bool:
    return job.state in PENDING


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
) -> tuple[str, dict[str, Any]] | None:
    """The request hash and answer of the account's record of `key` made after `since`
    (older ones have expired)."""
    found = session.execute(
        select(IdempotencyRecord.request_hash, IdempotencyRecord.response).where(
            IdempotencyRecord.account_id == account_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > since,
        )
    ).first()
    return None if found is None else (found[0], found[1])


def insert_idempotency_record(
    session: Session,
    *,
    account_id: str,
    key: str,
    request_hash: str,
    response: dict[str, Any],
    now: datetime,
    expired_before: datetime,
) -> None:
    """Take `key` for the account with its answer (replacing an expired record of it).
    Raises IntegrityError when another transaction holds it."""
    records = table(IdempotencyRecord)
    session.execute(
        delete(records).where(
            records.c.account_id == account_id,
            records.c.key == key,
            records.c.created_at <= expired_before,
        )
    )
    session.execute(
        insert(records),
        {
            "id": new_id(),
            "account_id": account_id,
            "key": key,
            "request_hash": request_hash,
            "response": response,
            "created_at": now,
        },
    )
