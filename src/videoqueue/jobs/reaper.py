"""The housekeeping every worker process runs on an interval; it needs no `Worker`, only a
session: failing (and refunding) jobs whose last attempt's lease lapsed (their worker was
lost), and, under a retention, expiring the media of jobs that ended long enough ago."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from videoqueue import metrics
from videoqueue.billing.ledger import refund
from videoqueue.clock import Clock
from videoqueue.jobs import store
from videoqueue.jobs.failure import WORKER_LOST
from videoqueue.storage.base import Storage
from videoqueue.storage.layout import job_prefix

EXPIRY_BATCH = 20
"""Jobs expired per reaper step: each holds its row lock while its objects are deleted."""


def reap(session: Session, *, clock: Clock, limit: int = 20) -> int:
    """Fail and refund up to `limit` exhausted jobs in the caller's transaction; how many."""
    jobs = store.exhausted_jobs(session, clock=clock, limit=limit)
    for job in jobs:
        store.fail_job(session, job, failure=WORKER_LOST, clock=clock)
        metrics.job_ended(job.engine, job.started_at, clock.now(), WORKER_LOST.kind.value)
        if refund(session, job_id=job.id, clock=clock, note="worker lost on the last attempt"):
            metrics.refunded("worker_lost")
    return len(jobs)


def expire_media(
    session: Session,
    storage: Storage,
    *,
    clock: Clock,
    retention: timedelta,
    limit: int = EXPIRY_BATCH,
) -> int:
    """Delete the stored output and inputs of up to `limit` jobs that ended (completed, failed
    or cancelled) more than `retention` ago, and mark them EXPIRED in the caller's
    transaction; how many. Their charges and refunds stay as they are."""
    jobs = store.jobs_past_retention(session, ended_before=clock.now() - retention, limit=limit)
    for job in jobs:
        # Storage first, the row after (committed by the caller): a crash between the two
        # leaves a job that is still due, which the next step expires again (deleting nothing
        # twice). The other order could commit EXPIRED and then lose the deletion, leaving
        # objects that no row would ever delete again.
        storage.delete_prefix(job_prefix(job.id))
        store.mark_media_expired(job, clock=clock)
    return len(jobs)
