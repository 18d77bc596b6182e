"""`GET /v1/share/input/<token>`: a running job's input, fetched by the upstream server the
job was forwarded to (the `venice` engine's `media=urls`).

The signed token is the only credential: no `Authorization` header is needed or read.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from videoqueue.api.context import AppContext, context
from videoqueue.api.mp4 import mp4_response, storage_redirect
from videoqueue.delivery.inputs import INPUT_READ_PATH, admit_input
from videoqueue.delivery.links import PRIVATE_HEADERS, MediaUnavailable, verify_token
from videoqueue.engines.data_urls import media_type
from videoqueue.storage.base import ObjectNotFound, Storage

router = APIRouter(tags=["Private downloads"])

SNIFFED_BYTES = 16
"""How many first bytes of an input tell its type (`data_urls.SIGNATURES`)."""


def _admit(ctx: AppContext, token: str) -> str:
    """The storage key the link serves now, or the `LinkError` saying why not."""
    claims = verify_token(ctx.inputs.signer, token)
    with ctx.db.read() as session:
        return admit_input(session, claims, now=ctx.clock.now())


def _media_type(storage: Storage, key: str) -> str:
    """The input's type, read from its first bytes (inputs are stored under their hash)."""
    return media_type(b"".join(storage.read_range(key, 0, SNIFFED_BYTES - 1)))


@router.get(INPUT_READ_PATH + "/{token}", response_model=None)
async def read_input(token: str, request: Request) -> Response:
    """Download a job's input from a link its engine sent upstream (no API key).

    Serves only while the job is queued or running, and until the link's expiry; honours
    `Range`. Answers 404 for an unknown or altered link and once the job has ended, 410 once
    the link has expired. A server set to redirect answers 307 to a short-lived storage URL
    that serves the same bytes.
    """
    ctx = context(request)
    key = await run_in_threadpool(_admit, ctx, token)
    redirect = await storage_redirect(ctx, key, PRIVATE_HEADERS)
    if redirect is not None:
        return redirect
    try:
        kind = await run_in_threadpool(_media_type, ctx.storage, key)
        return await mp4_response(
            ctx.storage,
            key,
            request.headers.get("range"),
            headers=PRIVATE_HEADERS,
            offload=ctx.offload,
            media_type=kind,
        )
    except ObjectNotFound:
        raise MediaUnavailable() from None
