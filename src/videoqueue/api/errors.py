"""Every error answered in Venice's body shapes; nothing escapes as a traceback."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.errors import VideoqueueError

log = logging.getLogger(__name__)

HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VideoqueueError)
    async def _ours(_request: Request, exc: VideoqueueError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers() or None)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        message = HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            {"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex
        log.error(
            "request %s %s failed (id %s)",
            request.method,
            request.url.path,
            request_id,
            exc_info=exc,
        )
        return JSONResponse(
            {
                "error": "An unknown error occurred",
                "code": "UNKNOWN_ERROR",
                "request_id": request_id,
            },
            status_code=500,
        )
