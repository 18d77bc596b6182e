"""Retrieve's `PROCESSING` body: Venice's three fields, then `progress` and `queue_position`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env, build_env, png_data_url, wait_until
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

MODEL = "wan-2.5-preview-text-to-video"
OTHER = "wan-2.5-preview-image-to-video"
GATED = {"gated": "tests.engines.fixture_engines:Gated"}


@pytest.fixture
def gated_env(settings: Settings, tmp_path: Path) -> Iterator[Env]:
    """The app with MODEL bound to the `gated` fixture engine."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models."{MODEL}"]\nengine = "gated"\n')
    yield from build_env(settings.model_copy(update={"engines": GATED, "catalog_path": catalog}))


def _queue(env: Env, key: str, prompt: str, model: str = MODEL) -> str:
    body: dict[str, Any] = {"model": model, "prompt": prompt, "duration": "5s"}
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


def _retrieve(env: Env, key: str, queue_id: str, model: str = MODEL) -> dict[str, Any]:
    response = env.post("/video/retrieve", {"model": model, "queue_id": queue_id}, key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def test_queued_jobs_answer_their_place_in_claim_order(gated_env: Env) -> None:
    first_key, second_key = gated_env.make_key(), gated_env.make_key()
    ids = [
        _queue(gated_env, first_key, "one"),
        _queue(gated_env, second_key, "two"),
        _queue(gated_env, first_key, "three"),
    ]
    keys = [first_key, second_key, first_key]
    bodies = [_retrieve(gated_env, key, queue_id) for key, queue_id in zip(keys, ids, strict=True)]
    assert [b["queue_position"] for b in bodies] == [0, 1, 2]
    for body in bodies:
        assert set(body) == {
            "status",
            "average_execution_time",
            "execution_duration",
            "progress",
            "queue_position",
        }
        assert body["status"] == "PROCESSING"
        assert body["progress"] == 0.0
        assert isinstance(body["average_execution_time"], int)
        assert isinstance(body["execution_duration"], int)

    # Another engine's queue is its own: its job has nothing ahead of it.
    image = _queue_image(gated_env, first_key)
    assert _retrieve(gated_env, first_key, image, OTHER)["queue_position"] == 0

    # The first job gone, each of the others moves up one place.
    assert gated_env.post("/video/complete", {"model": MODEL, "queue_id": ids[0]}, first_key)
    assert _retrieve(gated_env, second_key, ids[1])["queue_position"] == 0
    assert _retrieve(gated_env, first_key, ids[2])["queue_position"] == 1


def _queue_image(env: Env, key: str) -> str:
    body = {
        "model": OTHER,
        "prompt": "the sky",
        "duration": "5s",
        "resolution": "480p",
        "image_url": png_data_url(640, 480, (30, 140, 220)),
    }
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


def _mp4_ready(env: Env, key: str, queue_id: str) -> bool:
    response = env.post("/video/retrieve", {"model": MODEL, "queue_id": queue_id}, key)
    return bool(response.headers["content-type"] == "video/mp4")


def test_progress_rises_while_the_engine_runs(gated_env: Env, tmp_path: Path) -> None:
    key = gated_env.make_key()
    gate, next_gate = tmp_path / "gate", tmp_path / "next-gate"
    running_id = _queue(gated_env, key, f"gate:{gate}")
    waiting_id = _queue(gated_env, key, f"gate:{next_gate}")
    assert _retrieve(gated_env, key, waiting_id)["queue_position"] == 1

    supervisor = Supervisor(gated_env.settings, 1)
    supervisor.start()
    try:
        # The engine reports half done and waits at its gate; the heartbeat stores it.
        half = wait_until(
            lambda: (b := _retrieve(gated_env, key, running_id))["progress"] == 0.5 and b
        )
        assert half["status"] == "PROCESSING"
        assert half["queue_position"] is None
        # The job queued behind it now has nothing runnable ahead of it.
        assert _retrieve(gated_env, key, waiting_id)["queue_position"] == 0

        gate.touch()
        wait_until(lambda: _mp4_ready(gated_env, key, running_id))
        # The same worker's next job has its progress stored too: the heartbeat went on to
        # its lease.
        wait_until(lambda: _retrieve(gated_env, key, waiting_id)["progress"] == 0.5)
        next_gate.touch()
        wait_until(lambda: _mp4_ready(gated_env, key, waiting_id))

        # A job that comes once the worker has idled past a heartbeat is renewed as well.
        time.sleep(3 * gated_env.settings.heartbeat_seconds)
        last_gate = tmp_path / "last-gate"
        last_id = _queue(gated_env, key, f"gate:{last_gate}")
        wait_until(lambda: _retrieve(gated_env, key, last_id)["progress"] == 0.5)
        last_gate.touch()
        wait_until(lambda: _mp4_ready(gated_env, key, last_id))
    finally:
        supervisor.stop()
