"""`/api_keys*`: admin-only key management in Venice's shapes, and what keys may do — their
expiry, revocation and USD spend limits enforced on `/video/queue`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.accounts import (
    BODY,
    assert_books_balance,
    balance,
    job_count,
    make_key,
    money_settings,
    price_micros,
    rows,
)
from tests.conftest import Env, build_env
from videoqueue.billing.models import LedgerKind, LimitPeriod
from videoqueue.clock import ManualClock

ADMIN_ROUTES = [
    ("GET", "/api_keys"),
    ("POST", "/api_keys"),
    ("GET", "/api_keys/some-id"),
    ("DELETE", "/api_keys?id=some-id"),
    ("DELETE", "/api_keys/some-id"),
    ("GET", "/billing/balance"),
    ("GET", "/billing/usage"),
    ("GET", "/billing/usage-history"),
]
KEY_FIELDS = {
    "apiKeyType",
    "consumptionLimits",
    "limitPeriod",
    "modelPrivacy",
    "createdAt",
    "description",
    "expiresAt",
    "id",
    "last6Chars",
    "lastUsedAt",
    "usage",
}


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(money_settings(tmp_path), clock=clock)


def _call(
    env: Env, method: str, path: str, key: str | None, body: dict[str, Any] | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return env.client.request(method, f"/api/v1{path}", headers=headers, json=body)


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_an_inference_key_on_an_admin_route_is_401(env: Env, method: str, path: str) -> None:
    response = _call(env, method, path, env.make_key(), {"apiKeyType": "ADMIN"})
    assert response.status_code == 401
    assert response.json() == {"error": "Admin API key required"}


ACCOUNT_ROUTES = [*ADMIN_ROUTES, ("GET", "/api_keys/rate_limits")]


@pytest.mark.parametrize(("method", "path"), ACCOUNT_ROUTES)
def test_account_routes_with_a_bad_key_are_401(env: Env, method: str, path: str) -> None:
    response = _call(env, method, path, "vq_not-a-key")
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication failed"}


@pytest.mark.parametrize(("method", "path"), ACCOUNT_ROUTES)
def test_account_routes_without_credentials_answer_the_x402_discovery(
    env: Env, method: str, path: str
) -> None:
    response = _call(env, method, path, None)
    assert response.status_code == 402
    assert response.json()["error"] == "Authentication required"
    assert response.json()["x402Version"] == 2


def test_an_admin_creates_a_key_that_works_and_is_listed(env: Env, clock: ManualClock) -> None:
    account = env.make_account("10")
    admin_id, admin = make_key(env, account, admin=True, clock=clock)
    clock.advance(1)
    expires = (clock.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    created = _call(
        env,
        "POST",
        "/api_keys",
        admin,
        {
            "apiKeyType": "INFERENCE",
            "description": "ci runner",
            "consumptionLimit": {"usd": 2.5, "diem": None},
            "limitPeriod": "MONTH",
            "expiresAt": expires,
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {
        "apiKey",
        "apiKeyType",
        "consumptionLimit",
        "limitPeriod",
        "modelPrivacy",
        "description",
        "expiresAt",
        "id",
    }
    assert (
        data["apiKeyType"],
        data["consumptionLimit"],
        data["limitPeriod"],
        data["modelPrivacy"],
        data["description"],
    ) == ("INFERENCE", {"usd": 2.5, "diem": None}, "MONTH", "ALL", "ci runner")
    assert data["expiresAt"] == f"{expires}T00:00:00.000Z"

    new_key = data["apiKey"]
    assert env.post("/video/queue", BODY, new_key).status_code == 200
    listed = _call(env, "GET", "/api_keys", admin).json()
    assert listed["object"] == "list"
    assert [k["id"] for k in listed["data"]] == [admin_id, data["id"]], "oldest first"
    admin_entry, mine = listed["data"]
    assert set(mine) == KEY_FIELDS | {"currentPeriodUsage"}
    spent = f"{price_micros(env) / 1_000_000:.4f}"
    assert mine["last6Chars"] == new_key[-6:]
    assert mine["consumptionLimits"] == {"usd": 2.5, "diem": None}
    assert mine["usage"] == {"trailingSevenDays": {"usd": spent, "vcu": "0.0000", "diem": "0.0000"}}
    assert mine["currentPeriodUsage"] == {"usd": spent, "diem": "0.0000"}
    assert mine["lastUsedAt"] is not None
    assert set(admin_entry) == KEY_FIELDS, "no currentPeriodUsage without a limit"
    assert _call(env, "GET", f"/api_keys/{data['id']}", admin).json()["data"] == mine


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({}, [["apiKeyType"], ["description"]]),
        ({"apiKeyType": "ROOT", "description": "x"}, [["apiKeyType"]]),
        ({"apiKeyType": "ADMIN", "description": "x" * 65}, [["description"]]),
        ({"apiKeyType": "ADMIN", "description": "x", "owner": "me"}, [[]]),
        ({"apiKeyType": "ADMIN", "description": "x", "expiresAt": "2001-01-01"}, [["expiresAt"]]),
        ({"apiKeyType": "ADMIN", "description": "x", "expiresAt": "tomorrow"}, [["expiresAt"]]),
        (
            {"apiKeyType": "ADMIN", "description": "x", "modelPrivacy": "SECRET"},
            [["modelPrivacy"]],
        ),
        (
            {"apiKeyType": "ADMIN", "description": "x", "consumptionLimit": {"usd": -1}},
            [["consumptionLimit", "usd"]],
        ),
        ({"apiKeyType": "ADMIN", "description": "x", "limitPeriod": "WEEK"}, [["limitPeriod"]]),
    ],
)
def test_a_bad_create_body_is_a_detailed_400(
    env: Env, body: dict[str, Any], paths: list[list[str]]
) -> None:
    response = _call(env, "POST", "/api_keys", env.admin_key, body)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request parameters"
    assert [i["path"] for i in response.json()["issues"]] == paths


PRIVATE_MODEL_JOB = {
    "model": "grok-imagine-text-to-video-private",
    "prompt": "a kite over dunes",
    "duration": "5s",
    "resolution": "480p",
}
NOT_PRIVATE = {"error": "This API key may only use private models", "code": "UNAUTHORIZED"}


def _key_with_privacy(env: Env, admin: str, privacy: str) -> tuple[str, str]:
    """A new INFERENCE key of the admin's account with this `modelPrivacy`: (id, secret)."""
    body = {"apiKeyType": "INFERENCE", "description": privacy, "modelPrivacy": privacy}
    created = _call(env, "POST", "/api_keys", admin, body)
    assert created.status_code == 200, created.text
    data = created.json()["data"]
    assert data["modelPrivacy"] == privacy
    return data["id"], data["apiKey"]


def test_a_private_only_key_is_listed_as_such_and_may_queue_only_private_models(
    env: Env,
) -> None:
    account = env.make_account("100")
    _, admin = make_key(env, account, admin=True)
    key_id, key = _key_with_privacy(env, admin, "PRIVATE_ONLY")
    listed = {k["id"]: k for k in _call(env, "GET", "/api_keys", admin).json()["data"]}
    assert listed[key_id]["modelPrivacy"] == "PRIVATE_ONLY"
    one = _call(env, "GET", f"/api_keys/{key_id}", admin).json()["data"]
    assert one["modelPrivacy"] == "PRIVATE_ONLY"

    refused = env.post("/video/queue", BODY, key)  # an anonymized model
    assert (refused.status_code, refused.json()) == (403, NOT_PRIVATE)
    assert job_count(env, account) == 0
    assert env.post("/video/queue", PRIVATE_MODEL_JOB, key).status_code == 200

    upscale_quote = {"model": "topaz-video-upscale", "duration": "5", "input_height": 720}
    refused = env.post("/video/quote", upscale_quote, key)
    assert (refused.status_code, refused.json()) == (403, NOT_PRIVATE)
    assert env.post("/video/quote", upscale_quote, admin).status_code == 200


def test_a_private_only_key_is_refused_an_anonymized_model_before_its_body_is_checked(
    env: Env,
) -> None:
    account = env.make_account("100")
    _, admin = make_key(env, account, admin=True)
    _, key = _key_with_privacy(env, admin, "PRIVATE_ONLY")
    for body in ({**BODY, "duration": "99s"}, {**BODY, "webhook_url": "http://127.0.0.1/h"}):
        refused = env.post("/video/queue", body, key)
        assert (refused.status_code, refused.json()) == (403, NOT_PRIVATE)
    replayed = env.post("/video/queue", BODY, key, headers={"Idempotency-Key": "k-1"})
    assert (replayed.status_code, replayed.json()) == (403, NOT_PRIVATE)
    assert job_count(env, account) == 0


@pytest.mark.parametrize(
    "body", [BODY, {**BODY, "duration": "99s"}], ids=["402 short balance", "400 invalid"]
)
def test_a_key_s_use_is_noted_by_a_queue_request_it_refused(env: Env, body: Any) -> None:
    account = env.make_account("0")
    _, admin = make_key(env, account, admin=True)
    key_id, key = make_key(env, account)
    assert env.post("/video/queue", body, key).status_code in (400, 402)
    listed = {k["id"]: k for k in _call(env, "GET", "/api_keys", admin).json()["data"]}
    assert listed[key_id]["lastUsedAt"] is not None


def test_an_unknown_key_is_401_before_anything_in_its_queue_request_is_checked(
    env: Env,
) -> None:
    for body in (
        BODY,
        {**BODY, "duration": "99s"},
        {**BODY, "model": "no-such-model"},
        {**BODY, "webhook_url": "http://127.0.0.1/h"},
    ):
        refused = env.post("/video/queue", body, "vq_unknown")
        assert (refused.status_code, refused.json()) == (401, {"error": "Authentication failed"})


def test_a_private_text_key_may_queue_any_video_model(env: Env) -> None:
    _, admin = make_key(env, env.make_account("100"), admin=True)
    _, key = _key_with_privacy(env, admin, "PRIVATE_TEXT")
    # PRIVATE_TEXT binds text and embedding models only; video may be anonymized or private.
    assert env.post("/video/queue", BODY, key).status_code == 200
    assert env.post("/video/queue", PRIVATE_MODEL_JOB, key).status_code == 200


def test_a_revoked_key_stops_working_at_once(env: Env) -> None:
    account = env.make_account("10")
    admin = env.make_key(account, admin=True)
    doomed_id, doomed = make_key(env, account)
    other_id, other = make_key(env, account)
    assert _call(env, "DELETE", f"/api_keys/{doomed_id}", admin).json() == {"success": True}
    assert _call(env, "DELETE", f"/api_keys?id={other_id}", admin).json() == {"success": True}
    for secret in (doomed, other):
        assert env.post("/video/queue", BODY, secret).status_code == 401
    listed = {k["id"] for k in _call(env, "GET", "/api_keys", admin).json()["data"]}
    assert listed.isdisjoint({doomed_id, other_id})
    assert _call(env, "DELETE", f"/api_keys/{doomed_id}", admin).status_code == 404


def test_an_admin_cannot_see_or_revoke_another_accounts_keys(env: Env) -> None:
    victim_id, victim = make_key(env, env.make_account("1"))
    intruder = env.make_key(env.make_account("1"), admin=True)
    assert _call(env, "DELETE", f"/api_keys/{victim_id}", intruder).status_code == 404
    assert _call(env, "GET", f"/api_keys/{victim_id}", intruder).status_code == 404
    ids = [k["id"] for k in _call(env, "GET", "/api_keys", intruder).json()["data"]]
    assert victim_id not in ids
    assert env.post("/video/quote", BODY, victim).status_code == 200


def test_rate_limits_describe_the_calling_key(env: Env, clock: ManualClock) -> None:
    account = env.make_account("12.5")
    _, key = make_key(env, account, expires_at=clock.now() + timedelta(days=1))
    response = _call(env, "GET", "/api_keys/rate_limits", key)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["accessPermitted"] is True
    assert data["apiTier"] == {"id": "paid", "isCharged": True}
    assert data["balances"] == {"USD": 12.5, "DIEM": 0}
    assert data["keyExpiration"].endswith("Z")
    assert data["nextEpochBegins"].endswith("T00:00:00.000Z")
    limits = {m["apiModelId"]: m["rateLimits"] for m in data["rateLimits"]}
    assert limits[BODY["model"]] == [{"amount": 40, "type": "RPM"}]
    broke = env.make_key(env.make_account(0))
    assert (
        _call(env, "GET", "/api_keys/rate_limits", broke).json()["data"]["accessPermitted"] is False
    )


def test_an_expired_key_is_refused(env: Env, clock: ManualClock) -> None:
    account = env.make_account("10")
    _, key = make_key(env, account, expires_at=clock.now() + timedelta(hours=1))
    assert env.post("/video/queue", BODY, key).status_code == 200
    clock.advance(3600)
    response = env.post("/video/queue", BODY, key)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication failed"}
    assert job_count(env, account) == 1


def test_a_key_spend_limit_refuses_the_job_it_would_pass(env: Env, clock: ManualClock) -> None:
    price = price_micros(env)
    account = env.make_account("100")
    _, limited = make_key(
        env, account, limit_usd=f"{2 * price / 1_000_000}", period=LimitPeriod.EPOCH
    )
    for _ in range(2):
        assert env.post("/video/queue", BODY, limited).status_code == 200
    refused = env.post("/video/queue", BODY, limited)
    assert refused.status_code == 402
    assert refused.json() == {
        "error": "API key USD spend limit exceeded. Raise the key's "
        "consumption limit or wait for its limit period to "
        "reset."
    }
    assert job_count(env, account) == 2
    assert env.post("/video/queue", BODY, env.make_key(account)).status_code == 200, (
        "the account's other keys are not held to this key's limit"
    )
    clock.advance(24 * 3600)
    assert env.post("/video/queue", BODY, limited).status_code == 200, "a new UTC day"
    charges = rows(env, account, LedgerKind.CHARGE)
    assert len(charges) == 4 and all(c.api_key_id for c in charges)
    assert_books_balance(env)


def test_the_operators_account_is_charged_but_never_refused(env: Env) -> None:
    response = env.post("/video/queue", BODY, env.admin_key)
    assert response.status_code == 200, response.text
    listed = _call(env, "GET", "/billing/balance", env.admin_key).json()
    assert listed["canConsume"] is True
    assert listed["balances"]["usd"] == -price_micros(env) / 1_000_000
    assert_books_balance(env)


def test_a_held_account_without_money_gets_402_and_no_job(env: Env) -> None:
    account = env.make_account("0")
    response = env.post("/video/queue", BODY, env.make_key(account))
    assert response.status_code == 402
    assert response.json() == {
        "error": "Insufficient USD or Diem balance to complete request. "
        "Visit https://venice.ai/settings/api to add credits."
    }
    assert job_count(env, account) == 0
    assert balance(env, account) == 0
