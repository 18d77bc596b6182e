"""Deprecated models: Venice's deprecation headers until `removesAt`, then an unknown model
that `/models` no longer lists and queue and quote refuse (the app's clock decides)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.catalog.cases import table_settings
from tests.conftest import Env, build_env
from videoqueue.clock import ManualClock

SORA = "sora-2-text-to-video"
CURRENT = "wan-2.6-text-to-video"
DAY_BEFORE = datetime(2026, 9, 23, 12, tzinfo=UTC)
SORA_HEADERS = {
    "x-venice-model-deprecation-warning": (
        "The model sora-2-text-to-video is deprecated and will be removed on 2026-09-24."
    ),
    "x-venice-model-deprecation-date": "2026-09-24T00:00:00.000Z",
    "x-venice-deprecated": "true",
}
INVALID_MODEL = {"error": "Invalid model specified", "code": "INVALID_MODEL"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(DAY_BEFORE)


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(table_settings(tmp_path / "data"), clock)


def deprecation_of(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if "deprecat" in k}


def sora_job(prompt: str = "A paper boat on a canal") -> dict[str, str]:
    return {"model": SORA, "prompt": prompt, "duration": "4s", "aspect_ratio": "16:9"}


def listed_ids(env: Env) -> list[str]:
    body = env.client.get("/api/v1/models", params={"type": "video"}).json()
    return [entry["id"] for entry in body["data"]]


def test_a_deprecated_model_carries_venices_headers_on_quote_queue_and_retrieve(
    env: Env,
) -> None:
    key = env.make_key()
    quote = env.post("/video/quote", {"model": SORA, "duration": "4s"})
    assert quote.status_code == 200
    assert deprecation_of(quote) == SORA_HEADERS
    queued = env.post("/video/queue", sora_job(), key)
    assert queued.status_code == 200, queued.text
    assert deprecation_of(queued) == SORA_HEADERS
    retrieve = {"model": SORA, "queue_id": queued.json()["queue_id"]}
    polled = env.post("/video/retrieve", retrieve, key)
    assert polled.json()["status"] == "PROCESSING"
    assert deprecation_of(polled) == SORA_HEADERS
    refused = env.post("/video/queue", {**sora_job(), "duration": "5s"}, key)
    assert refused.status_code == 400
    assert deprecation_of(refused) == SORA_HEADERS  # errors about the model say it too


def test_a_current_model_carries_no_deprecation_headers(env: Env) -> None:
    response = env.post("/video/quote", {"model": CURRENT, "duration": "5s"})
    assert response.status_code == 200
    assert deprecation_of(response) == {}


def test_past_removes_at_a_model_leaves_models_and_is_refused_as_unknown(
    env: Env, clock: ManualClock
) -> None:
    key = env.make_key()
    queued = env.post("/video/queue", sora_job(), key).json()["queue_id"]
    assert SORA in listed_ids(env)
    count = len(listed_ids(env))

    clock.advance(12 * 3600)  # 2026-09-24T00:00Z: removesAt
    assert SORA not in listed_ids(env)
    assert len(listed_ids(env)) == count - 4  # the four Sora 2 models
    made_up = env.post("/video/queue", {**sora_job(), "model": "no-such-model"}, key)
    for response in (
        env.post("/video/queue", sora_job(), key),
        env.post("/video/quote", {"model": SORA, "duration": "4s"}),
        made_up,
    ):
        assert (response.status_code, response.json()) == (400, INVALID_MODEL)
        assert deprecation_of(response) == {}
    # A job accepted before the removal is still answered.
    polled = env.post("/video/retrieve", {"model": SORA, "queue_id": queued}, key)
    assert (polled.status_code, polled.json()["status"]) == (200, "PROCESSING")
    assert deprecation_of(polled) == {}
