"""Reading request bodies: JSON only, size-capped while streaming, Venice's messages."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videoqueue.api.openai_shape import error_body, speaks_openai
from videoqueue.catalog.issues import BadRequest
from videoqueue.errors import VideoqueueError


class PayloadTooLarge(VideoqueueError):
    """Request body exceeds the maximum allowed size."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"


PARSED_BODY = "json_body"


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 with Venice's plain messages.

    Parsed once per request: the rate-limit dependency reads the model from it before the route.
    """
    parsed = getattr(request.state, PARSED_BODY, None)
    if isinstance(parsed, dict):
        return parsed
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadRequest("'Content-Type' must be 'application/json'")
    raw = await request.body()
    try:
        body = json.loads(raw)
    # RecursionError: nesting deeper than Python's recursion limit.
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("Invalid JSON request") from None
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON request")
    setattr(request.state, PARSED_BODY, body)
    return body


class BodySizeLimit:
    """Refuses bodies over `max_bytes` with 413 before reading them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send, scope["path"])
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route's body read; the app's handler answers 413.
                    raise PayloadTooLarge()
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _reject(send: Send, path: str) -> None:
        error = PayloadTooLarge()
        payload = json.dumps(error_body(error) if speaks_openai(path) else error.body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
