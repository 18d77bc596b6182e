"""`GET /models`: the catalogue in Venice's list shape."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.context import context
from videoqueue.catalog.listing import model_list

router = APIRouter(tags=["Models"])


@router.get("/models")
async def list_models(request: Request, type: str = "text") -> JSONResponse:
    """The models this server offers, in Venice's shape. videoqueue serves video models
    (`?type=video` or `?type=all`); `model_spec.videoqueue.engine` names what serves each.
    `model_spec.offline` is true while no live worker has that engine ready: a job queued
    for such a model waits until one has."""
    ctx = context(request)
    ready = await run_in_threadpool(ctx.ready_engines.current)
    return JSONResponse(model_list(ctx.catalog, type, ctx.clock.now(), ready))
