"""OpenAI's videos API (`/v1/videos`, as the openai SDK's `client.videos` calls it) over the
same jobs service, keys, balances, limits and catalogue as Venice's routes: parse, call the
service, render in OpenAI's shapes. A job queued through either API reads through both."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from videoqueue.api.auth import Caller, KeySecret, api_key_credentials, bearer_secret
from videoqueue.api.context import context
from videoqueue.api.idempotency import idempotency_key
from videoqueue.api.limits import RateCount, admission, rate_limited
from videoqueue.api.mp4 import mp4_response
from videoqueue.api.openai_request import InvalidVideoRequest, read_create, venice_body
from videoqueue.api.openai_shape import deleted, video_list, video_object
from videoqueue.auth.keys import AuthenticationFailed
from videoqueue.errors import VideoqueueError
from videoqueue.jobs.service import (
    Accepted,
    Failed,
    MediaNotFound,
    PayingCaller,
    Pending,
    Ready,
)
from videoqueue.jobs.views import JobView, list_job_views, view_job
from videoqueue.logs import note_log_fields
from videoqueue.media.previews import spritesheet, thumbnail
from videoqueue.media.sandbox import DecodeSandbox
from videoqueue.storage.base import ObjectNotFound, Storage

router = APIRouter(tags=["OpenAI videos"])

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MakeStill = Callable[[Path], bytes]
STILLS: dict[str, tuple[MakeStill, str]] = {
    "thumbnail": (thumbnail, "image/webp"),
    "spritesheet": (spritesheet, "image/jpeg"),
}


class VideoNotReady(VideoqueueError):
    """The video has no content to download"""

    status = 400
    code = "video_not_ready"


class VideoNotFound(MediaNotFound):
    def __init__(self, video_id: str) -> None:
        super().__init__(f"No video found with id '{video_id}'", code="video_not_found")


async def _view(request: Request, caller: Caller, video_id: str) -> JobView:
    note_log_fields(job_id=video_id)  # the request line logs the route, not the id
    try:
        return await run_in_threadpool(view_job, context(request).db, caller.account_id, video_id)
    except MediaNotFound:
        raise VideoNotFound(video_id) from None


async def require_key(request: Request) -> KeySecret:
    """A Bearer key; no key at all is a 401, as OpenAI answers it."""
    if bearer_secret(request) is None:
        raise AuthenticationFailed(
            "Missing API key: send it in the Authorization header as 'Bearer <key>'"
        )
    return api_key_credentials(request)


async def created_model(request: Request) -> object:
    """The catalogue id a create request's `model` stands for (an alias resolved)."""
    ctx = context(request)
    name = (await read_create(request)).model
    entry = ctx.catalog.resolve(name, ctx.clock.now())
    return entry.id if entry is not None else name


async def no_model(_request: Request) -> object:
    return None  # reads name no model: they share one limit per key


CreateAdmission = Annotated[
    RateCount, Depends(admission("queue", authenticate=require_key, named_model=created_model))
]
ReadCaller = Annotated[
    Caller, Depends(rate_limited("retrieve", authenticate=require_key, named_model=no_model))
]
DeleteCaller = Annotated[
    Caller, Depends(rate_limited("complete", authenticate=require_key, named_model=no_model))
]


@router.post("/videos")
async def create_video(request: Request, rate: CreateAdmission) -> JSONResponse:
    """Queue a video: JSON or multipart `model`, `prompt`, `seconds`, `size` and an optional
    `input_reference` (an uploaded image or `{"image_url"}`, the first frame). Answers the
    video object, `status: "queued"`. Charged the catalogue's quote; `Idempotency-Key` makes
    a retry safe as on `/video/queue`."""
    ctx = context(request)
    try:
        form = await read_create(request)
    except Exception:
        await run_in_threadpool(rate.before_refusal)
        raise

    def submit(caller: PayingCaller) -> Accepted:
        body = venice_body(form, ctx.catalog, ctx.clock.now())
        return ctx.jobs.submit(body, caller, idempotency_key(request, body))

    accepted = await run_in_threadpool(rate.around, submit)
    caller = rate.admitted
    view = await run_in_threadpool(view_job, ctx.db, caller.account_id, accepted.queue_id)
    answer = video_object(view, retention=ctx.jobs.terms.retention)
    if accepted.download_url is not None:
        answer["download_url"] = accepted.download_url
    return JSONResponse(answer)


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidVideoRequest(f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
    return int(text)


@router.get("/videos")
async def list_videos(request: Request, caller: ReadCaller) -> JSONResponse:
    """The account's videos whose media is kept, newest first (`order=asc` for oldest):
    `limit` (1-100, default 20) per page, the next page `after` the last id."""
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidVideoRequest("order must be 'asc' or 'desc'", "order")
    ctx = context(request)
    page = await run_in_threadpool(
        list_job_views,
        ctx.db,
        caller.account_id,
        after=query.get("after"),
        limit=_limit(query.get("limit")),
        descending=order == "desc",
    )
    return JSONResponse(video_list(page, retention=ctx.jobs.terms.retention))


@router.get("/videos/{video_id}")
async def retrieve_video(request: Request, video_id: str, caller: ReadCaller) -> JSONResponse:
    """The video object: its status, progress (0-100) and, once failed, its error."""
    view = await _view(request, caller, video_id)
    return JSONResponse(video_object(view, retention=context(request).jobs.terms.retention))


@router.delete("/videos/{video_id}")
async def delete_video(request: Request, video_id: str, caller: DeleteCaller) -> JSONResponse:
    """Delete the video's media (cancelling it, refunded, if it has not started), as
    `/video/complete` does."""
    ctx = context(request)
    view = await _view(request, caller, video_id)
    await run_in_threadpool(ctx.jobs.complete, caller.account_id, view.model, video_id)
    return JSONResponse(deleted(video_id))


@router.get("/videos/{video_id}/content", response_model=None)
async def video_content(request: Request, video_id: str, caller: ReadCaller) -> Response:
    """The finished MP4 (`variant=video`, the default; `Range` honoured), or a still made from
    it: `thumbnail` (WebP, a frame at the video's size) or `spritesheet` (JPEG, a grid of
    frames)."""
    variant = request.query_params.get("variant", "video")
    if variant != "video" and variant not in STILLS:
        raise InvalidVideoRequest(
            "variant must be 'video', 'thumbnail' or 'spritesheet'", "variant"
        )
    ctx = context(request)
    view = await _view(request, caller, video_id)
    result = await run_in_threadpool(ctx.jobs.retrieve, caller.account_id, view.model, video_id)
    if isinstance(result, Failed):
        raise VideoNotReady("The video failed: it has no content")
    if isinstance(result, Pending):
        raise VideoNotReady("The video is not finished yet: poll it until status is completed")
    if not isinstance(result, Ready):
        raise VideoNotReady("This model's videos are served only at their download_url")
    try:
        if variant == "video":
            range_header = request.headers.get("range")
            return await mp4_response(
                ctx.storage, result.output_key, range_header, offload=ctx.offload
            )
        make, media_type = STILLS[variant]
        image = await run_in_threadpool(_still, ctx.storage, ctx.sandbox, result.output_key, make)
    except ObjectNotFound:
        raise MediaNotFound() from None
    return Response(image, media_type=media_type)


def _still(storage: Storage, sandbox: DecodeSandbox, key: str, make: MakeStill) -> bytes:
    """`make` run on a local copy of the MP4 at `key`, in a decoder process."""
    with tempfile.TemporaryDirectory(prefix="videoqueue-still-") as folder:
        video = Path(folder) / "video.mp4"
        storage.fetch_to(key, video)
        return sandbox.run("video", make, video)
