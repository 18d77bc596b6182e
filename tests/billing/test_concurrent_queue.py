"""Many clients racing one account's balance through a real server: no job is created that
was not paid for, and no payment is taken without its job (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.accounts import (
    BODY,
    assert_books_balance,
    balance,
    job_count,
    live_server,
    money_settings,
    price_micros,
    rows,
)
from tests.conftest import Env, build_env
from videoqueue.billing.models import LedgerKind

CLIENTS = 100
AFFORDABLE = 10
INSUFFICIENT = {
    "error": "Insufficient USD or Diem balance to complete request. "
    "Visit https://venice.ai/settings/api to add credits."
}


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    # Limits far above the burst: this test is about money, not about rate limiting.
    settings = money_settings(
        tmp_path, database_url, queue_requests_per_minute=10_000, failed_requests_budget=10_000
    )
    yield from build_env(settings)


def _race(
    base_url: str, key: str, bodies: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    start = threading.Barrier(len(bodies))

    def one(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=120) as client:
            start.wait()
            return client.post(
                "/video/queue",
                json=body,
                headers={"Authorization": f"Bearer {key}", **(headers or {})},
            )

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_a_hundred_racing_requests_buy_exactly_what_the_balance_covers(env: Env) -> None:
    price = price_micros(env)
    account = env.make_account(f"{price * AFFORDABLE / 1_000_000:.6f}")
    key = env.make_key(account)
    bodies = [{**BODY, "prompt": f"kite number {i}"} for i in range(CLIENTS)]

    with live_server(env.client.app) as base_url:
        responses = _race(base_url, key, bodies)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: AFFORDABLE, 402: CLIENTS - AFFORDABLE}, statuses
    assert all(r.json() == INSUFFICIENT for r in responses if r.status_code == 402)
    queued = {r.json()["queue_id"] for r in responses if r.status_code == 200}
    assert len(queued) == AFFORDABLE
    assert job_count(env, account) == AFFORDABLE
    assert balance(env, account) == 0
    charges = rows(env, account, LedgerKind.CHARGE)
    assert {c.job_id for c in charges} == queued
    assert all(c.amount_micros == -price for c in charges)
    assert_books_balance(env)


def test_racing_retries_with_one_idempotency_key_make_one_job(env: Env) -> None:
    price = price_micros(env)
    # Enough for one job only: a retry that lost the race must replay, not be told 402.
    account = env.make_account(f"{price / 1_000_000:.6f}")
    key = env.make_key(account)

    with live_server(env.client.app) as base_url:
        responses = _race(
            base_url, key, [dict(BODY) for _ in range(20)], headers={"Idempotency-Key": "order-42"}
        )

    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    assert len({r.json()["queue_id"] for r in responses}) == 1
    assert job_count(env, account) == 1
    assert balance(env, account) == 0
    assert_books_balance(env)
