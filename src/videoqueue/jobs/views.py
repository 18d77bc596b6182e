"""Reading an account's jobs as either API shows them: one by id, or a page of them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from videoqueue.db.session import Database
from videoqueue.errors import VideoqueueError
from videoqueue.jobs import store
from videoqueue.jobs.failure import Failure
from videoqueue.jobs.models import Job
from videoqueue.jobs.service import MediaNotFound, queue_position
from videoqueue.jobs.states import GONE, JobState


class UnknownCursor(VideoqueueError):
    """The `after` cursor names no video of this account"""

    status = 400


@dataclass(frozen=True)
class JobView:
    """One job: its state, and what it was asked to make (from its stored spec)."""

    id: str
    model: str
    state: JobState
    progress: float
    """0 to 1."""
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    width: int
    height: int
    duration_s: float
    prompt: str
    failure: Failure | None
    queue_position: int | None = None
    """Set only where asked for, on a job still waiting for a worker."""

    @classmethod
    def of(cls, job: Job, queue_position: int | None = None) -> JobView:
        spec = job.job_spec
        return cls(
            id=job.id,
            model=job.model,
            state=job.state,
            progress=job.progress,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            width=spec.width,
            height=spec.height,
            duration_s=spec.duration_s,
            prompt=spec.prompt,
            failure=job.failure,
            queue_position=queue_position,
        )


@dataclass(frozen=True)
class JobPage:
    views: list[JobView]
    has_more: bool


def view_job(
    db: Database, account_id: str, job_id: str, *, positions_at: datetime | None = None
) -> JobView:
    """The account's job (with `positions_at`, its queue position at that time if it waits).
    Raises `MediaNotFound` for no such job, or one whose media is gone."""
    with db.read() as session:
        job = store.get_job(session, job_id, account_id=account_id)
        if job is None or job.state in GONE:
            raise MediaNotFound()
        return _view(session, job, positions_at)


def list_job_views(
    db: Database,
    account_id: str,
    *,
    after: str | None,
    limit: int,
    descending: bool,
    states: Collection[JobState] = (),
    model: str | None = None,
    positions_at: datetime | None = None,
) -> JobPage:
    """Up to `limit` of the account's jobs (in `states`, of `model`, when given) past the one
    `after` names (`UnknownCursor` if none), and whether more follow; with `positions_at`,
    each waiting job's queue position at that time."""
    with db.read() as session:
        cursor = None
        if after is not None:
            cursor = store.get_job(session, after, account_id=account_id)
            if cursor is None:
                raise UnknownCursor()
        jobs = store.list_jobs(
            session,
            account_id=account_id,
            after=cursor,
            limit=limit + 1,
            descending=descending,
            states=states,
            model=model,
        )
        views = [_view(session, job, positions_at) for job in jobs[:limit]]
        return JobPage(views, has_more=len(jobs) > limit)


def _view(session: Session, job: Job, positions_at: datetime | None) -> JobView:
    position = None
    if positions_at is not None and store.is_pending(job):
        position = queue_position(session, job, positions_at)
    return JobView.of(job, position)
