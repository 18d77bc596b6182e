"""The contract every engine keeps, checked on each built-in one: the MP4 it writes is what its
`VideoInfo` says, progress rises to 1, a cancel raised by `progress` stops it and leaves no
file, the same job gives the same frames, and sound follows the job's `audio` flag.

Engine-specific behaviour (a family's grid, the upscaler's cap) is tested beside each engine.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import pytest

from tests.engines.test_upscale import make_video
from videoqueue.engines.base import Engine, JobCancelled, JobInput, Media

HAS_DIFFUSERS = all(importlib.util.find_spec(m) for m in ("torch", "diffusers"))


@dataclass(frozen=True)
class Case:
    """An engine built once, and the job it is given (inputs made in `folder`)."""

    build: Callable[[Path], Engine]
    job: Callable[[Path], JobInput]
    makes_sound: bool


def _preview(_folder: Path) -> Engine:
    from videoqueue.engines.preview import PreviewEngine

    return PreviewEngine()


def _upscale(_folder: Path) -> Engine:
    from videoqueue.engines.upscale import UpscaleEngine

    return UpscaleEngine()


def _wan(folder: Path) -> Engine:
    from tests.engines.diffusers_pipelines import save_tiny_wan
    from videoqueue.engines.diffusers import DiffusersEngine

    return DiffusersEngine(save_tiny_wan(folder / "wan"), "wan21", device="cpu", steps=2)


def _ltx2(folder: Path) -> Engine:
    from tests.engines.ltx2_pipelines import save_tiny_ltx2
    from videoqueue.engines.diffusers import DiffusersEngine

    return DiffusersEngine(save_tiny_ltx2(folder / "ltx2"), "ltx2", device="cpu", steps=2)


def _text_job(_folder: Path) -> JobInput:
    return JobInput(
        job_id="j",
        model="m",
        prompt="a cat walks on the beach",
        width=64,
        height=64,
        fps=24,
        frame_count=9,
        duration_s=9 / 24,
        seed=5,
    )


def _upscale_job(folder: Path) -> JobInput:
    source = make_video(folder / "source.mp4", 32, 24, frames=6)
    return JobInput(job_id="j", model="m", upscale_factor=2, media=Media(video=source))


needs_diffusers = pytest.mark.skipif(not HAS_DIFFUSERS, reason="the gpu extra is not installed")
CASES = {
    "preview": (Case(_preview, _text_job, makes_sound=True), ()),
    "upscale": (Case(_upscale, _upscale_job, makes_sound=False), ()),
    "diffusers-wan21": (Case(_wan, _text_job, makes_sound=False), (needs_diffusers,)),
    "diffusers-ltx2": (Case(_ltx2, _text_job, makes_sound=True), (needs_diffusers,)),
}
EVERY_ENGINE = [pytest.param(c, id=name, marks=marks) for name, (c, marks) in CASES.items()]
SOUNDING = [
    pytest.param(c, id=name, marks=marks) for name, (c, marks) in CASES.items() if c.makes_sound
]


def _built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Engine, JobInput]:
    chosen: Case = request.param
    folder = tmp_path_factory.mktemp("engine")
    return chosen.build(folder), chosen.job(folder)


@pytest.fixture(scope="module", params=EVERY_ENGINE)
def case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Engine, JobInput]:
    return _built(request, tmp_path_factory)


@pytest.fixture(scope="module", params=SOUNDING)
def sounding(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Engine, JobInput]:
    """The engines that make sound of their own."""
    return _built(request, tmp_path_factory)


def decoded(path: Path) -> tuple[np.ndarray, float, bool]:
    """The frames (n, h, w, 3), the frame rate, and whether there is an audio track."""
    with av.open(io.BytesIO(path.read_bytes()), "r") as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(frames), rate, bool(container.streams.audio)


def test_the_mp4_is_what_the_video_info_says(case: tuple[Engine, JobInput], tmp_path: Path) -> None:
    engine, job = case
    info = engine.generate(job, tmp_path / "out.mp4", lambda _: None)
    frames, fps, has_audio = decoded(tmp_path / "out.mp4")
    assert frames.shape == (info.frames, info.height, info.width, 3)
    assert fps == pytest.approx(info.fps)
    assert info.duration_s == pytest.approx(info.frames / info.fps, abs=1 / info.fps)
    assert has_audio == info.has_audio


def test_progress_rises_to_one(case: tuple[Engine, JobInput], tmp_path: Path) -> None:
    engine, job = case
    seen: list[float] = []
    engine.generate(job, tmp_path / "out.mp4", seen.append)
    assert len(seen) >= 2
    assert seen == sorted(seen)
    assert seen[0] >= 0.0 and seen[-1] == 1.0


def test_a_cancel_raised_by_progress_stops_it_and_leaves_no_file(
    case: tuple[Engine, JobInput], tmp_path: Path
) -> None:
    engine, job = case
    calls: list[float] = []

    def cancel_on_second_call(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            raise JobCancelled("the owner deleted the job")

    out = tmp_path / "out.mp4"
    with pytest.raises(JobCancelled):
        engine.generate(job, out, cancel_on_second_call)
    assert len(calls) == 2, "nothing ran after the cancel"
    assert not out.exists()


def test_the_same_job_gives_the_same_frames(case: tuple[Engine, JobInput], tmp_path: Path) -> None:
    engine, job = case
    first, again = (tmp_path / "first.mp4", tmp_path / "again.mp4")
    engine.generate(job, first, lambda _: None)
    engine.generate(job, again, lambda _: None)
    assert np.array_equal(decoded(first)[0], decoded(again)[0])


def test_sound_follows_the_jobs_audio_flag(
    sounding: tuple[Engine, JobInput], tmp_path: Path
) -> None:
    engine, job = sounding
    loud = engine.generate(job, tmp_path / "loud.mp4", lambda _: None)
    quiet = engine.generate(replace(job, audio=False), tmp_path / "quiet.mp4", lambda _: None)
    assert (loud.has_audio, decoded(tmp_path / "loud.mp4")[2]) == (True, True)
    assert (quiet.has_audio, decoded(tmp_path / "quiet.mp4")[2]) == (False, False)
