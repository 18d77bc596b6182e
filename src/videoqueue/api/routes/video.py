"""`/video/queue`, `/video/quote`, `/video/retrieve`, `/video/complete`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from videoqueue.api.auth import Caller, require_caller
from videoqueue.api.body import json_object
from videoqueue.api.context import AppContext, context
from videoqueue.api.mp4 import mp4_response
from videoqueue.billing.ledger import refund
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.catalog.pricing import micros_to_usd, price_micros
from videoqueue.catalog.validation import validate_queue, validate_quote
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState
from videoqueue.jobs.submit import enqueue, job_prefix, prepare_job
from videoqueue.media.intake import load_media
from videoqueue.storage.base import ObjectNotFound

router = APIRouter(tags=["Video"])

RETRIEVE_KEYS = ("model", "queue_id", "delete_media_on_completion")
COMPLETE_KEYS = ("model", "queue_id")


@router.post("/video/queue")
async def queue_video(request: Request, caller: Caller = Depends(require_caller)) -> JSONResponse:
    """Queue a video generation. Answers `{model, queue_id}`; poll `/video/retrieve` with both."""
    body = await json_object(request)
    result = await run_in_threadpool(_queue, context(request), caller, body)
    return JSONResponse(result)


def _queue(ctx: AppContext, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    video = validate_queue(ctx.catalog, body)
    entry = ctx.catalog.get(video.model)
    prepared = prepare_job(video, entry, storage=ctx.storage, load=load_media)
    try:
        with ctx.db.transaction() as session:
            job = enqueue(session, prepared, account_id=caller.account_id, clock=ctx.clock,
                          max_attempts=ctx.settings.max_attempts)
    except BaseException:
        ctx.storage.delete_prefix(job_prefix(prepared.job_id))
        raise
    return {"model": entry.id, "queue_id": job.id}


@router.post("/video/quote")
async def quote_video(request: Request) -> JSONResponse:
    """The USD price `/video/queue` would charge for this request shape: `{quote}`."""
    body = await json_object(request)
    ctx = context(request)
    video = validate_quote(ctx.catalog, body)
    micros = price_micros(ctx.catalog.get(video.model), video)
    return JSONResponse({"quote": micros_to_usd(micros)})


class MediaNotFound(ObjectNotFound):
    """Media could not be found. Request may be invalid, expired, or deleted."""

    code = "MEDIA_NOT_FOUND"


def _job_reference(body: Mapping[str, Any], allowed: tuple[str, ...]) -> tuple[str, str]:
    found: list[iss.Issue] = []
    unknown = [k for k in body if k not in allowed]
    if unknown:
        found.append(iss.unrecognized_keys((), unknown))
    for key in ("model", "queue_id"):
        if key not in body:
            found.append(iss.required((key,), "string"))
        elif not isinstance(body[key], str):
            found.append(iss.wrong_type((key,), "string", body[key]))
    flag = body.get("delete_media_on_completion", False)
    if not isinstance(flag, bool):
        found.append(iss.wrong_type(("delete_media_on_completion",), "boolean", flag))
    if found:
        raise InvalidParameters(found)
    return body["model"], body["queue_id"]


def _find_job(ctx: AppContext, caller: Caller, model: str, queue_id: str) -> Job:
    with ctx.db.transaction() as session:
        job = store.get_job(session, queue_id, account_id=caller.account_id)
        if job is None or job.model != model:
            raise MediaNotFound()
        return job


def _elapsed_ms(ctx: AppContext, since: datetime) -> int:
    return max(0, int((ctx.clock.now() - since).total_seconds() * 1000))


def _processing(ctx: AppContext, job: Job) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        average = store.average_execution_ms(session, job.model,
                                             ctx.settings.default_average_execution_ms)
    return {"status": "PROCESSING", "average_execution_time": average,
            "execution_duration": _elapsed_ms(ctx, job.created_at)}


def delete_job_media(ctx: AppContext, job_id: str) -> None:
    """Remove a finished job's stored files and mark it DELETED (idempotent)."""
    ctx.storage.delete_prefix(job_prefix(job_id))
    with ctx.db.transaction() as session:
        job = store.get_job_for_update(session, job_id)
        if job is not None and job.state not in (JobState.DELETED, JobState.EXPIRED):
            store.mark_media_deleted(job, clock=ctx.clock)


@router.post("/video/retrieve", response_model=None)
async def retrieve_video(request: Request, caller: Caller = Depends(require_caller)) -> Response:
    """Poll a job: JSON `{status: "PROCESSING", …}` while it runs, then the `video/mp4` bytes."""
    body = await json_object(request)
    model, queue_id = _job_reference(body, RETRIEVE_KEYS)
    ctx = context(request)
    job = await run_in_threadpool(_find_job, ctx, caller, model, queue_id)
    if store.is_pending(job):
        return JSONResponse(await run_in_threadpool(_processing, ctx, job))
    if job.state == JobState.FAILED:
        return JSONResponse(job.error_body or {}, status_code=job.error_status or 500)
    if job.state != JobState.COMPLETED or job.output_key is None:
        raise MediaNotFound()
    cleanup = None
    if body.get("delete_media_on_completion") is True:
        cleanup = BackgroundTask(run_in_threadpool, delete_job_media, ctx, job.id)
    try:
        return mp4_response(ctx.storage, job.output_key, request.headers.get("range"), cleanup)
    except ObjectNotFound:
        raise MediaNotFound() from None


def _complete(ctx: AppContext, caller: Caller, model: str, queue_id: str) -> None:
    job = _find_job(ctx, caller, model, queue_id)
    if store.is_pending(job):
        with ctx.db.transaction() as session:
            locked_job = store.get_job_for_update(session, job.id)
            if locked_job is not None and store.is_pending(locked_job):
                was_queued = locked_job.state == JobState.QUEUED
                store.cancel_job(locked_job, clock=ctx.clock)
                if was_queued:
                    refund(session, job_id=job.id, clock=ctx.clock,
                           note="cancelled before it started")
    delete_job_media(ctx, job.id)


@router.post("/video/complete")
async def complete_video(request: Request,
                         caller: Caller = Depends(require_caller)) -> JSONResponse:
    """Delete a job's stored media (cancelling it if still queued). Answers `{success: true}`."""
    body = await json_object(request)
    model, queue_id = _job_reference(body, COMPLETE_KEYS)
    await run_in_threadpool(_complete, context(request), caller, model, queue_id)
    return JSONResponse({"success": True})
