"""`/video/events` over a real uvicorn, no worker: a queued job's quiet stream keeps itself
alive with a comment line, and a cancel ends it with a `cancelled` event."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.accounts import live_server
from tests.conftest import Env, build_env
from videoqueue.api.routes import events
from videoqueue.settings import Settings

MODEL = "wan-2.5-preview-text-to-video"


@pytest.fixture
def quick_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The app polling each stream's job every 50 ms, silent for at most 0.3 s."""
    monkeypatch.setattr(events, "KEEP_ALIVE_SECONDS", 0.3)
    yield from build_env(settings.model_copy(update={"events_poll_seconds": 0.05}))


def test_a_quiet_stream_keeps_alive_and_a_cancel_ends_it(quick_env: Env) -> None:
    key = quick_env.make_key()
    body = {"model": MODEL, "prompt": "a kite", "duration": "5s"}
    queue_id = quick_env.post("/video/queue", body, key).json()["queue_id"]
    headers = {"Authorization": f"Bearer {key}"}
    lines: list[str] = []
    with live_server(quick_env.client.app) as base, httpx.Client(headers=headers) as client:
        query = {"model": MODEL, "queue_id": queue_id}
        with client.stream("GET", f"{base}/video/events", params=query, timeout=30) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                lines.append(line)
                if line == ": still waiting" and lines.count(line) == 1:
                    cancel = client.post(f"{base}/video/cancel", json=query)
                    assert cancel.status_code == 200, cancel.text
    events_seen = [line.removeprefix("event: ") for line in lines if line.startswith("event:")]
    assert events_seen == ["queued", "cancelled"]
    last = json.loads(next(line for line in reversed(lines) if line.startswith("data:"))[5:])
    assert last == {"status": "cancelled", "progress": 0.0, "queue_position": None}
    assert lines.index(": still waiting") < lines.index("event: cancelled")
