"""The app served by a real uvicorn on 127.0.0.1, with or without a worker behind it, and the
same app as a Venice server looks to the client: without videoqueue's own job routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.accounts import live_server
from tests.conftest import Env
from videoqueue.workers import Supervisor

VIDEOQUEUE_ONLY = ("/api/v1/video/jobs", "/api/v1/video/cancel")
MISSING: dict[str, Response] = {
    # The spec does not document Venice's body for a path it lacks: a plausible JSON one,
    # FastAPI's default, and a plain-text 405.
    "json-404": JSONResponse({"error": "Not Found"}, status_code=404),
    "fastapi-404": JSONResponse({"detail": "Not Found"}, status_code=404),
    "405": PlainTextResponse("Method Not Allowed", status_code=405),
}


class RequestLog:
    """The app, noting each HTTP request as it arrives: `"GET /api/v1/video/jobs"`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lines: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.lines.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@pytest.fixture
def api_requests(env: Env) -> RequestLog:
    """What reached the server at `api_url`."""
    return RequestLog(env.client.app)


@pytest.fixture
def api_url(api_requests: RequestLog) -> Iterator[str]:
    """The base URL (`…/api/v1`) of the test's app, no worker running."""
    with live_server(api_requests) as base:
        yield base


@pytest.fixture
def base_url(api_url: str, workers: Supervisor) -> str:
    """The base URL of the test's app with one real worker rendering its jobs."""
    return api_url


class WithoutJobRoutes:
    """The app, except that `/video/jobs` (and the paths below it) and `/video/cancel` do not
    exist, as on Venice: they answer `missing`."""

    def __init__(self, app: ASGIApp, missing: Response) -> None:
        self.app = app
        self.missing = missing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not any(path == route or path.startswith(f"{route}/") for route in VIDEOQUEUE_ONLY):
            await self.app(scope, receive, send)
            return
        await self.missing(scope, receive, send)


@pytest.fixture(params=list(MISSING))
def venice_url(env: Env, request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL of the test's app without videoqueue's job routes (answering each of
    `MISSING` in turn), no worker running."""
    with live_server(WithoutJobRoutes(env.client.app, MISSING[request.param])) as base:
        yield base
