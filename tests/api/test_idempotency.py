"""`Idempotency-Key` on `/video/queue`: a retried request gets the first answer and is charged
once; the same key with another body is a 409. (The race of many requests with one key is
in tests/billing/test_concurrent_queue.py, on both databases.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts import BODY, assert_books_balance, balance, job_count, money_settings
from tests.accounts import price_micros as quoted
from tests.conftest import Env, build_env
from videoqueue.billing.ledger import top_up
from videoqueue.clock import ManualClock


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(money_settings(tmp_path), clock=clock)


def _queue(env: Env, key: str, idempotency_key: str, body: dict[str, Any] = BODY) -> Any:
    return env.post("/video/queue", body, key, headers={"Idempotency-Key": idempotency_key})


def test_a_replay_answers_the_same_job_and_charges_once(env: Env) -> None:
    account = env.make_account("10")
    key = env.make_key(account)
    first = _queue(env, key, "retry-me")
    reordered = dict(reversed(list(BODY.items())))  # same body, keys in another order
    second = _queue(env, key, "retry-me", reordered)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert job_count(env, account) == 1
    assert balance(env, account) == 10_000_000 - quoted(env)
    assert_books_balance(env)


def test_the_same_key_with_another_body_is_409(env: Env) -> None:
    account = env.make_account("10")
    key = env.make_key(account)
    assert _queue(env, key, "k1").status_code == 200
    response = _queue(env, key, "k1", {**BODY, "prompt": "something else"})
    assert response.status_code == 409
    assert response.json() == {
        "error": "This Idempotency-Key was already used with a different request body. "
        "Use a new key for a new request.",
        "code": "IDEMPOTENCY_KEY_REUSED",
    }
    assert job_count(env, account) == 1


def test_keys_belong_to_one_account(env: Env) -> None:
    a, b = env.make_account("10"), env.make_account("10")
    first = _queue(env, env.make_key(a), "shared-name")
    second = _queue(env, env.make_key(b), "shared-name")
    assert first.json()["queue_id"] != second.json()["queue_id"]
    assert (job_count(env, a), job_count(env, b)) == (1, 1)


def test_a_key_is_remembered_for_24_hours(env: Env, clock: ManualClock) -> None:
    account = env.make_account("10")
    key = env.make_key(account)
    first = _queue(env, key, "daily").json()["queue_id"]
    clock.advance(24 * 3600 - 1)
    assert _queue(env, key, "daily").json()["queue_id"] == first
    clock.advance(2)
    later = _queue(env, key, "daily")
    assert later.status_code == 200 and later.json()["queue_id"] != first
    assert job_count(env, account) == 2


def test_a_refused_request_is_not_remembered(env: Env) -> None:
    account = env.make_account("0")
    key = env.make_key(account)
    assert _queue(env, key, "pay-later").status_code == 402
    with env.db.transaction() as session:
        top_up(session, account_id=account, micros=10_000_000, clock=ManualClock())
    assert _queue(env, key, "pay-later").status_code == 200
    assert job_count(env, account) == 1


def test_an_overlong_key_is_400(env: Env) -> None:
    response = _queue(env, env.make_key(), "k" * 256)
    assert response.status_code == 400
    assert response.json()["error"] == "Idempotency-Key must be 1 to 255 characters"
