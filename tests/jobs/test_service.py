"""The jobs service: cheap refusals before media work, every input role reaching the engine,
reads that do not wait for writers, and ids no database can hold."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.conftest import Env, build_env, load_job
from tests.media_files import clip, data_url, solid_png, wav
from tests.media_server import MediaServer
from videoqueue.clock import SystemClock
from videoqueue.db.dialect import READ_ONLY_OPTION
from videoqueue.engines.base import JobInput, ProgressCallback, VideoInfo
from videoqueue.jobs.service import JobService, Payer, Pending
from videoqueue.jobs.worker import Worker
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url

I2V = "wan-2.6-image-to-video"
SEEDANCE_R2V = "seedance-2-0-reference-to-video-basic"
KLING_R2V = "kling-o3-pro-reference-to-video"


def _i2v(image_url: str) -> dict[str, Any]:
    return {"model": I2V, "prompt": "a slow pan", "duration": "5s", "image_url": image_url}


def test_a_short_balance_is_refused_before_any_url_is_fetched(
    local_env: Env, server: MediaServer
) -> None:
    url = server.serve("/still.png", solid_png(640, 360))
    key = local_env.make_key(balance_usd="0.01")

    response = local_env.post("/video/queue", _i2v(url), key)

    assert response.status_code == 402, response.text
    assert response.json()["error"].startswith("Insufficient USD or Diem balance")
    assert server.hits == []


def test_an_idempotent_replay_fetches_nothing(local_env: Env, server: MediaServer) -> None:
    url = server.serve("/still.png", solid_png(640, 360))
    key = local_env.make_key()
    headers = {"Idempotency-Key": "order-17"}

    first = local_env.post("/video/queue", _i2v(url), key, headers=headers)
    assert first.status_code == 200, first.text
    assert len(server.hits) == 1
    replay = local_env.post("/video/queue", _i2v(url), key, headers=headers)

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert len(server.hits) == 1, "the replay fetched the image again"


class Recording:
    """An engine that keeps what it was given and writes a stand-in output."""

    name = "preview"

    def __init__(self) -> None:
        self.jobs: list[JobInput] = []
        self.files: dict[Path, bytes] = {}

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        self.jobs.append(job)
        media = job.media
        paths = [media.image, media.end_image, media.audio, media.video]
        paths += [*media.reference_images, *media.reference_videos, *media.reference_audios]
        paths += [*media.scene_images]
        for element in media.elements:
            paths += [element.frontal_image, *element.reference_images, element.video]
        self.files.update({p: p.read_bytes() for p in paths if p is not None})
        output_path.write_bytes(b"not really an mp4")
        return VideoInfo(width=2, height=2, fps=24.0, duration_s=1.0, frames=24, has_audio=False)


def _run_one(env: Env) -> Recording:
    engine = Recording()
    worker = Worker(
        db=env.db,
        storage=storage_from_url(env.settings.resolved_storage_url),
        engines={"preview": engine},
        clock=SystemClock(),
        lease_seconds=30,
        heartbeat_seconds=5,
    )
    assert worker.run_once()
    assert len(engine.jobs) == 1
    return engine


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_input_role_of_a_seedance_reference_job_reaches_the_engine(env: Env) -> None:
    images = [solid_png(300, 300, (200, 10, 10)), solid_png(320, 320, (10, 200, 10))]
    videos = [clip(3.0), clip(4.0, size=96)]
    audios = [wav(2.5), wav(3.0)]
    body = {
        "model": SEEDANCE_R2V,
        "prompt": "Refer to <Video 1>",
        "duration": "5s",
        "reference_image_urls": [data_url(i) for i in images],
        "reference_video_urls": [data_url(v) for v in videos],
        "reference_audio_urls": [data_url(audios[0])],
        "audio_url": data_url(audios[1]),
    }
    response = env.post("/video/queue", body, env.make_key())
    assert response.status_code == 200, response.text

    engine = _run_one(env)
    media = engine.jobs[0].media
    sent = engine.files
    assert [sent[p] for p in media.reference_images] == images
    assert [sent[p] for p in media.reference_videos] == videos
    assert [sent[p] for p in media.reference_audios] == [audios[0]]
    assert media.audio is not None and sent[media.audio] == audios[1]
    assert (media.image, media.end_image, media.video, media.elements) == (None, None, None, ())
    assert engine.jobs[0].frame_count == 5 * 24


def test_every_input_role_of_a_kling_elements_job_reaches_the_engine(env: Env) -> None:
    start = solid_png(640, 360, (1, 2, 3))
    fronts = [solid_png(300, 300, (90, 0, 0)), solid_png(300, 300, (0, 90, 0))]
    views = [solid_png(300, 300, (0, 0, 90))]
    element_clip = clip(3.0)
    scenes = [solid_png(400, 300, (50, 50, 50)), solid_png(400, 300, (60, 60, 60))]
    body = {
        "model": KLING_R2V,
        "prompt": "@Element1 meets @Element2 in @Image1",
        "duration": "5s",
        "image_url": data_url(start),
        "elements": [
            {
                "frontal_image_url": data_url(fronts[0]),
                "reference_image_urls": [data_url(v) for v in views],
                "video_url": data_url(element_clip),
            },
            {"frontal_image_url": data_url(fronts[1])},
        ],
        "scene_image_urls": [data_url(s) for s in scenes],
    }
    response = env.post("/video/queue", body, env.make_key())
    assert response.status_code == 200, response.text

    engine = _run_one(env)
    media = engine.jobs[0].media
    sent = engine.files
    assert media.image is not None and sent[media.image] == start
    first, second = media.elements
    assert sent[first.frontal_image] == fronts[0]
    assert [sent[p] for p in first.reference_images] == views
    assert first.video is not None and sent[first.video] == element_clip
    assert (sent[second.frontal_image], second.reference_images, second.video) == (
        fronts[1],
        (),
        None,
    )
    assert [sent[p] for p in media.scene_images] == scenes
    spec = load_job(env.db, response.json()["queue_id"]).job_spec
    assert spec.media.scene_images[1].endswith(_sha(scenes[1]))


def test_an_sqlite_poll_does_not_wait_for_a_writer(env: Env) -> None:
    body = {"model": "wan-2.6-text-to-video", "prompt": "a kite", "duration": "5s"}
    key = env.make_key()
    queued = env.post("/video/queue", body, key)
    assert queued.status_code == 200, queued.text
    jobs: JobService = env.client.app.state.context.jobs  # type: ignore[attr-defined]
    account_id = load_job(env.db, queued.json()["queue_id"]).account_id
    writer = sqlite3.connect(env.settings.data_dir / "videoqueue.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a writer holds the lock (busy_timeout is 30 s)
    results: list[object] = []
    try:
        started = time.monotonic()
        poll = threading.Thread(
            target=lambda: results.append(
                jobs.retrieve(account_id, body["model"], queued.json()["queue_id"])
            )
        )
        poll.start()
        poll.join(5)
        waited = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        poll.join()
    assert waited < 5, "the poll queued behind the writer"
    assert len(results) == 1 and isinstance(results[0], Pending)


@pytest.fixture
def env_on(settings: Settings, database_url: str) -> Iterator[Env]:
    """The app on each database backend."""
    yield from build_env(settings.model_copy(update={"database_url": database_url}))


@pytest.mark.parametrize("queue_id", ["\ud800", "abc\u0000def", "x" * 5000])
@pytest.mark.parametrize("route", ["/video/retrieve", "/video/complete"])
def test_a_queue_id_no_database_can_hold_is_simply_not_found(
    env_on: Env, route: str, queue_id: str
) -> None:
    # Written as JSON escapes (`"\\ud800"`), as a client would send them.
    body = json.dumps({"model": "wan-2.6-text-to-video", "queue_id": queue_id})
    headers = {"Authorization": f"Bearer {env_on.make_key()}", "Content-Type": "application/json"}

    response = env_on.client.post(f"/api/v1{route}", content=body, headers=headers)

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "MEDIA_NOT_FOUND"


def _transactions(jobs: JobService, action: Callable[[], object]) -> list[str]:
    """Whether each transaction `action` opened on the jobs database only read or could write."""
    opened: list[str] = []

    def on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        opened.append("read" if read_only else "write")

    event.listen(jobs.db.engine, "begin", on_begin)
    try:
        action()
    finally:
        event.remove(jobs.db.engine, "begin", on_begin)
    return opened


@dataclass(frozen=True)
class KnownPayer:
    """A caller whose payer is known and whose requests are not counted."""

    known: Payer

    def payer(self) -> Payer:
        return self.known

    def admit(self, _session: Session) -> Payer:
        return self.known


def test_a_queue_without_media_is_one_write_transaction(env: Env) -> None:
    jobs: JobService = env.client.app.state.context.jobs  # type: ignore[attr-defined]
    payer = Payer(env.make_account(10))
    body = {"model": "wan-2.6-text-to-video", "prompt": "a kite", "duration": "5s"}

    assert _transactions(jobs, lambda: jobs.submit(body, KnownPayer(payer))) == ["write"]


def test_a_queue_with_media_reads_once_then_writes_once(env: Env) -> None:
    jobs: JobService = env.client.app.state.context.jobs  # type: ignore[attr-defined]
    payer = Payer(env.make_account(10))
    body = _i2v(data_url(solid_png(640, 360)))

    assert _transactions(jobs, lambda: jobs.submit(body, KnownPayer(payer))) == ["read", "write"]


def test_only_a_queue_with_media_or_a_webhook_may_wait_on_the_network(env: Env) -> None:
    jobs: JobService = env.client.app.state.context.jobs  # type: ignore[attr-defined]
    text = {"model": "wan-2.6-text-to-video", "prompt": "a kite", "duration": "5s"}

    assert not jobs.may_wait_on_network(text)
    assert not jobs.may_wait_on_network({**text, "image_url": "", "reference_image_urls": []})
    assert jobs.may_wait_on_network(_i2v("https://example.com/a.png"))
    assert jobs.may_wait_on_network({**text, "reference_video_urls": ["https://e.com/v.mp4"]})
    assert jobs.may_wait_on_network({**text, "webhook_url": "https://example.com/hook"})
