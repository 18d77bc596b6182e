"""`GET`, `HEAD` and `DELETE /v1/share/read/<token>`: a private model's `download_url`.

The signed token is the only credential: no `Authorization` header is needed or read.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from videoqueue.api.context import AppContext, context
from videoqueue.api.mp4 import mp4_response, storage_redirect
from videoqueue.delivery.links import (
    PRIVATE_HEADERS,
    SHARE_READ_PATH,
    Fetch,
    MediaNotReady,
    MediaUnavailable,
    admit_fetch,
    revoke_link,
    verify_token,
)
from videoqueue.storage.base import ObjectNotFound

router = APIRouter(tags=["Private downloads"])


def _admit(ctx: AppContext, token: str, serves_bytes: bool = True) -> Fetch:
    """The admitted fetch of a link whose video is ready, or the `LinkError` saying why not."""
    claims = verify_token(ctx.links.signer, token)
    with ctx.db.transaction() as session:
        fetch = admit_fetch(
            session, claims, ctx.links.policy, now=ctx.clock.now(), serves_bytes=serves_bytes
        )
    if fetch.output_key is None:
        raise MediaNotReady()
    return fetch


def _serves_last_byte(response: Response) -> bool:
    if response.status_code != 206:
        return True
    span, _, size = response.headers["content-range"].partition("/")  # "bytes 0-99/1000"
    return span.rpartition("-")[2] == str(int(size) - 1)


@router.get(SHARE_READ_PATH + "/{token}", response_model=None)
async def read_share(token: str, request: Request) -> Response:
    """Download a private model's finished MP4 from its `download_url` (no API key).

    Honours `Range`, so an interrupted download can resume. Answers 404 before the video is
    ready and for an unknown link, 410 once the link has expired, been used up or revoked,
    and 429 with `Retry-After` when fetched too often. A server set to redirect answers 307 to
    a short-lived storage URL that serves the same bytes (and honours `Range` too).
    """
    ctx = context(request)
    fetch = await run_in_threadpool(_admit, ctx, token)
    assert fetch.output_key is not None
    job_id = fetch.job_id
    # Deleting once downloaded needs the last byte to pass through here: such links stream.
    if not fetch.delete_after_download:
        redirect = await storage_redirect(
            ctx, fetch.output_key, PRIVATE_HEADERS, filename=f"{job_id}.mp4"
        )
        if redirect is not None:
            return redirect
    response: Response | None = None

    async def delete_once_sent() -> None:  # not after a dropped download: it may resume
        if response is not None and _serves_last_byte(response):
            await run_in_threadpool(ctx.jobs.delete_media, job_id)

    headers = {
        **PRIVATE_HEADERS,
        "Content-Disposition": f'attachment; filename="{job_id}.mp4"',
    }
    try:
        response = await mp4_response(
            ctx.storage,
            fetch.output_key,
            request.headers.get("range"),
            headers=headers,
            offload=ctx.offload,
            on_sent=delete_once_sent if fetch.delete_after_download else None,
        )
    except ObjectNotFound:
        raise MediaUnavailable() from None
    return response


@router.head(SHARE_READ_PATH + "/{token}", response_model=None)
async def inspect_share(token: str, request: Request) -> Response:
    """What a GET of the link would answer (status, size, type), without using up a fetch."""
    ctx = context(request)
    fetch = await run_in_threadpool(_admit, ctx, token, False)
    assert fetch.output_key is not None
    try:
        size = await run_in_threadpool(ctx.storage.size, fetch.output_key)
    except ObjectNotFound:
        raise MediaUnavailable() from None
    headers = {**PRIVATE_HEADERS, "Accept-Ranges": "bytes", "Content-Length": str(size)}
    return Response(status_code=200, media_type="video/mp4", headers=headers)


def _revoke(ctx: AppContext, token: str) -> str:
    claims = verify_token(ctx.links.signer, token)
    with ctx.db.transaction() as session:
        return revoke_link(session, claims, now=ctx.clock.now()).job_id


@router.delete(SHARE_READ_PATH + "/{token}")
async def revoke_share(token: str, request: Request) -> JSONResponse:
    """Revoke a `download_url` (no API key); every later GET answers 410.

    Unless the operator keeps media (`download_link_delete_media = false`), the video is
    deleted too, and a job still running is cancelled. Revoking again is harmless.
    """
    ctx = context(request)
    job_id = await run_in_threadpool(_revoke, ctx, token)
    if ctx.settings.download_link_delete_media:
        await run_in_threadpool(ctx.jobs.discard, job_id)
    return JSONResponse({"success": True}, headers=PRIVATE_HEADERS)
