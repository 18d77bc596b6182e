"""The preview engine writes a real, deterministic MP4 that honours every field of the job."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageOps

from videoqueue.engines.base import EngineError, JobInput, Media
from videoqueue.engines.preview import PreviewEngine
from videoqueue.media.errors import MediaError
from videoqueue.media.probe import probe_video

Pixels = npt.NDArray[np.uint8]
Samples = npt.NDArray[np.float32]

SMALL = JobInput(
    job_id="job-1",
    model="preview-model",
    prompt="A lighthouse on a cliff at dusk, waves crashing below",
    width=320,
    height=180,
    fps=24,
    duration_s=1.0,
    frame_count=24,
    seed=7,
)


MEDIA_ROLES = {f.name for f in fields(Media)}


def render(path: Path, job: JobInput = SMALL, /, **changes: Any) -> Path:
    """Render `job` with `changes`: its fields, a duration in seconds, or media roles."""
    media = {k: changes.pop(k) for k in list(changes) if k in MEDIA_ROLES}
    if "duration_s" in changes:
        changes["frame_count"] = round(changes["duration_s"] * job.fps)
    changed = replace(job, media=replace(job.media, **media), **changes)
    PreviewEngine().generate(changed, path, lambda _: None)
    return path


def decode_frames(path: Path) -> list[Pixels]:
    with av.open(str(path)) as container:
        frames = container.decode(video=0)
        return [np.asarray(frame.to_ndarray(format="rgb24"), np.uint8) for frame in frames]


def decode_audio(path: Path) -> Samples:
    with av.open(str(path)) as container:
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.concatenate(chunks, axis=1).astype(np.float32)


def mean_difference(a: Pixels, b: Pixels) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def make_image(path: Path, size: tuple[int, int], flip: bool) -> Path:
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    channels = [x, y, np.full_like(x, 90.0)]
    pixels = np.stack(channels[::-1] if flip else channels, axis=-1).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    ImageDraw.Draw(image).rectangle((w // 3, h // 3, w // 2, h // 2), fill=(250, 250, 20))
    image.save(path)
    return path


def expected_fill(path: Path, size: tuple[int, int]) -> Pixels:
    with Image.open(path) as image:
        fitted = ImageOps.fit(image.convert("RGB"), size, method=Image.Resampling.LANCZOS)
    return np.asarray(fitted)


def write_sine(path: Path, frequency: float, seconds: float, rate: int = 44_100) -> Path:
    samples = np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)
    pcm = (0.5 * 32767 * samples).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_output_has_requested_size_rate_and_frame_count(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    info = PreviewEngine().generate(SMALL, path, lambda _: None)

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 24
    frames = decode_frames(path)
    assert len(frames) == 24
    assert frames[0].shape == (180, 320, 3)
    assert probe_video(path) == info
    assert info.frames == 24
    assert info.duration_s == pytest.approx(1.0)
    assert info.has_audio


def test_moov_atom_comes_before_media_data(tmp_path: Path) -> None:
    data = render(tmp_path / "out.mp4").read_bytes()

    assert 0 <= data.index(b"moov") < data.index(b"mdat")


def test_720p_clip_has_exact_geometry(tmp_path: Path) -> None:
    path = render(tmp_path / "out.mp4", width=1280, height=720, duration_s=1.0)

    info = probe_video(path)
    assert (info.width, info.height, info.frames, info.fps) == (1280, 720, 24, 24.0)


def test_no_audio_stream_when_audio_is_off(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    info = PreviewEngine().generate(replace(SMALL, audio=False), path, lambda _: None)

    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 0
    assert not info.has_audio
    assert not probe_video(path).has_audio


def test_synthesized_audio_is_never_silent_and_lasts_as_long_as_video(tmp_path: Path) -> None:
    path = render(tmp_path / "out.mp4", duration_s=2.0)

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert (stream.sample_rate, stream.channels) == (48_000, 2)
    samples = decode_audio(path)
    assert abs(samples.shape[1] / 48_000 - 2.0) <= 1024 / 48_000
    windows = samples[:, : samples.shape[1] // 4800 * 4800].reshape(2, -1, 4800)
    rms = np.sqrt((windows**2).mean(axis=2))
    assert rms.min() > 0.02


def test_frames_change_over_time(tmp_path: Path) -> None:
    frames = decode_frames(render(tmp_path / "out.mp4"))

    assert mean_difference(frames[0], frames[-1]) > 10
    assert mean_difference(frames[0], frames[1]) > 0


def test_same_job_gives_identical_bytes(tmp_path: Path) -> None:
    first = render(tmp_path / "a.mp4").read_bytes()
    second = render(tmp_path / "b.mp4").read_bytes()
    other_seed = render(tmp_path / "c.mp4", seed=8).read_bytes()

    assert first == second
    assert first != other_seed


def test_same_job_with_images_and_audio_file_gives_identical_bytes(tmp_path: Path) -> None:
    job = replace(
        SMALL,
        media=Media(
            image=make_image(tmp_path / "start.png", (400, 300), flip=False),
            end_image=make_image(tmp_path / "end.png", (320, 180), flip=True),
            audio=write_sine(tmp_path / "tone.wav", 330, 0.5),
        ),
    )

    first = render(tmp_path / "a.mp4", job).read_bytes()
    assert render(tmp_path / "b.mp4", job).read_bytes() == first


def test_first_frame_is_start_image_and_last_is_end_image(tmp_path: Path) -> None:
    start = make_image(tmp_path / "start.png", (400, 300), flip=False)
    end = make_image(tmp_path / "end.jpg", (640, 360), flip=True)

    frames = decode_frames(render(tmp_path / "out.mp4", image=start, end_image=end))

    size = (SMALL.width, SMALL.height)
    assert mean_difference(frames[0], expected_fill(start, size)) < 4
    assert mean_difference(frames[-1], expected_fill(end, size)) < 4
    assert mean_difference(frames[0], expected_fill(end, size)) > 40
    assert mean_difference(frames[len(frames) // 2], frames[0]) > 1


def test_reference_images_appear_as_thumbnails(tmp_path: Path) -> None:
    red = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(red)

    def red_pixels(path: Path) -> int:
        frame = decode_frames(path)[5][: SMALL.height // 2, SMALL.width // 2 :].astype(np.int16)
        return int(((frame[..., 0] > 200) & (frame[..., 1] < 60) & (frame[..., 2] < 60)).sum())

    with_thumbnail = red_pixels(render(tmp_path / "a.mp4", reference_images=(red,)))
    without = red_pixels(render(tmp_path / "b.mp4"))
    assert with_thumbnail - without > 300


def test_given_audio_file_is_what_plays(tmp_path: Path) -> None:
    tone = write_sine(tmp_path / "tone.wav", 440.0, 0.4)

    samples = decode_audio(render(tmp_path / "out.mp4", audio=tone)).mean(axis=0)

    spectrum = np.abs(np.fft.rfft(samples))
    frequencies = np.fft.rfftfreq(samples.size, 1 / 48_000)
    assert frequencies[spectrum.argmax()] == pytest.approx(440.0, abs=3)
    assert abs(samples.size / 48_000 - SMALL.duration_s) <= 1024 / 48_000


def test_progress_rises_to_one_in_few_calls(tmp_path: Path) -> None:
    calls: list[float] = []
    PreviewEngine().generate(
        replace(SMALL, duration_s=5.0, frame_count=120), tmp_path / "out.mp4", calls.append
    )

    assert 2 <= len(calls) <= 50
    assert calls == sorted(calls)
    assert calls[-1] == 1.0
    assert all(0 < fraction <= 1 for fraction in calls)


def test_cancelling_through_progress_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"

    def cancel(_: float) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        PreviewEngine().generate(replace(SMALL, duration_s=2.0, frame_count=48), path, cancel)

    assert not path.exists()


def test_odd_dimensions_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        render(tmp_path / "out.mp4", width=321)

    assert not caught.value.refundable


@pytest.mark.parametrize("field", ["image", "end_image", "reference_images"])
def test_unreadable_image_is_a_non_refundable_error(tmp_path: Path, field: str) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    value: Path | tuple[Path, ...] = (broken,) if field == "reference_images" else broken

    with pytest.raises(EngineError, match=field) as caught:
        render(tmp_path / "out.mp4", **{field: value})

    assert not caught.value.refundable


def test_unreadable_audio_is_a_non_refundable_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF but not really audio")

    with pytest.raises(EngineError, match="audio") as caught:
        render(tmp_path / "out.mp4", audio=broken)

    assert not caught.value.refundable


def test_probe_counts_frames_of_webm_without_a_stated_count(tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), "rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    info = probe_video(path)

    assert (info.width, info.height, info.frames, info.fps) == (64, 48, 10, 10.0)
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert not info.has_audio


def test_probe_rejects_a_file_that_is_not_video(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)

    with pytest.raises(MediaError) as caught:
        probe_video(path)

    assert caught.value.status == 400
