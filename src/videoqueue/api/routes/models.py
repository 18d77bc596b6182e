"""`GET /models`: the catalogue in Venice's list shape."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.context import context
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.catalog.listing import model_entry

router = APIRouter(tags=["Models"])

MODEL_TYPES = ("asr", "embedding", "image", "music", "text", "tts", "upscale", "inpaint",
               "video", "all", "code")


@router.get("/models")
async def list_models(request: Request, type: str = "text") -> JSONResponse:  # noqa: A002
    """The models this server offers. videoqueue serves video models: `?type=video`."""
    if type not in MODEL_TYPES:
        raise InvalidParameters([iss.not_in_enum(("type",), MODEL_TYPES, type)])
    ctx = context(request)
    data = [model_entry(m) for m in ctx.catalog.listed()] if type in ("video", "all") else []
    return JSONResponse({"object": "list", "type": type, "data": data})
