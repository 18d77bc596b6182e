"""`/video/queue`, `/video/quote`, `/video/retrieve`, `/video/complete`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from videoqueue.api.auth import Caller
from videoqueue.api.body import json_object
from videoqueue.api.context import AppContext, context
from videoqueue.api.limits import CompleteCaller, QueueCaller, RetrieveCaller
from videoqueue.api.links import completed_by_link, issue_download_url
from videoqueue.api.model_access import admit_quote
from videoqueue.api.mp4 import mp4_response
from videoqueue.auth.keys import key_budget
from videoqueue.billing.ledger import lock_account, refund
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.catalog.pricing import micros_to_usd, price_micros
from videoqueue.catalog.validation import requested_model, validate_queue, validate_quote
from videoqueue.consent.flow import require_consent
from videoqueue.delivery.store import revoke_job_links
from videoqueue.jobs import store
from videoqueue.jobs.content_policy import check_prompt
from videoqueue.jobs.idempotency import IdempotencyKeyTaken, IdempotentRequest
from videoqueue.jobs.media_intake import media_intake, probe_source
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState
from videoqueue.jobs.submit import enqueue, job_prefix, prepare_job
from videoqueue.storage.base import ObjectNotFound

router = APIRouter(tags=["Video"])

RETRIEVE_KEYS = ("model", "queue_id", "delete_media_on_completion")
COMPLETE_KEYS = ("model", "queue_id")


@router.post("/video/queue")
async def queue_video(request: Request, caller: QueueCaller) -> JSONResponse:
    """Queue a video generation. Answers `{model, queue_id}`; poll `/video/retrieve` with both.

    Private models also answer a `download_url`, given only here: a pre-signed link (no API
    key) from which the finished MP4 is fetched, and which `DELETE` revokes.

    An optional `Idempotency-Key` header makes retrying safe: the same key with the same body
    within 24 h answers the first request's `queue_id` and is charged once; the same key
    with another body is answered 409.
    """
    body = await json_object(request)
    ctx = context(request)
    idempotency = IdempotentRequest.from_header(
        request.headers.get("idempotency-key"),
        account_id=caller.account_id,
        body=body,
        ttl_seconds=ctx.settings.idempotency_ttl_seconds,
    )
    result = await run_in_threadpool(_queue, ctx, caller, body, idempotency)
    return JSONResponse(result)


def _queue(
    ctx: AppContext,
    caller: Caller,
    body: dict[str, Any],
    idempotency: IdempotentRequest | None = None,
) -> dict[str, Any]:
    if idempotency is not None and (replay := idempotency.replay(ctx.db, ctx.clock)):
        return replay
    video = validate_queue(ctx.catalog, body, now=ctx.clock.now())
    entry = ctx.catalog.get(video.model)
    check_prompt(video.prompt, ctx.settings.content_policy_rules)
    load, inspector = media_intake(ctx.settings, entry, ctx.catalog.family(entry), ctx.sandbox)
    prepared = prepare_job(video, entry, storage=ctx.storage, load=load, inspector=inspector)
    download_url = None
    try:
        with ctx.db.transaction() as session:
            # The payer's row is locked before any row referencing it is written (deadlock-free).
            lock_account(session, caller.account_id)
            claim = idempotency.claim(session, ctx.clock) if idempotency else None
            # The consent decision comes before the charge: a 409 costs nothing (spec §11.2).
            require_consent(
                session,
                account_id=caller.account_id,
                model=entry.id,
                facts=prepared.media,
                consents=video.options.get("consents"),
                clock=ctx.clock,
            )
            job = enqueue(
                session,
                prepared,
                account_id=caller.account_id,
                clock=ctx.clock,
                max_attempts=ctx.settings.max_attempts,
                key=key_budget(session, caller.key_id),
            )
            if entry.delivery == "download_url":
                download_url = issue_download_url(ctx, session, job.id)
            result = {"model": entry.id, "queue_id": job.id}
            if download_url is not None:
                result["download_url"] = download_url
            if claim is not None:
                IdempotentRequest.remember(claim, result)
    except IdempotencyKeyTaken:
        ctx.storage.delete_prefix(job_prefix(prepared.job_id))
        assert idempotency is not None
        return idempotency.replay_after_race(ctx.db, ctx.clock)
    except BaseException:
        ctx.storage.delete_prefix(job_prefix(prepared.job_id))
        raise
    return result


@router.post("/video/quote")
async def quote_video(request: Request) -> JSONResponse:
    """The USD price `/video/queue` would charge for this request shape: `{quote}`.

    No key is needed, except for upscale models (Bearer key; price from `input_height` or
    `video_url`, and the duration in seconds).
    """
    body = await json_object(request)
    ctx = context(request)
    now = ctx.clock.now()
    await admit_quote(request, requested_model(ctx.catalog, body, now=now), now)
    video = validate_quote(ctx.catalog, body, now=now)
    entry = ctx.catalog.get(video.model)
    source = None
    if entry.upscale is not None and isinstance(body.get("video_url"), str):
        source = await run_in_threadpool(
            probe_source,
            ctx.settings,
            entry,
            ctx.catalog.family(entry),
            video,
            body["video_url"],
            ctx.sandbox,
        )
    micros = price_micros(entry, video, source)
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
        average = store.average_execution_ms(
            session, job.model, ctx.settings.default_average_execution_ms
        )
    return {
        "status": "PROCESSING",
        "average_execution_time": average,
        "execution_duration": _elapsed_ms(ctx, job.created_at),
    }


def delete_job_media(ctx: AppContext, job_id: str) -> None:
    """Remove a finished job's stored files, mark it DELETED and revoke its links (idempotent)."""
    ctx.storage.delete_prefix(job_prefix(job_id))
    with ctx.db.transaction() as session:
        job = store.get_job_for_update(session, job_id)
        if job is not None and job.state not in (JobState.DELETED, JobState.EXPIRED):
            store.mark_media_deleted(job, clock=ctx.clock)
        revoke_job_links(session, job_id, now=ctx.clock.now())


@router.post("/video/retrieve", response_model=None)
async def retrieve_video(request: Request, caller: RetrieveCaller) -> Response:
    """Poll a job: JSON `{status: "PROCESSING", …}` while it runs, then the `video/mp4` bytes.

    A job queued with a `download_url` answers JSON `{status: "COMPLETED", …}` instead of
    the bytes: fetch them from the link.
    """
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
    delete_media = body.get("delete_media_on_completion") is True
    linked = await run_in_threadpool(completed_by_link, ctx, job, delete_media=delete_media)
    if linked is not None:
        return JSONResponse(linked)
    cleanup = None
    if delete_media:
        cleanup = BackgroundTask(run_in_threadpool, delete_job_media, ctx, job.id)
    try:
        return mp4_response(ctx.storage, job.output_key, request.headers.get("range"), cleanup)
    except ObjectNotFound:
        raise MediaNotFound() from None


def discard_job(ctx: AppContext, job_id: str) -> None:
    """Cancel the job if still pending (refunded if it never started), then delete its media."""
    with ctx.db.transaction() as session:
        locked_job = store.get_job_for_update(session, job_id)
        if locked_job is not None and store.is_pending(locked_job):
            was_queued = locked_job.state == JobState.QUEUED
            store.cancel_job(locked_job, clock=ctx.clock)
            if was_queued:
                refund(session, job_id=job_id, clock=ctx.clock, note="cancelled before it started")
    delete_job_media(ctx, job_id)


def _complete(ctx: AppContext, caller: Caller, model: str, queue_id: str) -> None:
    discard_job(ctx, _find_job(ctx, caller, model, queue_id).id)


@router.post("/video/complete")
async def complete_video(request: Request, caller: CompleteCaller) -> JSONResponse:
    """Delete a job's stored media (cancelling it if still queued). Answers `{success: true}`."""
    body = await json_object(request)
    model, queue_id = _job_reference(body, COMPLETE_KEYS)
    await run_in_threadpool(_complete, context(request), caller, model, queue_id)
    return JSONResponse({"success": True})
