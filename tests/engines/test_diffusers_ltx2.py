"""The diffusers engine on a tiny random LTX-2 pipeline, video and sound, loaded from a folder
as real weights are.

Nothing is downloaded: the pipeline is built in code, saved with `save_pretrained` and loaded
back by the engine, offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.conftest import Env
from tests.engines.diffusers_jobs import (
    bound_model,
    decode,
    decode_audio,
    operator_settings,
    queued_video,
)
from tests.engines.diffusers_pipelines import save_tiny_wan
from tests.engines.ltx2_pipelines import (
    save_tiny_ltx2,
    tiny_connectors,
    tiny_ltx2,
    tiny_video_vae,
)
from videoqueue.engines.base import EngineError, JobInput, Media, VideoInfo
from videoqueue.engines.diffusers import DiffusersEngine, ltx2
from videoqueue.media.mp4 import AAC_FRAME_SAMPLES, SAMPLE_RATE
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

STEPS = 2


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ltx2(tmp_path_factory.mktemp("ltx2") / "LTX-2")


@pytest.fixture(scope="module")
def engine(folder: Path) -> DiffusersEngine:
    return DiffusersEngine(folder, "ltx2", device="cpu", steps=STEPS)


def job(
    seed: int = 1,
    *,
    media: Media[Path] | None = None,
    audio: bool = True,
    width: int = 100,
    height: int = 60,
    duration_s: float = 1.0,
) -> JobInput:
    return JobInput(
        job_id="j",
        model="ltx-2",
        prompt="waves crash on rocks under a grey sky",
        seed=seed,
        width=width,
        height=height,
        duration_s=duration_s,
        audio=audio,
        media=media or Media(),
    )


def run(engine: DiffusersEngine, the_job: JobInput, out: Path) -> tuple[bytes, VideoInfo]:
    info = engine.generate(the_job, out, lambda _: None)
    return out.read_bytes(), info


def assert_sound_lasts_as_long_as_the_video(data: bytes) -> None:
    frames, fps = decode(data)
    sound = decode_audio(data)
    assert sound is not None, "the MP4 has an audio track"
    samples, rate = sound
    assert rate == SAMPLE_RATE and samples.shape[0] == 2
    assert abs(samples.shape[1] - len(frames) / fps * SAMPLE_RATE) <= AAC_FRAME_SAMPLES
    assert np.abs(samples).max() > 0, "the track carries the generated sound, not silence"


def image(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (80, 50), color).save(path)
    return path


def test_ltx2_maps_durations_and_sizes_onto_its_native_grid() -> None:
    assert [ltx2.GRID.frame_count(s) for s in (5.0, 1.0, 0.7, 0.1)] == [121, 25, 17, 1]
    assert ltx2.GRID.frame_size(1280, 720) == (1280, 704)
    assert ltx2.GRID.frame_size(854, 480) == (864, 480)
    assert ltx2.GRID.frame_size(100, 60) == (96, 64)
    assert ltx2.GRID.frame_size(40, 40) == (64, 64)


def test_mp4_has_the_frames_size_fps_and_sound_the_recipe_promises(
    engine: DiffusersEngine, tmp_path: Path
) -> None:
    data, info = run(engine, job(), tmp_path / "out.mp4")
    frames, fps = decode(data)
    assert frames.shape == (25, 64, 96, 3)
    assert fps == 24
    assert (info.frames, info.height, info.width, info.fps) == (25, 64, 96, 24.0)
    assert info.has_audio
    assert_sound_lasts_as_long_as_the_video(data)


def test_a_job_without_audio_gets_a_silent_mp4(engine: DiffusersEngine, tmp_path: Path) -> None:
    data, info = run(engine, job(audio=False, duration_s=0.7), tmp_path / "out.mp4")
    assert decode_audio(data) is None
    assert not info.has_audio
    assert decode(data)[0].shape[0] == 17


def test_same_seed_gives_the_same_video_and_another_seed_another(
    engine: DiffusersEngine, tmp_path: Path
) -> None:
    first, again, other = (
        run(engine, job(seed, width=64, height=64, duration_s=0.3), tmp_path / f"{n}.mp4")[0]
        for n, seed in enumerate((7, 7, 8))
    )
    assert first == again
    assert not np.array_equal(decode(first)[0], decode(other)[0])


def test_progress_is_reported_at_every_step(engine: DiffusersEngine, tmp_path: Path) -> None:
    seen: list[float] = []
    engine.generate(job(duration_s=0.3), tmp_path / "out.mp4", seen.append)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
    assert seen[1 : 1 + STEPS] == [0.45, 0.9]


def test_an_image_makes_it_image_to_video_with_sound(
    engine: DiffusersEngine, tmp_path: Path
) -> None:
    red, blue = (
        image(tmp_path / "red.png", (220, 30, 30)),
        image(tmp_path / "blue.png", (0, 0, 255)),
    )
    from_red, _ = run(engine, job(media=Media(image=red)), tmp_path / "red.mp4")
    from_blue, info = run(engine, job(media=Media(image=blue)), tmp_path / "blue.mp4")
    frames, fps = decode(from_red)
    assert frames.shape == (25, 64, 96, 3) and fps == 24
    assert not np.array_equal(frames, decode(from_blue)[0]), "the image conditions the video"
    assert info.has_audio
    assert_sound_lasts_as_long_as_the_video(from_red)


def test_an_end_image_is_refused(engine: DiffusersEngine, tmp_path: Path) -> None:
    media = Media(
        image=image(tmp_path / "a.png", (0, 0, 0)), end_image=image(tmp_path / "b.png", (9, 9, 9))
    )
    with pytest.raises(EngineError, match="start image only"):
        engine.generate(job(media=media), tmp_path / "out.mp4", lambda _: None)
    assert not (tmp_path / "out.mp4").exists()


def test_a_folder_of_another_family_is_refused(tmp_path: Path) -> None:
    wan = save_tiny_wan(tmp_path / "wan")
    with pytest.raises(EngineError, match="an LTX-2 folder holds an LTX2Pipeline, not WanPipeline"):
        DiffusersEngine(wan, "ltx2", device="cpu")


def test_an_ltx_2_3_folder_or_a_vae_off_the_promised_grid_is_refused() -> None:
    ltx2.check(tiny_ltx2())
    ltx_2_3 = tiny_connectors(
        per_modality_projections=True, video_hidden_dim=16, audio_hidden_dim=8
    )
    with pytest.raises(EngineError, match=r"LTX-2\.3 or later"):
        ltx2.check(tiny_ltx2(connectors=ltx_2_3))
    sixteen_times = tiny_video_vae(temporal_compression_ratio=16)
    with pytest.raises(EngineError, match="compresses 16x in time and 32x in space"):
        ltx2.check(tiny_ltx2(vae=sixteen_times))


OVERLAY = bound_model("tiny-ltx-2-text-to-video", "tiny-ltx-2", 24, sound=True)


@pytest.fixture
def settings(tmp_path: Path, folder: Path) -> Settings:
    """The operator's binding: a model id → an engine name → the ltx2 family and its folder."""
    factory = f"videoqueue.engines.diffusers:load?family=ltx2&path={folder}&steps=2"
    return operator_settings(tmp_path, OVERLAY, {"tiny-ltx-2": factory})


def test_queued_jobs_end_in_mp4s_with_and_without_sound(env: Env, workers: Supervisor) -> None:
    body = {
        "model": "tiny-ltx-2-text-to-video",
        "prompt": "a red car drives through a city at night",
        "duration": "1s",
        "resolution": "256p",
        "aspect_ratio": "1:1",
        "audio": True,
    }
    with_sound = queued_video(env, body)
    frames, fps = decode(with_sound)
    assert frames.shape == (25, 256, 256, 3)
    assert fps == 24
    assert_sound_lasts_as_long_as_the_video(with_sound)

    silent = queued_video(env, {**body, "audio": False})
    assert decode(silent)[0].shape == (25, 256, 256, 3)
    assert decode_audio(silent) is None
