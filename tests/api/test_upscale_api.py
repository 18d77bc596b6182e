"""`topaz-video-upscale` through the API: probing, pricing, the size cap, refunds."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import select

from tests.conftest import Env, wait_until
from tests.media_files import data_url, faststart_noise_mp4
from videoqueue.billing.models import Account, LedgerEntry, LedgerKind
from videoqueue.workers import Supervisor

MODEL = "topaz-video-upscale"


def make_mp4(
    width: int, height: int, seconds: float = 1.0, fps: int = 24, *, audio: bool = True
) -> bytes:
    """A small H.264 (+ AAC) MP4 with moving content."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=48000) if audio else None
        frames = int(seconds * fps)
        for i in range(frames):
            pixels = np.full((height, width, 3), (i * 7) % 255, dtype=np.uint8)
            pixels[:, : (i * 3) % width] = 40
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            samples = int(seconds * 48000)
            tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.ascontiguousarray(np.stack([tone[start : start + 1024]] * 2))
                samples_frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                samples_frame.sample_rate = 48000
                samples_frame.pts = start
                samples_frame.time_base = Fraction(1, 48000)
                container.mux(sound.encode(samples_frame))
            container.mux(sound.encode())
    return buffer.getvalue()


def _balance(env: Env, account_id: str) -> int:
    with env.db.transaction() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.balance_micros


def test_upscale_x2_doubles_the_size_and_keeps_frames_and_audio(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    source = make_mp4(176, 144, seconds=1.0)
    body = {"model": MODEL, "video_url": data_url(source), "upscale_factor": 2}
    queued = env.post("/video/queue", body, key)
    assert queued.status_code == 200, queued.text
    ref = {"model": MODEL, "queue_id": queued.json()["queue_id"]}
    data = wait_until(
        lambda: (
            (r := env.post("/video/retrieve", ref, key)).headers["content-type"] == "video/mp4"
            and r.content
        ),
        timeout=60,
    )
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (352, 288)
        assert container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 24


def test_upscale_refuses_resolution_and_needs_a_video(env: Env) -> None:
    key = env.make_key()
    source = data_url(make_mp4(64, 48, audio=False))
    with_resolution = env.post(
        "/video/queue", {"model": MODEL, "video_url": source, "resolution": "720p"}, key
    )
    assert with_resolution.status_code == 400
    assert with_resolution.json() == {"error": "Use upscale_factor instead of resolution"}
    missing = env.post("/video/queue", {"model": MODEL, "upscale_factor": 2}, key)
    assert missing.status_code == 400
    assert missing.json()["issues"][0]["path"] == ["video_url"]


def test_upscale_over_the_output_cap_is_refused_before_charging(env: Env) -> None:
    account = env.make_account(10)
    key = env.make_key(account)
    source = data_url(make_mp4(1280, 720, seconds=0.5, audio=False))
    response = env.post(
        "/video/queue", {"model": MODEL, "video_url": source, "upscale_factor": 4}, key
    )
    assert response.status_code == 400
    assert "5120x2880" in response.json()["error"]
    assert _balance(env, account) == 10_000_000


@pytest.mark.parametrize("payload", [b"not a video at all", b"\x00" * 4096])
def test_undecodable_upscale_input_is_a_400(env: Env, payload: bytes) -> None:
    key = env.make_key()
    response = env.post("/video/queue", {"model": MODEL, "video_url": data_url(payload)}, key)
    assert response.status_code == 400
    assert "video_url" in response.json()["error"]


def test_audio_only_upscale_input_is_a_400(env: Env) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        sound = container.add_stream("aac", rate=48000)
        for start in range(0, 48000, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = 48000, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    key = env.make_key()
    response = env.post(
        "/video/queue", {"model": MODEL, "video_url": data_url(buffer.getvalue())}, key
    )
    assert response.status_code == 400
    assert "video_url" in response.json()["error"]


def test_charge_is_priced_from_the_probed_video_and_equals_the_quote(env: Env) -> None:
    account = env.make_account(10)
    key = env.make_key(account)
    source = data_url(make_mp4(640, 360, seconds=2.0, audio=False))
    body = {"model": MODEL, "video_url": source, "upscale_factor": 2}
    quote = env.post("/video/quote", body, key)
    assert quote.status_code == 200, quote.text
    # 360 lines x2 = 720 → the ≤720 tier, $0.013/s, 2 s → $0.026 → $0.03
    assert quote.json() == {"quote": 0.03}
    assert env.post("/video/queue", body, key).status_code == 200
    with env.db.transaction() as session:
        charged = session.scalar(
            select(LedgerEntry.amount_micros).where(
                LedgerEntry.account_id == account, LedgerEntry.kind == LedgerKind.CHARGE
            )
        )
    assert charged == -30_000


def test_quote_from_input_height_follows_the_published_tiers(env: Env) -> None:
    key = env.make_key()
    cases = [(720, 2, "10", 1.0), (480, 2, "10", 0.25), (360, 4, "10", 1.0), (720, 1, "10s", 0.13)]
    for height, factor, duration, price in cases:
        body = {
            "model": MODEL,
            "duration": duration,
            "input_height": height,
            "upscale_factor": factor,
        }
        response = env.post("/video/quote", body, key)
        assert response.status_code == 200, response.text
        assert response.json() == {"quote": price}, (height, factor)


def test_truncated_input_fails_the_job_and_refunds(
    env: Env, workers: Supervisor, tmp_path: Path
) -> None:
    account = env.make_account(10)
    key = env.make_key(account)
    whole = faststart_noise_mp4(tmp_path / "whole.mp4", 320, 240, frames=48, seed=1)
    # The header (moov first) still describes 48 frames, so the queue-time probe accepts it.
    truncated = whole[: len(whole) // 3]
    response = env.post("/video/queue", {"model": MODEL, "video_url": data_url(truncated)}, key)
    assert response.status_code == 200, response.text
    assert _balance(env, account) < 10_000_000
    ref = {"model": MODEL, "queue_id": response.json()["queue_id"]}
    failed = wait_until(
        lambda: (r := env.post("/video/retrieve", ref, key)).status_code != 200 and r, timeout=60
    )
    assert failed.status_code == 500
    assert failed.json()["credits_refunded"] is True
    assert _balance(env, account) == 10_000_000
