"""The app served by a real uvicorn on 127.0.0.1, with or without a worker behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.accounts import live_server
from tests.conftest import Env
from videoqueue.workers import Supervisor


@pytest.fixture
def api_url(env: Env) -> Iterator[str]:
    """The base URL (`…/api/v1`) of the test's app, no worker running."""
    with live_server(env.client.app) as base:
        yield base


@pytest.fixture
def base_url(api_url: str, workers: Supervisor) -> str:
    """The base URL of the test's app with one real worker rendering its jobs."""
    return api_url
