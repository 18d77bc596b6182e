"""`/billing/balance`, `/billing/usage` and `/billing/usage-history` read an account's money
back from its ledger, in Venice's shapes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts import BODY, money_settings, price_micros
from tests.conftest import Env, build_env
from videoqueue.billing.ledger import refund
from videoqueue.clock import ManualClock


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    settings = money_settings(tmp_path, queue_requests_per_minute=1000)
    yield from build_env(settings, clock=clock)


def _get(env: Env, path: str, key: str, **params: Any) -> Any:
    return env.client.get(
        f"/api/v1{path}", params=params, headers={"Authorization": f"Bearer {key}"}
    )


def _spend(env: Env, clock: ManualClock, jobs: int, refunded: int = 0) -> tuple[str, list[str]]:
    """An account with an ADMIN key that queued `jobs` jobs a second apart, the first
    `refunded` of them refunded; returns the key and the queue ids."""
    admin = env.make_key(env.make_account("100"), admin=True)
    queue_ids = []
    for _ in range(jobs):
        queue_ids.append(env.post("/video/queue", BODY, admin).json()["queue_id"])
        clock.advance(1)
    with env.db.transaction() as session:
        for queue_id in queue_ids[:refunded]:
            refund(session, job_id=queue_id, clock=clock, note="engine failed")
    return admin, queue_ids


def test_balance_is_the_ledger_sum_in_venices_shape(env: Env, clock: ManualClock) -> None:
    admin, _ = _spend(env, clock, jobs=2)
    expected = round(100 - 2 * price_micros(env) / 1_000_000, 6)
    assert _get(env, "/billing/balance", admin).json() == {
        "canConsume": True,
        "consumptionCurrency": "USD",
        "balances": {"diem": None, "usd": expected},
        "diemEpochAllocation": 0,
    }
    empty = env.make_key(env.make_account("0"), admin=True)
    assert _get(env, "/billing/balance", empty).json() == {
        "canConsume": False,
        "consumptionCurrency": None,
        "balances": {"diem": None, "usd": 0.0},
        "diemEpochAllocation": 0,
    }


def test_usage_lists_charges_and_refunds_newest_first_a_page_at_a_time(
    env: Env, clock: ManualClock
) -> None:
    admin, queue_ids = _spend(env, clock, jobs=3, refunded=1)
    price = price_micros(env) / 1_000_000
    body = _get(env, "/billing/usage", admin).json()
    assert body["pagination"] == {"limit": 200, "page": 1, "total": 4, "totalPages": 1}
    entries = body["data"]
    assert [(e["amount"], e["inferenceDetails"]["requestId"]) for e in entries] == [
        (price, queue_ids[0]),
        (-price, queue_ids[2]),
        (-price, queue_ids[1]),
        (-price, queue_ids[0]),
    ]
    charge = entries[1]
    assert set(charge) == {
        "amount",
        "currency",
        "inferenceDetails",
        "notes",
        "pricePerUnitUsd",
        "sku",
        "timestamp",
        "units",
    }
    assert (
        charge["currency"],
        charge["notes"],
        charge["units"],
        charge["pricePerUnitUsd"],
        charge["sku"],
    ) == ("USD", "API Inference", 1, price, f"{BODY['model']}-video-unit")
    assert entries[0]["notes"] == "Refund: engine failed"
    assert charge["timestamp"].endswith("Z")

    page = _get(env, "/billing/usage", admin, limit=3, page=2, sortOrder="asc").json()
    assert page["pagination"] == {"limit": 3, "page": 2, "total": 4, "totalPages": 2}
    assert page["data"] == [entries[0]]
    assert _get(env, "/billing/usage", admin, currency="DIEM").json()["data"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"page": "0"},
        {"sortOrder": "sideways"},
        {"startDate": "yesterday"},
        {"currency": "EUR"},
    ],
)
def test_usage_rejects_bad_parameters_with_a_detailed_400(env: Env, params: dict[str, str]) -> None:
    response = _get(env, "/billing/usage", env.admin_key, **params)
    assert response.status_code == 400
    assert [i["path"] for i in response.json()["issues"]] == [[next(iter(params))]]


def test_usage_history_walks_every_entry_once_with_its_cursor(env: Env, clock: ManualClock) -> None:
    admin, queue_ids = _spend(env, clock, jobs=12)
    first = _get(env, "/billing/usage-history", admin, pageSize=10).json()
    assert len(first["data"]) == 10 and first["nextCursor"]
    queue_ids.append(env.post("/video/queue", BODY, admin).json()["queue_id"])  # mid-walk
    second = _get(env, "/billing/usage-history", admin, cursor=first["nextCursor"]).json()
    assert second["nextCursor"] is None
    walked = [e["inferenceDetails"]["requestId"] for e in first["data"] + second["data"]]
    assert walked == queue_ids, "ascending, no gaps, no repeats"


def test_usage_history_refuses_a_cursor_with_filters_or_from_someone_else(
    env: Env, clock: ManualClock
) -> None:
    admin, _ = _spend(env, clock, jobs=11)
    cursor = _get(env, "/billing/usage-history", admin, pageSize=10).json()["nextCursor"]
    assert _get(env, "/billing/usage-history", admin, cursor=cursor, pageSize=10).status_code == 400
    assert _get(env, "/billing/usage-history", admin, cursor="not-a-cursor").status_code == 400
    nested = base64.urlsafe_b64encode(b"[" * 10_000).decode()  # past the recursion limit
    assert _get(env, "/billing/usage-history", admin, cursor=nested).status_code == 400
    other = env.make_key(env.make_account("1"), admin=True)
    assert _get(env, "/billing/usage-history", other, cursor=cursor).status_code == 400
