"""Releasing upstream jobs: once one of our jobs has ended, however it ended (completed,
failed, refunded by the reaper after its workers died, cancelled while no worker held it,
deleted, expired), the job another server ran for it is let go of there (the upstream
cancels it if it still runs and frees its video), once.

Only ended jobs are released, so a worker whose lease was lost to another never releases the
upstream job that the other worker now polls. The worker that ran a job releases it as soon
as its end is committed; every worker sweeps, beside its reaper, what is left (its own crash
came first, the job ended while no worker held it) for the engines it has ready. The release
is sent first and recorded after, so a worker that dies between the two leaves it due, and
it is sent again: the upstream answers 404, which counts as released.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.engines.base import EngineError
from videoqueue.engines.lifecycle import WarmEngine
from videoqueue.jobs import store

log = logging.getLogger(__name__)

RELEASE_BATCH = 20
"""Upstream jobs released per sweep."""


def release_upstream_jobs(
    db: Database,
    engines: Mapping[str, WarmEngine],
    *,
    clock: Clock,
    job_id: str | None = None,
    limit: int = RELEASE_BATCH,
) -> int:
    """Release, through `engines` (ready ones), up to `limit` upstream jobs of ended jobs
    (only `job_id`'s, when given) and record each; how many. An engine that fails to release
    one is asked for no more until the next sweep."""
    if not engines:
        return 0
    with db.read() as session:
        due = [
            (job.id, job.engine, job.model, job.upstream)
            for job in store.unreleased_upstream_jobs(
                session, engines=list(engines), job_id=job_id, limit=limit
            )
        ]
    failing: set[str] = set()
    released = 0
    for ended_id, engine, model, upstream in due:
        if engine in failing or upstream is None:
            continue
        try:
            releasable = engines[engine].release(upstream, model)
        except EngineError as exc:
            log.warning(
                "job %s: upstream job %s not released, trying again later: %s",
                ended_id,
                upstream.queue_id,
                exc.message,
            )
            failing.add(engine)
            continue
        if not releasable:
            log.warning(
                "job %s: engine %s cannot release upstream jobs; %s is left to the upstream",
                ended_id,
                engine,
                upstream.queue_id,
            )
        with db.transaction() as session:
            store.mark_upstream_released(
                session, job_id=ended_id, queue_id=upstream.queue_id, clock=clock
            )
        log.info("job %s: upstream job %s released", ended_id, upstream.queue_id)
        released += 1
    return released
