"""Private models deliver through a pre-signed `download_url` (spec §4.2, §6 response 3, §8):
queue through the real HTTP app, a real worker process renders, the link serves the MP4."""

from __future__ import annotations

import base64
import io
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import av
import pytest
from fastapi.testclient import TestClient

from tests.conftest import RETRIEVE_POLL_S, Env, build_env, wait_until
from videoqueue.api.app import create_app
from videoqueue.clock import ManualClock
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

PRIVATE = "grok-imagine-text-to-video-private"
NORMAL = "wan-2.5-preview-text-to-video"
SHARE = "http://127.0.0.1:8000/v1/share/read/"
DAY = 86_400


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The shared test settings, with overrides from `indirect` parametrization."""
    overrides: dict[str, Any] = dict(getattr(request, "param", {}))
    if "catalog_overlay" in overrides:
        overlay = tmp_path / "catalog.toml"
        overlay.write_text(overrides.pop("catalog_overlay"))
        overrides["catalog_path"] = overlay
    return Settings(
        data_dir=tmp_path / "data",
        lease_seconds=2.0,
        heartbeat_seconds=0.3,
        poll_seconds=0.05,
        default_average_execution_ms=5_000,
        **overrides,
    )


@pytest.fixture
def env(settings: Settings, clock: ManualClock) -> Iterator[Env]:
    """The app on a clock the test moves (the worker process keeps real time)."""
    yield from build_env(settings, clock)


def _queue(env: Env, key: str, model: str = PRIVATE, **extra: Any) -> dict[str, Any]:
    body = {
        "model": model,
        "prompt": "A lantern in the snow",
        "duration": "1s",
        "resolution": "480p",
        "aspect_ratio": "1:1",
        **extra,
    }
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _retrieve(env: Env, key: str, queue_id: str, **extra: Any) -> Any:
    return env.post("/video/retrieve", {"model": PRIVATE, "queue_id": queue_id, **extra}, key)


def _wait_completed(env: Env, key: str, queue_id: str) -> dict[str, Any]:
    def completed() -> dict[str, Any] | None:
        response = _retrieve(env, key, queue_id)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json", "never the bytes"
        body = response.json()
        return dict(body) if body["status"] == "COMPLETED" else None

    return dict(wait_until(completed, timeout=90, interval=RETRIEVE_POLL_S))


def _path(download_url: str) -> str:
    assert download_url.startswith(SHARE)
    return urlparse(download_url).path


def _done_link(env: Env, key: str | None = None) -> tuple[str, str]:
    """A finished private job: (queue_id, the path of its download link)."""
    key = key or env.make_key()
    queued = _queue(env, key)
    _wait_completed(env, key, queued["queue_id"])
    return queued["queue_id"], _path(queued["download_url"])


def _frames(data: bytes) -> list[Any]:
    with av.open(io.BytesIO(data), "r") as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert body["code"] == code


def test_private_job_answers_a_download_url_and_retrieve_says_completed(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    queued = _queue(env, key)
    assert set(queued) == {"model", "queue_id", "download_url"}
    assert queued["model"] == PRIVATE
    assert uuid.UUID(queued["queue_id"])
    path = _path(queued["download_url"])

    status = _wait_completed(env, key, queued["queue_id"])
    assert set(status) == {"status", "average_execution_time", "execution_duration"}
    assert isinstance(status["average_execution_time"], int)
    assert isinstance(status["execution_duration"], int) and status["execution_duration"] >= 0

    response = env.client.get(path)  # no Authorization header at all
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["cache-control"] == "private, no-store"
    assert int(response.headers["content-length"]) == len(response.content)
    frames = _frames(response.content)
    assert len(frames) == 24
    assert frames[0].shape == (480, 480, 3)
    assert _retrieve(env, key, queued["queue_id"]).json()["status"] == "COMPLETED"


def test_the_link_ignores_any_api_key_sent_with_it(env: Env, workers: Supervisor) -> None:
    _, path = _done_link(env)
    response = env.client.get(path, headers={"Authorization": "Bearer not-a-key"})
    assert response.status_code == 200
    assert len(_frames(response.content)) == 24


def test_range_requests_resume_a_dropped_download(env: Env, workers: Supervisor) -> None:
    _, path = _done_link(env)
    head = env.client.get(path, headers={"Range": "bytes=0-999"})
    assert head.status_code == 206
    size = int(head.headers["content-range"].rpartition("/")[2])
    assert head.headers["content-range"] == f"bytes 0-999/{size}"
    assert len(head.content) == 1000
    rest = env.client.get(path, headers={"Range": "bytes=1000-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    assert len(_frames(head.content + rest.content)) == 24


def test_another_account_cannot_reach_a_private_job_by_retrieve(
    env: Env, workers: Supervisor
) -> None:
    queue_id, _ = _done_link(env)
    stranger = env.make_key()
    response = _retrieve(env, stranger, queue_id)
    assert response.status_code == 404
    assert response.json()["error"].startswith("Media could not be found")
    assert (
        env.post("/video/complete", {"model": PRIVATE, "queue_id": queue_id}, stranger).status_code
        == 404
    )


def test_delete_revokes_the_link_and_deletes_the_video(env: Env, workers: Supervisor) -> None:
    key = env.make_key()
    queue_id, path = _done_link(env, key)
    deleted = env.client.delete(path)
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    _error(env.client.get(path), 410, "LINK_REVOKED")
    assert env.client.delete(path).status_code == 200, "revoking again is harmless"
    assert _retrieve(env, key, queue_id).status_code == 404
    assert not (env.settings.data_dir / "media" / "jobs" / queue_id).exists()


@pytest.mark.parametrize("settings", [{"download_link_delete_media": False}], indirect=True)
def test_operator_may_keep_the_video_when_a_link_is_revoked(env: Env, workers: Supervisor) -> None:
    key = env.make_key()
    queue_id, path = _done_link(env, key)
    assert env.client.delete(path).status_code == 200
    _error(env.client.get(path), 410, "LINK_REVOKED")
    assert _retrieve(env, key, queue_id).json()["status"] == "COMPLETED"
    assert (env.settings.data_dir / "media" / "jobs" / queue_id / "output.mp4").is_file()


def _swap(token: str, start: int, replacement: bytes) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[start : start + len(replacement)] = replacement
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_tampered_and_swapped_tokens_serve_nothing(env: Env, workers: Supervisor) -> None:
    key = env.make_key()
    first, second = _queue(env, key), _queue(env, key)
    _wait_completed(env, key, first["queue_id"])
    _wait_completed(env, key, second["queue_id"])
    token = _path(first["download_url"]).rpartition("/")[2]
    other = _path(second["download_url"]).rpartition("/")[2]

    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    other_job = _swap(token, 17, uuid.UUID(second["queue_id"]).bytes)
    other_link = _swap(token, 1, base64.urlsafe_b64decode(other + "==")[1:17])
    for bad in (flipped, other_job, other_link, token[:-1], "x" * 98, "not-a-token"):
        _error(env.client.get(f"/v1/share/read/{bad}"), 404, "LINK_NOT_FOUND")
        _error(env.client.delete(f"/v1/share/read/{bad}"), 404, "LINK_NOT_FOUND")
    assert env.client.get(f"/v1/share/read/{token}").status_code == 200, "still intact"


def test_an_expired_link_answers_410(env: Env, workers: Supervisor, clock: ManualClock) -> None:
    _, path = _done_link(env)
    clock.advance(DAY - 60)
    assert env.client.get(path).status_code == 200
    clock.advance(60)
    _error(env.client.get(path), 410, "LINK_EXPIRED")


def test_a_used_up_link_answers_410(env: Env, workers: Supervisor, clock: ManualClock) -> None:
    _, path = _done_link(env)
    for _ in range(5):
        assert env.client.get(path).status_code == 200
        clock.advance(10)  # outside the burst window
    _error(env.client.get(path), 410, "LINK_USED_UP")


def test_fetching_too_fast_answers_429_with_retry_after(
    env: Env, workers: Supervisor, clock: ManualClock
) -> None:
    _, path = _done_link(env)
    for _ in range(3):
        assert env.client.get(path).status_code == 200
    clock.advance(4)
    throttled = env.client.get(path)
    _error(throttled, 429, "RATE_LIMIT_EXCEEDED")
    assert throttled.headers["retry-after"] == "6"
    clock.advance(6)
    assert env.client.get(path).status_code == 200
    assert env.client.get(path).status_code == 200, "the 429 used up no fetch"
    _error(env.client.get(path), 410, "LINK_USED_UP")


def test_the_link_says_not_ready_until_the_job_is_done(env: Env, clock: ManualClock) -> None:
    key = env.make_key()
    queued = _queue(env, key)
    path = _path(queued["download_url"])
    for _ in range(3):
        _error(env.client.get(path), 404, "MEDIA_NOT_READY")
    _error(env.client.get(path), 429, "RATE_LIMIT_EXCEEDED")  # polling the link is throttled

    supervisor = Supervisor(env.settings, 1)
    supervisor.start()
    try:
        _wait_completed(env, key, queued["queue_id"])
    finally:
        supervisor.stop()
    for _ in range(5):
        clock.advance(10)
        assert env.client.get(path).status_code == 200, "not-ready answers used up nothing"


def test_a_normal_model_has_no_link_and_retrieve_streams_bytes(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    queued = _queue(env, key, model=NORMAL, duration="5s")
    assert set(queued) == {"model", "queue_id"}

    def mp4() -> bytes | None:
        response = env.post(
            "/video/retrieve", {"model": NORMAL, "queue_id": queued["queue_id"]}, key
        )
        return response.content if response.headers["content-type"] == "video/mp4" else None

    assert len(_frames(wait_until(mp4, timeout=90, interval=RETRIEVE_POLL_S))) == 120


def test_complete_revokes_the_link(env: Env, workers: Supervisor) -> None:
    key = env.make_key()
    queue_id, path = _done_link(env, key)
    assert env.post("/video/complete", {"model": PRIVATE, "queue_id": queue_id}, key).json() == {
        "success": True
    }
    response = env.client.get(path)
    assert response.status_code == 410
    assert response.json()["code"] in ("LINK_REVOKED", "MEDIA_DELETED")


def test_delete_before_the_job_runs_revokes_the_link_and_cancels_the_job(env: Env) -> None:
    key = env.make_key()
    queued = _queue(env, key)
    path = _path(queued["download_url"])
    assert env.client.delete(path).json() == {"success": True}
    _error(env.client.get(path), 410, "LINK_REVOKED")
    assert _retrieve(env, key, queued["queue_id"]).status_code == 404


@pytest.mark.parametrize(
    "settings",
    [{"catalog_overlay": f'[models."{NORMAL}"]\ndelivery = "download_url"\n'}],
    indirect=True,
)
def test_an_operator_can_make_any_model_deliver_by_link(env: Env, workers: Supervisor) -> None:
    key = env.make_key()
    queued = _queue(env, key, model=NORMAL, duration="5s")
    assert set(queued) == {"model", "queue_id", "download_url"}

    def completed() -> bool:
        response = env.post(
            "/video/retrieve", {"model": NORMAL, "queue_id": queued["queue_id"]}, key
        )
        assert response.headers["content-type"] == "application/json"
        return bool(response.json()["status"] == "COMPLETED")

    wait_until(completed, timeout=90, interval=RETRIEVE_POLL_S)
    assert len(_frames(env.client.get(_path(queued["download_url"])).content)) == 120


def test_complete_before_the_job_runs_revokes_the_link(env: Env) -> None:
    key = env.make_key()
    queued = _queue(env, key)
    env.post("/video/complete", {"model": PRIVATE, "queue_id": queued["queue_id"]}, key)
    assert env.client.get(_path(queued["download_url"])).status_code == 410


def test_delete_media_on_completion_deletes_once_the_link_served_the_video(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    queue_id, path = _done_link(env, key)
    status = _retrieve(env, key, queue_id, delete_media_on_completion=True)
    assert status.json()["status"] == "COMPLETED"
    assert env.client.get(path, headers={"Range": "bytes=0-99"}).status_code == 206, (
        "a partial download deletes nothing"
    )
    full = env.client.get(path)
    assert full.status_code == 200 and len(_frames(full.content)) == 24
    assert env.client.get(path).status_code == 410
    assert _retrieve(env, key, queue_id).status_code == 404
    assert not (env.settings.data_dir / "media" / "jobs" / queue_id).exists()


@pytest.mark.parametrize(
    "settings", [{"public_base_url": "https://videos.example.org/"}], indirect=True
)
def test_download_url_uses_the_configured_base_url_not_the_host_header(env: Env) -> None:
    key = env.make_key()
    response = env.post(
        "/video/queue",
        {"model": PRIVATE, "prompt": "x", "duration": "1s"},
        key,
        headers={"Host": "attacker.example"},
    )
    url = response.json()["download_url"]
    assert url.startswith("https://videos.example.org/v1/share/read/")


def test_api_processes_sharing_a_data_dir_honour_each_others_links(
    env: Env, workers: Supervisor, clock: ManualClock
) -> None:
    secret_file = env.settings.data_dir / "link_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    _, path = _done_link(env)
    with TestClient(create_app(env.settings, clock=clock)) as second_process:
        assert second_process.get(path).status_code == 200
        assert second_process.delete(path).status_code == 200
    _error(env.client.get(path), 410, "LINK_REVOKED")


def test_head_describes_the_video_without_using_up_a_fetch(
    env: Env, workers: Supervisor, clock: ManualClock
) -> None:
    _, path = _done_link(env)
    size = len(env.client.get(path).content)
    for _ in range(8):
        head = env.client.head(path)
        assert head.status_code == 200
        assert head.headers["content-type"] == "video/mp4"
        assert int(head.headers["content-length"]) == size
        assert head.headers["accept-ranges"] == "bytes"
        assert head.content == b""
        clock.advance(10)  # outside the burst window
    for _ in range(4):
        assert env.client.get(path).status_code == 200
        clock.advance(10)
    _error(env.client.get(path), 410, "LINK_USED_UP")
    assert env.client.head(path).status_code == 410
