"""Private models' `download_url`s as the video routes see them: issued with the job, and the
`COMPLETED` status that `/video/retrieve` answers in place of the bytes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from videoqueue.api.context import AppContext
from videoqueue.delivery import store as link_store
from videoqueue.delivery.links import LinkPolicy, issue_link
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.submit import output_key
from videoqueue.settings import Settings
from videoqueue.storage.base import ShareLink

SHARE_READ_PATH = "/v1/share/read"


def link_policy(settings: Settings) -> LinkPolicy:
    return LinkPolicy(
        ttl_seconds=settings.download_link_ttl_seconds,
        max_fetches=settings.download_link_max_fetches,
        burst=settings.download_link_burst,
        burst_seconds=settings.download_link_burst_seconds,
    )


def issue_download_url(ctx: AppContext, session: Session, job_id: str) -> str:
    """Create the job's delivery link in the caller's transaction; returns its `download_url`."""
    claims, token = issue_link(
        session, ctx.link_signer, link_policy(ctx.settings), job_id=job_id, now=ctx.clock.now()
    )
    url = f"{ctx.settings.resolved_public_base_url}{SHARE_READ_PATH}/{token}"
    link = ShareLink(token=token, url=url, expires_at=claims.expires_at)
    return ctx.storage.delivery_url(output_key(job_id), link)


def completed_by_link(ctx: AppContext, job: Job, *, delete_media: bool) -> dict[str, Any] | None:
    """Retrieve's answer for a finished job that was queued with a `download_url`, else None.

    Such a job's video is served only at its link. `delete_media_on_completion` then means:
    delete the video once the link has served it whole.
    """
    with ctx.db.transaction() as session:
        if not link_store.job_has_link(session, job.id):
            return None
        if delete_media:
            link_store.delete_after_download(session, job.id)
        average = store.average_execution_ms(
            session, job.model, ctx.settings.default_average_execution_ms
        )
    finished = job.finished_at or ctx.clock.now()
    elapsed_ms = int((finished - job.created_at).total_seconds() * 1000)
    return {
        "status": "COMPLETED",
        "average_execution_time": average,
        "execution_duration": max(0, elapsed_ms),
    }
