"""`GET /models`: the catalogue in Venice's list shape."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.context import context
from videoqueue.catalog.listing import model_list

router = APIRouter(tags=["Models"])


@router.get("/models")
async def list_models(request: Request, type: str = "text") -> JSONResponse:
    """The models this server offers, in Venice's shape. videoqueue serves video models
    (`?type=video` or `?type=all`); `model_spec.videoqueue.engine` names what serves each."""
    ctx = context(request)
    return JSONResponse(model_list(ctx.catalog, type, ctx.clock.now()))
