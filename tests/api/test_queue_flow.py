"""A prompt goes in via the HTTP app, a real worker process renders it, out comes an MP4."""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np

from tests.conftest import Env, png_data_url, wait_until
from tests.media_files import duration_s
from videoqueue.workers import Supervisor

T2V = "wan-2.5-preview-text-to-video"
I2V = "wan-2.5-preview-image-to-video"


def _queue(env: Env, key: str, **body: Any) -> str:
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == body["model"]
    return str(response.json()["queue_id"])


def _wait_for_mp4(env: Env, key: str, model: str, queue_id: str, **extra: Any) -> bytes:
    def done() -> bytes | None:
        response = env.post("/video/retrieve", {"model": model, "queue_id": queue_id, **extra}, key)
        assert response.status_code == 200, response.text
        if response.headers["content-type"] == "video/mp4":
            content: bytes = response.content
            return content
        assert response.json()["status"] == "PROCESSING"
        return None

    return bytes(wait_until(done, timeout=90))


def test_text_to_video_gives_a_decodable_mp4_matching_the_request(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    queue_id = _queue(
        env,
        key,
        model=T2V,
        prompt="A red kite over dunes",
        duration="5s",
        resolution="480p",
        aspect_ratio="9:16",
    )
    data = _wait_for_mp4(env, key, T2V, queue_id)
    with av.open(io.BytesIO(data), "r") as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (270, 480)
        assert video.average_rate == 24
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 120
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 5
    with av.open(io.BytesIO(data), "r") as container:
        assert container.streams.audio, "wan 2.5 always has audio"
    assert abs(duration_s(data) - 5.0) < 0.1


def test_processing_status_reports_times_in_ms(env: Env) -> None:
    key = env.make_key()
    queue_id = _queue(env, key, model=T2V, prompt="x", duration="5s")
    body = env.post("/video/retrieve", {"model": T2V, "queue_id": queue_id}, key).json()
    assert body["status"] == "PROCESSING"
    assert body["average_execution_time"] == 5_000
    assert isinstance(body["execution_duration"], int) and body["execution_duration"] >= 0


def test_image_to_video_starts_on_the_given_image(env: Env, workers: Supervisor) -> None:
    key = env.make_key()
    image = png_data_url(640, 480, (30, 140, 220))
    queue_id = _queue(
        env, key, model=I2V, prompt="the sky", duration="5s", resolution="480p", image_url=image
    )
    data = _wait_for_mp4(env, key, I2V, queue_id)
    with av.open(io.BytesIO(data), "r") as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert first.shape == (480, 640, 3), "aspect ratio follows the image"
    assert np.abs(first.astype(int) - np.array([30, 140, 220])).mean() < 8
