"""Fixtures for tests that send a whole table of requests through one app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog.cases import spec_day_clock, table_settings
from tests.conftest import Env, build_env


@pytest.fixture(scope="module")
def table_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One app per test module, its rate limits lifted (each case is one stateless request),
    on a day when every catalogue model is offered."""
    data_dir: Path = tmp_path_factory.mktemp("table") / "data"
    yield from build_env(table_settings(data_dir), spec_day_clock())


@pytest.fixture(scope="module")
def table_key(table_env: Env) -> str:
    return table_env.make_key(balance_usd=1_000_000)
