"""An exception no handler expected: the spec's 500 body, logged once with its request id, and
the keep-alive connection it came on still serves the next request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.accounts import live_server
from tests.conftest import Env

BOOM = "/api/v1/test-only/boom"


class Boom(RuntimeError):
    """A failure no handler knows."""


@pytest.fixture
def app(env: Env) -> FastAPI:
    """The real app with one extra route that raises."""
    app = env.client.app
    assert isinstance(app, FastAPI)

    def boom() -> None:
        raise Boom("the route broke")

    app.add_api_route(BOOM, boom, methods=["GET"])
    return app


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The captured log, uvicorn's own records included (its logger does not propagate)."""
    server_logger = logging.getLogger("uvicorn")
    server_logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        server_logger.removeHandler(caplog.handler)


def _tracebacks(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in logs.records if record.exc_info]


def _assert_unknown_error(response: Any) -> str:  # httpx's, or TestClient's (httpx2 with openai)
    assert response.status_code == 500
    body = response.json()
    request_id = body.get("request_id")
    assert isinstance(request_id, str) and request_id
    assert body == {
        "error": "An unknown error occurred",
        "code": "UNKNOWN_ERROR",
        "request_id": request_id,
    }
    return request_id


def test_an_unexpected_error_is_the_spec_500_logged_once_with_its_request_id(
    app: FastAPI, env: Env, logs: pytest.LogCaptureFixture
) -> None:
    request_id = _assert_unknown_error(env.client.get(BOOM))
    with_traceback = _tracebacks(logs)
    assert len(with_traceback) == 1
    assert request_id in with_traceback[0].getMessage()
    exc_info = with_traceback[0].exc_info
    assert exc_info is not None and isinstance(exc_info[1], Boom)


def test_the_connection_of_a_500_serves_the_next_request(
    app: FastAPI, logs: pytest.LogCaptureFixture
) -> None:
    connects: list[str] = []

    def trace(event: str, _info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            connects.append(event)

    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        first = client.get("/test-only/boom", extensions={"trace": trace})
        second = client.get("/models", params={"type": "video"}, extensions={"trace": trace})
    request_id = _assert_unknown_error(first)
    assert second.status_code == 200
    assert len(connects) == 1, "the 500 closed the connection"
    assert [request_id in record.getMessage() for record in _tracebacks(logs)] == [True]
