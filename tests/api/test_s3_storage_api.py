"""The whole flow on S3 storage (a real SeaweedFS): a real worker renders into the bucket,
retrieve streams the MP4 from it, a private model's link serves ranges, and a server set to
redirect answers 307 to a pre-signed URL that serves the same bytes."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlparse

import av
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import RETRIEVE_POLL_S, Env, wait_until
from tests.s3_server import S3Server
from videoqueue.api.app import create_app
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

PUBLIC = "wan-2.5-preview-text-to-video"
PRIVATE = "grok-imagine-text-to-video-private"


@pytest.fixture
def settings(settings: Settings, s3_server: S3Server) -> Settings:
    """The shared test settings, storing media under a fresh prefix of the test bucket."""
    return settings.model_copy(update=s3_server.settings())


def _queue(env: Env, key: str, model: str, duration: str) -> dict[str, Any]:
    body = {
        "model": model,
        "prompt": "A lantern in the snow",
        "duration": duration,
        "resolution": "480p",
        "aspect_ratio": "9:16",
    }
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _retrieve_when_done(env: Env, key: str, model: str, queue_id: str) -> httpx.Response:
    def done() -> httpx.Response | None:
        response = env.post("/video/retrieve", {"model": model, "queue_id": queue_id}, key)
        assert response.status_code == 200, response.text
        finished = response.headers["content-type"] == "video/mp4"
        return response if finished or response.json()["status"] == "COMPLETED" else None

    response: httpx.Response = wait_until(done, timeout=90, interval=RETRIEVE_POLL_S)
    return response


def _frame_count(data: bytes) -> int:
    with av.open(io.BytesIO(data), "r") as container:
        return sum(1 for _ in container.decode(video=0))


def _stored(s3_server: S3Server, settings: Settings, job_id: str) -> bytes:
    """The job's output as the bucket holds it, read past videoqueue."""
    prefix = urlparse(settings.resolved_storage_url).path.strip("/")
    answer = s3_server.client().get_object(
        Bucket=s3_server.bucket, Key=f"{prefix}/jobs/{job_id}/output.mp4"
    )
    return answer["Body"].read()


def _bucket_keys(s3_server: S3Server, settings: Settings) -> list[str]:
    prefix = urlparse(settings.resolved_storage_url).path.strip("/")
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    return [entry["Key"] for entry in listed.get("Contents", [])]


def test_retrieve_streams_the_mp4_the_worker_stored_in_the_bucket(
    env: Env, workers: Supervisor, s3_server: S3Server
) -> None:
    key = env.make_key()
    queue_id = _queue(env, key, PUBLIC, "5s")["queue_id"]
    video = _retrieve_when_done(env, key, PUBLIC, queue_id)
    assert video.headers["content-type"] == "video/mp4"
    assert _frame_count(video.content) == 120
    assert video.content == _stored(s3_server, env.settings, queue_id)

    part = env.post(
        "/video/retrieve", {"model": PUBLIC, "queue_id": queue_id}, key, {"Range": "bytes=10-29"}
    )
    assert part.status_code == 206 and part.content == video.content[10:30]

    done = env.post("/video/complete", {"model": PUBLIC, "queue_id": queue_id}, key)
    assert done.json() == {"success": True}
    assert _bucket_keys(s3_server, env.settings) == [], "complete deletes the job's objects"


def test_a_private_link_streams_ranges_or_redirects_to_the_bucket(
    env: Env, workers: Supervisor, s3_server: S3Server
) -> None:
    key = env.make_key()
    queued = _queue(env, key, PRIVATE, "1s")
    _retrieve_when_done(env, key, PRIVATE, queued["queue_id"])
    path = urlparse(queued["download_url"]).path
    stored = _stored(s3_server, env.settings, queued["queue_id"])

    part = env.client.get(path, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206, part.text
    assert part.headers["content-range"] == f"bytes 0-99/{len(stored)}"
    assert part.content == stored[:100]

    redirecting = env.settings.model_copy(update={"storage_redirect": True})
    with TestClient(create_app(redirecting), follow_redirects=False) as client:
        moved = client.get(path)
        assert moved.status_code == 307
        assert moved.headers["cache-control"] == "private, no-store"
        location = moved.headers["location"]
        assert location.startswith(f"{s3_server.endpoint_url}/{s3_server.bucket}/")
        whole = httpx.get(location)
        assert whole.status_code == 200 and whole.content == stored
        assert _frame_count(whole.content) == 24
        assert whole.headers["content-disposition"] == (
            f'attachment; filename="{queued["queue_id"]}.mp4"'
        )
        resumed = httpx.get(location, headers={"Range": "bytes=100-"})
        assert resumed.status_code == 206 and resumed.content == stored[100:]

        # A video deleted once downloaded must pass through videoqueue: its link streams.
        retrieve = {"model": PRIVATE, "queue_id": queued["queue_id"]}
        env.post("/video/retrieve", {**retrieve, "delete_media_on_completion": True}, key)
        streamed = client.get(path)
    assert streamed.status_code == 200 and streamed.content == stored
    wait_until(lambda: _bucket_keys(s3_server, env.settings) == [], timeout=10)
