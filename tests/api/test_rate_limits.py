"""Per-key, per-model request limits and the failed-request budget (spec §3.3): Venice's
headers on every response, 429 with `Retry-After` past a limit, no job for a refused queue
request, and counts shared by every API process through the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from tests.accounts import BODY, job_count, money_settings
from tests.conftest import Env, build_env, png_data_url
from tests.media_files import solid_png
from tests.media_server import MediaServer
from videoqueue.api.app import create_app
from videoqueue.auth.models import ApiKey, ModelPrivacy
from videoqueue.clock import ManualClock
from videoqueue.db.dialect import READ_ONLY_OPTION

OTHER_MODEL = "wan-2.5-preview-image-to-video"
FAILED_TOO_OFTEN = (
    "Too many failed attempts (> 3) resulting in a non-success status code. "
    "Please wait 30 seconds and try again. "
    "See https://docs.venice.ai/api-reference/rate-limiting for more information."
)


@pytest.fixture
def clock() -> ManualClock:
    # Five seconds into a minute, so a test's requests share one window.
    return ManualClock(datetime(2026, 8, 22, 12, 0, 5, tzinfo=UTC))


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    settings = money_settings(
        tmp_path,
        queue_requests_per_minute=3,
        retrieve_requests_per_minute=5,
        failed_requests_budget=3,
    )
    yield from build_env(settings, clock=clock)


def _ms(moment: str) -> datetime:
    return datetime.fromtimestamp(int(moment) / 1000, UTC)


def test_every_response_carries_the_rate_limit_headers(env: Env, clock: ManualClock) -> None:
    key = env.make_key()
    first = env.post("/video/queue", BODY, key)
    bad = env.post("/video/queue", {**BODY, "duration": "99s"}, key)
    assert (first.status_code, bad.status_code) == (200, 400)
    for response, remaining in ((first, "2"), (bad, "1")):
        headers = response.headers
        assert headers["x-ratelimit-limit-requests"] == "3"
        assert headers["x-ratelimit-remaining-requests"] == remaining
        assert _ms(headers["x-ratelimit-reset-requests"]) == datetime(
            2026, 8, 22, 12, 1, tzinfo=UTC
        )
        assert headers["x-ratelimit-type"] == "api_key"
        assert _ms(headers["x-ratelimit-resets"]) == datetime(2026, 8, 22, 12, 0, 30, tzinfo=UTC)
    assert first.headers["x-ratelimit-remaining"] == "3"
    assert bad.headers["x-ratelimit-remaining"] == "3", "counted after it is answered"
    retrieve = env.post(
        "/video/retrieve", {"model": BODY["model"], "queue_id": first.json()["queue_id"]}, key
    )
    assert retrieve.headers["x-ratelimit-limit-requests"] == "5"
    assert retrieve.headers["x-ratelimit-remaining"] == "2", "the 400 spent one"


def test_past_the_limit_a_queue_request_is_429_and_creates_no_job(
    env: Env, clock: ManualClock
) -> None:
    account = env.make_account("100")
    key = env.make_key(account)
    assert [env.post("/video/queue", BODY, key).status_code for _ in range(3)] == [200] * 3
    refused = env.post("/video/queue", BODY, key)
    assert refused.status_code == 429
    assert refused.json() == {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}
    assert refused.headers["retry-after"] == "55"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert job_count(env, account) == 3

    assert env.post("/video/queue", BODY, env.make_key(account)).status_code == 200, (
        "another key has its own limit"
    )
    other_model = {**BODY, "model": OTHER_MODEL, "image_url": png_data_url()}
    assert env.post("/video/queue", other_model, key).status_code == 200, (
        "another model has its own limit"
    )
    clock.advance(55)
    assert env.post("/video/queue", BODY, key).status_code == 200, "a new minute"


def test_retrieve_has_its_own_limit(env: Env) -> None:
    key = env.make_key()
    queue_id = env.post("/video/queue", BODY, key).json()["queue_id"]
    reference = {"model": BODY["model"], "queue_id": queue_id}
    statuses = [env.post("/video/retrieve", reference, key).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_too_many_failed_requests_lock_the_bucket_until_the_window_ends(
    env: Env, clock: ManualClock
) -> None:
    account = env.make_account("100")
    key = env.make_key(account)
    invalid = {**BODY, "duration": "99s"}
    retrieve_unknown = {"model": BODY["model"], "queue_id": "nope"}
    assert env.post("/video/queue", invalid, key).status_code == 400
    assert env.post("/video/retrieve", retrieve_unknown, key).status_code == 404
    assert env.post("/video/retrieve", retrieve_unknown, key).status_code == 404
    assert env.post("/video/retrieve", retrieve_unknown, key).status_code == 404  # 4 > 3

    clock.advance(1)
    locked = env.post("/video/queue", BODY, key)
    assert locked.status_code == 429
    assert locked.json() == {"error": FAILED_TOO_OFTEN}
    assert locked.headers["retry-after"] == "24"
    assert locked.headers["x-ratelimit-remaining"] == "0"
    assert job_count(env, account) == 0
    assert env.post("/video/queue", {**BODY, "model": OTHER_MODEL}, key).status_code == 400, (
        "another model's bucket is not locked"
    )

    clock.advance(24)  # the failure window ends; the 429s themselves were not counted
    assert env.post("/video/queue", BODY, key).status_code == 200


def test_limits_hold_across_api_processes_sharing_the_database(
    env: Env, clock: ManualClock
) -> None:
    key = env.make_key()
    headers = {"Authorization": f"Bearer {key}"}
    # A second API process: its own app, engine and connection pool, the same database.
    with TestClient(create_app(env.settings, clock=clock)) as second:
        codes: list[Any] = []
        for client in (env.client, second, env.client, second):
            codes.append(client.post("/api/v1/video/queue", json=BODY, headers=headers).status_code)
    assert codes == [200, 200, 200, 429]


def _transactions(env: Env, path: str, body: dict[str, Any], key: str) -> tuple[Any, list[str]]:
    engine = env.client.app.state.context.db.engine  # type: ignore[attr-defined]
    opened: list[str] = []

    def on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        opened.append("read" if read_only else "write")

    event.listen(engine, "begin", on_begin)
    try:
        return env.post(path, body, key), opened
    finally:
        event.remove(engine, "begin", on_begin)


def test_a_queue_request_is_counted_in_its_one_write_transaction(env: Env) -> None:
    key = env.make_key()
    assert env.post("/video/queue", BODY, key).status_code == 200  # the key's use is stamped
    second, opened = _transactions(env, "/video/queue", BODY, key)
    assert second.status_code == 200
    assert second.headers["x-ratelimit-remaining-requests"] == "1"
    assert opened == ["write"], "the key check, the count, the charge and the job together"


def test_a_queue_past_the_limit_is_429_before_its_key_s_model_privacy_or_body_is_checked(
    env: Env,
) -> None:
    key = env.make_key()
    for _ in range(3):
        assert env.post("/video/queue", BODY, key).status_code == 200
    with env.db.transaction() as session:
        session.execute(update(ApiKey).values(model_privacy=ModelPrivacy.PRIVATE_ONLY))
    for body in (BODY, {**BODY, "duration": "99s"}):
        refused = env.post("/video/queue", body, key)
        assert refused.status_code == 429
        assert refused.json() == {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}


def test_a_retrieve_looks_up_its_key_and_is_counted_in_one_write_then_reads_the_job(
    env: Env,
) -> None:
    key = env.make_key()
    queue_id = env.post("/video/queue", BODY, key).json()["queue_id"]
    reference = {"model": BODY["model"], "queue_id": queue_id}
    retrieved, opened = _transactions(env, "/video/retrieve", reference, key)
    assert retrieved.status_code == 200
    assert retrieved.json()["status"] == "PROCESSING"
    assert retrieved.headers["x-ratelimit-remaining-requests"] == "4"
    assert opened == ["write", "read"]


@pytest.mark.parametrize("path", ["/video/retrieve", "/video/complete"])
def test_an_unknown_key_is_401_before_an_unreadable_body_is_400_and_counts_nothing(
    env: Env, path: str
) -> None:
    key = env.make_key()
    headers = {"Authorization": "Bearer vq_unknown", "Content-Type": "application/json"}
    refused = env.client.post(f"/api/v1{path}", content=b"{not json", headers=headers)
    assert refused.status_code == 401
    assert refused.json() == {"error": "Authentication failed"}
    unreadable = env.client.post(
        f"/api/v1{path}",
        content=b"{not json",
        headers={**headers, "Authorization": f"Bearer {key}"},
    )
    assert unreadable.status_code == 400
    queue_id = env.post("/video/queue", BODY, key).json()["queue_id"]
    counted = env.post(path, {"model": BODY["model"], "queue_id": queue_id}, key)
    assert counted.headers["x-ratelimit-remaining-requests"] == "4", "only this one was counted"


@pytest.fixture
def local_env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    """One queue a minute, and media fetched from the test's 127.0.0.1 server."""
    settings = money_settings(
        tmp_path, queue_requests_per_minute=1, media_allow_private_networks=True
    )
    yield from build_env(settings, clock=clock)


def test_a_queue_with_media_past_the_limit_fetches_nothing(
    local_env: Env, server: MediaServer
) -> None:
    env = local_env
    account = env.make_account("100")
    key = env.make_key(account)
    body = {**BODY, "model": OTHER_MODEL, "image_url": server.serve("/a.png", solid_png(640, 360))}
    assert env.post("/video/queue", body, key).status_code == 200
    assert len(server.hits) == 1

    refused = env.post("/video/queue", body, key)

    assert refused.status_code == 429
    assert refused.json() == {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}
    assert len(server.hits) == 1, "the refused request fetched its image"
    assert job_count(env, account) == 1
