"""Seedance 2.5 R2V with `duration: "auto"` / `aspect_ratio: "auto"`: the output follows the
source clip, which must last 4-30 s; it renders and bills as long as the source."""

from __future__ import annotations

import numpy as np

from tests.conftest import Env, load_job
from tests.media_files import data_url, encode_video

MODEL = "seedance-2-5-reference-to-video-basic"


def _wide_clip(seconds: float, fps: int = 4) -> str:
    frames = [
        np.full((90, 160, 3), (i * 9) % 255, dtype=np.uint8) for i in range(round(seconds * fps))
    ]
    return data_url(encode_video(frames, fps), "video/mp4")


def _body(seconds: float) -> dict[str, object]:
    return {
        "model": MODEL,
        "prompt": "Extend <Video 1>, generate a sunset",
        "duration": "auto",
        "aspect_ratio": "auto",
        "resolution": "480p",
        "reference_video_urls": [_wide_clip(seconds)],
    }


def test_a_source_clip_shorter_than_4_s_is_refused(env: Env) -> None:
    response = env.post("/video/queue", _body(3.0), env.make_key())
    assert response.status_code == 422
    assert response.json()["code"] == "VIDEO_DURATION_TOO_SHORT"
    assert response.json()["error"].startswith("reference_video_urls[0]: ")


def test_the_output_takes_the_source_clips_length_and_shape(env: Env) -> None:
    response = env.post("/video/queue", _body(5.0), env.make_key())
    assert response.status_code == 200, response.text
    job = load_job(env.db, response.json()["queue_id"])
    params, price = job.spec, job.price_micros
    assert params["duration_s"] == 5.0
    assert (params["width"], params["height"]) == (854, 480), "16:9 like the source clip"
    # (5 s of source + 5 s of output) x the 480p reference-video rate, $0.1685/s
    assert price == 1_690_000
