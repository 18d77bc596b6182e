"""Every error answered in Venice's body shapes, or OpenAI's on the `/v1/videos` routes;
nothing escapes as a traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videoqueue.api.openai_shape import error_body, openai_error, speaks_openai
from videoqueue.errors import VideoqueueError

log = logging.getLogger(__name__)

HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed"}
UNKNOWN_ERROR = "An unknown error occurred"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VideoqueueError)
    async def _ours(request: Request, exc: VideoqueueError) -> JSONResponse:
        body = error_body(exc) if speaks_openai(request.url.path) else exc.body()
        return JSONResponse(body, status_code=exc.status, headers=exc.headers() or None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
        body: dict[str, Any] = {"error": message}
        if speaks_openai(request.url.path):
            body = openai_error(exc.status_code, message)
        return JSONResponse(
            body, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )


class UnexpectedErrors:
    """Answers an exception no handler took with the spec's 500, logged once with its request id.

    Outermost middleware: Starlette's own last resort re-raises after answering, and uvicorn then
    closes the connection, so a keep-alive client's next request would be reset.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise  # half a response is out: only closing the connection tells the client
            request_id = uuid.uuid4().hex
            log.error(
                "request %s %s failed (id %s)",
                scope["method"],
                scope["path"],
                request_id,
                exc_info=exc,
            )
            body: dict[str, Any] = {
                "error": UNKNOWN_ERROR,
                "code": "UNKNOWN_ERROR",
                "request_id": request_id,
            }
            if speaks_openai(scope["path"]):
                message = f"{UNKNOWN_ERROR} (request id {request_id})"
                body = openai_error(500, message, code="unknown_error")
            await JSONResponse(body, status_code=500)(scope, receive, send)
