"""Each request's id, log line and latency: the outermost middleware."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videoqueue import metrics
from videoqueue.logs import log_fields

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128


def request_id(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is short printable ASCII, else a new one."""
    given = Headers(scope=scope).get(REQUEST_ID_HEADER, "").strip()
    if 0 < len(given) <= MAX_REQUEST_ID_LENGTH and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template the request matched (`/v1/share/read/{token}`), never the raw path,
    so the metric's labels stay few; `unmatched` for a path no route takes."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return "unmatched"
    # The route knows its path within its router; the router's prefix (`/api/v1`, no
    # parameters) is what the raw path has before as many segments.
    segments = str(scope["path"]).split("/")
    return "/".join(segments[: len(segments) - template.count("/")]) + template


class RequestObserver:
    """Gives each HTTP request an id (answered in `X-Request-ID` and carried by every log
    record made while it runs), then logs it and times it to its response's start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
                seconds = time.perf_counter() - started
                route = route_template(scope)
                metrics.HTTP_REQUEST_SECONDS.labels(
                    method=scope["method"], route=route, status=str(status)
                ).observe(seconds)
                log.info("%s %s %d %.1f ms", scope["method"], route, status, seconds * 1000)
            await send(message)

        with log_fields(request_id=rid):
            await self.app(scope, receive, send_with_id)
