"""The per-address limits of the x402 routes (spec §2.5, §2.6): top-up 10, balance 30 and
transactions 20 requests a minute from one client IP, counted in the database, so every API
process holds them together; past the limit a 429 with `Retry-After`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Env, build_env
from tests.wallets import wallet_settings
from videoqueue.api.app import create_app
from videoqueue.clock import ManualClock

WALLET = "0x" + "ab" * 20
TOP_UP = "/api/v1/x402/top-up"
BALANCE = f"/api/v1/x402/balance/{WALLET}"
TRANSACTIONS = f"/api/v1/x402/transactions/{WALLET}"
START = datetime(2026, 12, 1, 10, 0, 15, tzinfo=UTC)  # 45 s before the minute ends


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(wallet_settings(tmp_path), clock)


def send(client: TestClient, path: str) -> Any:  # an httpx (or, with openai, httpx2) Response
    return client.post(path, json={}) if path == TOP_UP else client.get(path)


@pytest.mark.parametrize(
    ("path", "limit", "answer", "refused"),
    [
        (
            TOP_UP,
            10,
            402,  # the payment requirements
            {
                "error": "X402_RATE_LIMIT_EXCEEDED",
                "message": "Too many top-up requests from this address; try again later",
            },
        ),
        (
            BALANCE,
            30,
            402,  # no sign-in
            {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"},
        ),
        (
            TRANSACTIONS,
            20,
            402,
            {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"},
        ),
    ],
)
def test_one_address_gets_its_limit_a_minute_then_429_with_retry_after(
    env: Env,
    clock: ManualClock,
    path: str,
    limit: int,
    answer: int,
    refused: dict[str, str],
) -> None:
    for _ in range(limit):
        assert send(env.client, path).status_code == answer
    response = send(env.client, path)
    assert (response.status_code, response.json()) == (429, refused)
    assert response.headers["retry-after"] == "45"

    with TestClient(create_app(env.settings, clock=clock)) as other_process:
        assert send(other_process, path).status_code == 429  # the count is in the database
    with TestClient(create_app(env.settings, clock=clock), client=("10.0.0.7", 4000)) as other:
        assert send(other, path).status_code == answer  # another address has its own

    clock.advance(45)  # the next minute
    assert send(env.client, path).status_code == answer


def test_the_routes_are_counted_apart(env: Env) -> None:
    for _ in range(10):
        send(env.client, TOP_UP)
    assert send(env.client, TOP_UP).status_code == 429
    assert send(env.client, BALANCE).status_code == 402
    assert send(env.client, TRANSACTIONS).status_code == 402
