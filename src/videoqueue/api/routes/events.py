"""`GET /video/events`: a job's state and progress as Server-Sent Events until it ends.

No state is kept between polls but the last event's id, which carries a digest of what it
said: a client that reconnects with `Last-Event-ID` (to this API process or another) gets
only what changed since, numbered on from there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from videoqueue.api.auth import Caller, require_caller
from videoqueue.api.context import context
from videoqueue.api.routes.video import job_reference
from videoqueue.jobs.progress import JobStatus
from videoqueue.jobs.service import JobService, MediaNotFound
from videoqueue.logs import note_log_fields

log = logging.getLogger(__name__)

router = APIRouter(tags=["Video"])

EVENTS_KEYS = ("model", "queue_id")
KEEP_ALIVE_SECONDS = 15.0
"""Longest silence on a stream: past it, a comment line keeps proxies from closing it."""


@dataclass(frozen=True)
class EventId:
    """An event's number in its stream and a digest of its data: `<number>.<digest>`."""

    number: int
    digest: str

    def __str__(self) -> str:
        return f"{self.number}.{self.digest}"

    @classmethod
    def parse(cls, text: str | None) -> EventId | None:
        number, _, digest = (text or "").strip().partition(".")
        if not number.isdigit() or not digest:
            return None
        return cls(int(number), digest)


def _data(status: JobStatus) -> str:
    return json.dumps(status.to_json(), separators=(",", ":"))


def _digest(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()[:12]


async def _stream(
    jobs: JobService,
    reference: tuple[str, str, str],
    first: JobStatus,
    last_seen: EventId | None,
    poll_seconds: float,
) -> AsyncIterator[str]:
    """An event for each change of the job's snapshot, the one the client saw last left out;
    the job's end is the last. A disconnected client cancels this (Starlette's response)."""
    status, seen = first, last_seen
    quiet_since = time.monotonic()
    try:
        while True:
            data = _data(status)
            if seen is None or _digest(data) != seen.digest:
                seen = EventId((seen.number if seen else 0) + 1, _digest(data))
                yield f"id: {seen}\nevent: {status.status}\ndata: {data}\n\n"
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
                yield ": still waiting\n\n"  # a comment: proxies drop idle connections
                quiet_since = time.monotonic()
            if status.ended:
                return
            await asyncio.sleep(poll_seconds)
            try:
                status = await run_in_threadpool(jobs.status, *reference)
            except MediaNotFound:
                return  # the job's row is gone: nothing more will happen to it
    except asyncio.CancelledError:
        log.info("events stream of job %s closed: the client went away", reference[2])
        raise


@router.get("/video/events", response_model=None)
async def video_events(
    request: Request,
    caller: Annotated[Caller, Depends(require_caller)],
) -> StreamingResponse:
    """Server-Sent Events (`text/event-stream`) of a job's state and progress, until it ends.

    Query `model` and `queue_id` as retrieve takes them. Each event is named for the job's
    status (`queued`, `running`, then one of `completed`, `failed`, `cancelled`, after which
    the stream closes); its data is `{status, progress, queue_position}`. Reconnect with
    `Last-Event-ID` to get only what changed since that event.
    """
    model, queue_id = job_reference(dict(request.query_params), EVENTS_KEYS)
    note_log_fields(job_id=queue_id)
    ctx = context(request)
    reference = (caller.account_id, model, queue_id)
    first = await run_in_threadpool(ctx.jobs.status, *reference)
    last_seen = EventId.parse(request.headers.get("last-event-id"))
    return StreamingResponse(
        _stream(ctx.jobs, reference, first, last_seen, ctx.settings.events_poll_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
