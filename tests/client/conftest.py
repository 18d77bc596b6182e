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


@pytest.fixture
def api_url(env: Env) -> Iterator[str]:
    """The base URL (`…/api/v1`) of the test's app, no worker running."""
    with live_server(env.client.app) as base:
        yield base


@pytest.fixture
def base_url(api_url: str, workers: Supervisor) -> str:
    """The base URL of the test's app with one real worker rendering its jobs."""
    return api_url


class WithoutJobRoutes:
    """The app, except that `/video/jobs` and `/video/cancel` do not exist, as on Venice:
    they answer 404 with a JSON error (the spec does not document Venice's body for a path it
    lacks, so this is a plausible one) or, told so, 405 in plain text."""

    def __init__(self, app: ASGIApp, status: int = 404) -> None:
        self.app = app
        self.missing: Response = JSONResponse({"error": "Not Found"}, status_code=404)
        if status == 405:
            self.missing = PlainTextResponse("Method Not Allowed", status_code=405)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in VIDEOQUEUE_ONLY:
            await self.app(scope, receive, send)
            return
        await self.missing(scope, receive, send)


@pytest.fixture(params=[404, 405])
def venice_url(env: Env, request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL of the test's app without videoqueue's job routes (answering 404, then
    405), no worker running."""
    with live_server(WithoutJobRoutes(env.client.app, request.param)) as base:
        yield base
