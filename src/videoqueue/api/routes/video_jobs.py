"""`GET /video/jobs`, `GET /video/jobs/{queue_id}` and `POST /video/cancel`: an account's jobs,
beside Venice's routes (Venice has none of them), in Venice's error shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.auth import Caller
from videoqueue.api.body import json_object
from videoqueue.api.context import context
from videoqueue.api.limits import CompleteCaller, rate_limited
from videoqueue.api.routes.video import COMPLETE_KEYS, job_reference
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.jobs.states import JobState
from videoqueue.jobs.views import JobView, list_job_views, view_job
from videoqueue.logs import note_log_fields

router = APIRouter(tags=["Video"])

LIST_KEYS = ("state", "model", "after", "limit")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
STATES: dict[str, tuple[JobState, ...]] = {
    "queued": (JobState.QUEUED,),
    "running": (JobState.RUNNING,),
    "completed": (JobState.COMPLETED,),
    "failed": (JobState.FAILED,),
    "cancelled": (JobState.CANCELLED,),
    "processing": (JobState.QUEUED, JobState.RUNNING),  # Venice's name for both
}
"""The `state` filter's names (any case): ours, and Venice's `PROCESSING` for either pending."""


async def query_model(request: Request) -> object:
    return request.query_params.get("model")


ListCaller = Annotated[Caller, Depends(rate_limited("retrieve", named_model=query_model))]
"""Counted as a retrieve is (a GET has no body to name its model)."""


def _states(text: str | None, found: list[iss.Issue]) -> list[JobState]:
    if text is None:
        return []
    chosen: list[JobState] = []
    for name in text.split(","):
        if name.strip().lower() not in STATES:
            found.append(iss.not_in_enum(("state",), list(STATES), name))
        else:
            chosen.extend(STATES[name.strip().lower()])
    return chosen


def page_size(query: QueryParams, allowed: tuple[str, ...], found: list[iss.Issue]) -> int:
    """The `limit` a list route's query asks for; an issue in `found` for a bad one, and for
    keys not in `allowed`."""
    unknown = [key for key in query if key not in allowed]
    if unknown:
        found.append(iss.unrecognized_keys((), unknown))
    return _limit(query.get("limit"), found)


def page_body(items: list[dict[str, Any]], has_more: bool, last_id: str | None) -> JSONResponse:
    """A page as every list route answers it: `{data, has_more, next_after}`."""
    return JSONResponse(
        {"data": items, "has_more": has_more, "next_after": last_id if has_more else None}
    )


def _limit(text: str | None, found: list[iss.Issue]) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        found.append(iss.custom(("limit",), f"limit must be an integer from 1 to {MAX_LIMIT}"))
        return DEFAULT_LIMIT
    return int(text)


def iso_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def job_item(view: JobView) -> dict[str, Any]:
    failure = None
    if view.failure is not None:
        failure = {
            "kind": str(view.failure.kind),
            "message": view.failure.message,
            "refunded": view.failure.refunded,
        }
    return {
        "queue_id": view.id,
        "model": view.model,
        "status": str(view.state),
        "progress": round(view.progress, 3),
        "queue_position": view.queue_position,
        "created_at": iso_time(view.created_at),
        "started_at": iso_time(view.started_at),
        "finished_at": iso_time(view.finished_at),
        "failure": failure,
    }


@router.get("/video/jobs")
async def list_jobs(request: Request, caller: ListCaller) -> JSONResponse:
    """The account's jobs whose media is kept, newest first: `{data, has_more, next_after}`.

    `state` filters by `queued`, `running`, `completed`, `failed`, `cancelled` or
    `processing` (queued or running), several joined by commas; `model` by model id;
    `limit` (1-100, default 20) per page; `after` a `queue_id` (the last page's
    `next_after`) to read on from.
    """
    query = request.query_params
    found: list[iss.Issue] = []
    limit = page_size(query, LIST_KEYS, found)
    states = _states(query.get("state"), found)
    if found:
        raise InvalidParameters(found)
    ctx = context(request)
    page = await run_in_threadpool(
        list_job_views,
        ctx.db,
        caller.account_id,
        after=query.get("after"),
        limit=limit,
        descending=True,
        states=states,
        model=query.get("model"),
        positions_at=ctx.clock.now(),
    )
    last = page.views[-1].id if page.views else None
    return page_body([job_item(view) for view in page.views], page.has_more, last)


# `:path`, so that an id holding a `/` is this route's 404 too, never "no such route".
@router.get("/video/jobs/{queue_id:path}")
async def show_job(request: Request, queue_id: str, caller: ListCaller) -> JSONResponse:
    """One of the account's jobs, as `/video/jobs` lists it. Another account's job, an
    unknown id, or a job whose media is gone answers retrieve's 404 `MEDIA_NOT_FOUND`."""
    note_log_fields(job_id=queue_id)
    ctx = context(request)
    view = await run_in_threadpool(
        view_job, ctx.db, caller.account_id, queue_id, positions_at=ctx.clock.now()
    )
    return JSONResponse(job_item(view))


@router.post("/video/cancel")
async def cancel_video(request: Request, caller: CompleteCaller) -> JSONResponse:
    """Cancel a queued or running job, refunded in full: `{success: true}`. A running job's
    engine stops at its next step. An ended job answers 409 and is left as it is; the media
    of a cancelled job stays until `/video/complete` deletes it."""
    body = await json_object(request)
    model, queue_id = job_reference(body, COMPLETE_KEYS)
    note_log_fields(job_id=queue_id)
    await run_in_threadpool(context(request).jobs.cancel, caller.account_id, model, queue_id)
    return JSONResponse({"success": True})
