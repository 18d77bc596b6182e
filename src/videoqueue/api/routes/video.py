"""`/video/queue`, `/video/quote`, `/video/retrieve`, `/video/complete`: parse, call the jobs
service, render in Venice's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from videoqueue.api.auth import Caller
from videoqueue.api.body import json_object
from videoqueue.api.context import context
from videoqueue.api.database_threads import in_database_thread
from videoqueue.api.failures import venice_failure
from videoqueue.api.idempotency import idempotency_key
from videoqueue.api.limits import (
    CompleteAdmission,
    QueueAdmission,
    RateCount,
    RetrieveAdmission,
)
from videoqueue.api.model_access import admit_quote
from videoqueue.api.mp4 import mp4_response
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.catalog.pricing import micros_to_usd
from videoqueue.catalog.validation import requested_model
from videoqueue.jobs.service import (
    Accepted,
    Failed,
    MediaNotFound,
    PayingCaller,
    Pending,
    Ready,
    Retrieved,
    quote_probes_source,
)
from videoqueue.logs import note_log_fields
from videoqueue.storage.base import ObjectNotFound

router = APIRouter(tags=["Video"])

RETRIEVE_KEYS = ("model", "queue_id", "delete_media_on_completion")
COMPLETE_KEYS = ("model", "queue_id")


@router.post("/video/queue")
async def queue_video(request: Request, rate: QueueAdmission) -> JSONResponse:
    """Queue a video generation. Answers `{model, queue_id}`; poll `/video/retrieve` with both.

    Private models also answer a `download_url`, given only here: a pre-signed link (no API
    key) from which the finished MP4 is fetched, and which `DELETE` revokes.

    An optional `Idempotency-Key` header makes retrying safe: the same key with the same body
    within 24 h answers the first request's `queue_id` and is charged once; the same key
    with another body is answered 409.
    """
    body = await json_object(request)
    ctx = context(request)
    jobs = ctx.jobs

    def submit(caller: PayingCaller) -> Accepted:
        return jobs.submit(body, caller, idempotency_key(request, body))

    if jobs.may_wait_on_network(body):
        accepted = await run_in_threadpool(rate.around, submit)
    else:
        threads = ctx.settings.api_database_threads
        accepted = await in_database_thread(threads, rate.around, submit)
    note_log_fields(job_id=accepted.queue_id)
    return JSONResponse(accepted.to_json())


@router.post("/video/quote")
async def quote_video(request: Request) -> JSONResponse:
    """The USD price `/video/queue` would charge for this request shape: `{quote}`.

    No key is needed, except for upscale models (Bearer key; price from `input_height` or
    `video_url`, and the duration in seconds).
    """
    body = await json_object(request)
    ctx = context(request)
    now = ctx.clock.now()
    entry = requested_model(ctx.catalog, body, now=now)
    await admit_quote(request, entry, now)
    if quote_probes_source(entry, body):
        micros = await run_in_threadpool(ctx.jobs.quote, body)
    else:
        # Validation and arithmetic: cheaper on the event loop than a hop to a thread and back.
        micros = ctx.jobs.quote(body)
    return JSONResponse({"quote": micros_to_usd(micros)})


def job_reference(body: Mapping[str, Any], allowed: tuple[str, ...]) -> tuple[str, str]:
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


@router.post("/video/retrieve", response_model=None)
async def retrieve_video(request: Request, rate: RetrieveAdmission) -> Response:
    """Poll a job: JSON `{status: "PROCESSING", …}` while it runs, then the `video/mp4` bytes.

    Beside Venice's three fields, `PROCESSING` carries `progress` (0 to 1) and
    `queue_position` (jobs a worker takes before this one; null once it runs).

    A job queued with a `download_url` answers JSON `{status: "COMPLETED", …}` instead of
    the bytes: fetch them from the link.
    """
    body = await json_object(request)
    model, queue_id = await _job_reference(rate, body, RETRIEVE_KEYS)
    note_log_fields(job_id=queue_id)
    ctx = context(request)
    jobs = ctx.jobs
    delete_media = body.get("delete_media_on_completion") is True

    def retrieve(caller: Caller) -> Retrieved:
        return jobs.retrieve(caller.account_id, model, queue_id, delete_media=delete_media)

    result = await in_database_thread(ctx.settings.api_database_threads, rate.then, retrieve)
    if isinstance(result, Failed):
        status, error = venice_failure(result.failure)
        return JSONResponse(error, status_code=status)
    if isinstance(result, Pending):
        return JSONResponse(
            {
                "status": "PROCESSING",
                "average_execution_time": result.average_ms,
                "execution_duration": result.elapsed_ms,
                "progress": round(result.progress, 3),
                "queue_position": result.queue_position,
            }
        )
    if not isinstance(result, Ready):
        return JSONResponse(
            {
                "status": "COMPLETED",
                "average_execution_time": result.average_ms,
                "execution_duration": result.elapsed_ms,
            }
        )
    cleanup = None
    if result.delete_media:
        cleanup = BackgroundTask(run_in_threadpool, jobs.delete_media, result.job_id)
    try:
        return await mp4_response(
            jobs.storage,
            result.output_key,
            request.headers.get("range"),
            cleanup,
            offload=ctx.offload,
        )
    except ObjectNotFound:
        raise MediaNotFound() from None


@router.post("/video/complete")
async def complete_video(request: Request, rate: CompleteAdmission) -> JSONResponse:
    """Delete a job's stored media (cancelling it if still queued). Answers `{success: true}`."""
    model, queue_id = await _job_reference(rate, await json_object(request), COMPLETE_KEYS)
    note_log_fields(job_id=queue_id)
    jobs = context(request).jobs

    def complete(caller: Caller) -> None:
        jobs.complete(caller.account_id, model, queue_id)

    await run_in_threadpool(rate.then, complete)
    return JSONResponse({"success": True})


async def _job_reference(
    rate: RateCount, body: Mapping[str, Any], allowed: tuple[str, ...]
) -> tuple[str, str]:
    """`job_reference`, its 400 answered only after the request is admitted (a 401 or 429
    comes first, and the 400 is counted)."""
    try:
        return job_reference(body, allowed)
    except InvalidParameters:
        await run_in_threadpool(rate.admit_caller)
        raise
