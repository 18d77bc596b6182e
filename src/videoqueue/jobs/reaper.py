"""Failing, and refunding, jobs whose last attempt's lease lapsed (their worker was lost).

Any worker process runs `reap` on an interval; it needs no `Worker`, only a session.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from videoqueue import metrics
from videoqueue.billing.ledger import refund
from videoqueue.clock import Clock
from videoqueue.jobs import store
from videoqueue.jobs.failure import WORKER_LOST


def reap(session: Session, *, clock: Clock, limit: int = 20) -> int:
    """Fail and refund up to `limit` exhausted jobs in the caller's transaction; how many."""
    jobs = store.exhausted_jobs(session, clock=clock, limit=limit)
    for job in jobs:
        store.fail_job(session, job, failure=WORKER_LOST, clock=clock)
        metrics.job_ended(job.engine, job.started_at, clock.now(), WORKER_LOST.kind.value)
        if refund(session, job_id=job.id, clock=clock, note="worker lost on the last attempt"):
            metrics.refunded("worker_lost")
    return len(jobs)
