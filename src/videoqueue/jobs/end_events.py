"""The event a job's end sends to its webhook: `video.completed`, `video.failed` or
`video.cancelled`, as the JSON body every attempt of its delivery carries (docs/webhooks.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState
from videoqueue.webhooks import store as outbox

EVENTS = {
    JobState.COMPLETED: "video.completed",
    JobState.FAILED: "video.failed",
    JobState.CANCELLED: "video.cancelled",
}


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def event_data(job: Job, *, refunded: bool) -> dict[str, Any]:
    """What the event says of the job: which it is, how it ended, and whether its charge
    went back."""
    data: dict[str, Any] = {
        "queue_id": job.id,
        "model": job.model,
        "status": job.state.lower(),
        "created_at": _time(job.created_at),
        "finished_at": _time(job.finished_at),
    }
    if job.state == JobState.COMPLETED:
        data["output_bytes"] = job.output_bytes
        return data
    failure = job.failure
    if failure is not None:
        data["error"] = {
            "kind": failure.kind.value,
            "message": failure.message,
            "recommended_model": failure.recommended_model,
        }
    data["credits_refunded"] = refunded
    return data


def record_end_event(session: Session, job: Job, *, refunded: bool) -> None:
    """Write the ended job's delivery to the webhook outbox (nothing without a webhook)."""
    if job.webhook_url is None:
        return
    assert job.finished_at is not None
    event = EVENTS[job.state]
    body = {
        "type": event,
        "timestamp": _time(job.finished_at),
        "data": event_data(job, refunded=refunded),
    }
    outbox.enqueue(
        session,
        account_id=job.account_id,
        job_id=job.id,
        event=event,
        url=job.webhook_url,
        body=json.dumps(body, separators=(",", ":")),
        now=job.finished_at,
    )
