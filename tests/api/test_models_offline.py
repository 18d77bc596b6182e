"""`/models` says `offline: true` for a model no live worker with its engine ready can serve:
with no worker at all, every model; a failed or still loading engine, a stopping or a lost
worker keep none online."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Env, wait_until
from tests.fleet_rows import register
from videoqueue.clock import SystemClock
from videoqueue.fleet.models import WorkerState

UPSCALER = "topaz-video-upscale"


def offline(env: Env) -> dict[str, bool]:
    response = env.client.get("/api/v1/models", params={"type": "video"})
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return {m["id"]: m["model_spec"]["offline"] for m in data}


def test_without_a_worker_every_model_is_offline(env: Env) -> None:
    assert set(offline(env).values()) == {True}


def test_a_live_worker_brings_online_the_models_of_its_ready_engines_only(env: Env) -> None:
    now = SystemClock().now()
    register(env.db, "preview-host", {"preview": "ready", "upscale": "failed: no"}, heard_at=now)
    register(env.db, "lost-host", {"upscale": "ready"}, heard_at=now - timedelta(minutes=2))
    register(env.db, "leaving-host", {"upscale": "ready"}, heard_at=now, state=WorkerState.STOPPING)
    listed = offline(env)
    assert listed.pop(UPSCALER) is True, "failed here, lost there, stopping elsewhere"
    assert set(listed.values()) == {False}, "every other model is bound to preview"


def test_a_model_comes_online_within_a_moment_of_its_engine_becoming_ready(env: Env) -> None:
    assert offline(env)[UPSCALER] is True
    register(env.db, "upscaler", {"upscale": "ready"}, heard_at=SystemClock().now())
    wait_until(lambda: offline(env)[UPSCALER] is False, timeout=10)
