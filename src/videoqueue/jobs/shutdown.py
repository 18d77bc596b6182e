"""Handing the job of a worker that is stopping back to the queue."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from videoqueue.db.dialect import locked, notify_job_queued
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState


def release_for_shutdown(session: Session, *, worker_id: str) -> list[str]:
    """Requeue the jobs running under `worker_id`'s lease, their attempt not counted."""
    jobs = session.scalars(
        locked(select(Job).where(Job.state == JobState.RUNNING, Job.lease_owner == worker_id))
    ).all()
    for job in jobs:
        store.release_job(job)
        # The worker stopped on request: the job did nothing wrong, so it keeps its attempts.
        job.attempts -= 1
        job.progress = 0.0
    if jobs:
        notify_job_queued(session)  # an idle PostgreSQL worker takes it now, not at its poll
    return [job.id for job in jobs]
