"""The diffusers engine on tiny random Wan 2.1 pipelines, loaded from a folder as real weights are.

Nothing is downloaded: each pipeline is built in code, saved with `save_pretrained` and loaded
back by the engine, offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.conftest import Env
from tests.engines.diffusers_jobs import bound_model, decode, operator_settings, queued_video
from tests.engines.diffusers_pipelines import WanKind, save_tiny_wan
from videoqueue.engines.base import EngineError, JobInput, Media
from videoqueue.engines.diffusers import DiffusersEngine, ltx2, wan21, wan22, wan22_ti2v
from videoqueue.engines.diffusers.engine import FAMILIES
from videoqueue.engines.diffusers_families import FAMILIES as DECLARED
from videoqueue.engines.isolation import load_engine
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

STEPS = 2


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[WanKind, Path]]:
    root = tmp_path_factory.mktemp("wan")
    yield {kind: save_tiny_wan(root / kind, kind) for kind in ("t2v", "i2v", "flf2v")}


@pytest.fixture(scope="module")
def t2v(folders: dict[WanKind, Path]) -> DiffusersEngine:
    return DiffusersEngine(folders["t2v"], "wan21", device="cpu", steps=STEPS)


def job(
    seed: int = 1,
    *,
    media: Media[Path] | None = None,
    width: int = 100,
    height: int = 60,
    duration_s: float = 1.0,
) -> JobInput:
    return JobInput(
        job_id="j",
        model="wan",
        prompt="a cat walks on the beach",
        seed=seed,
        width=width,
        height=height,
        duration_s=duration_s,
        media=media or Media(),
    )


def run(engine: DiffusersEngine, the_job: JobInput, out: Path) -> bytes:
    """The MP4's bytes, checked against the `VideoInfo` the engine returned."""
    info = engine.generate(the_job, out, lambda _: None)
    data = out.read_bytes()
    frames, fps = decode(data)
    assert (info.frames, info.height, info.width, 3) == frames.shape
    assert info.fps == fps
    return data


def test_wan_maps_durations_and_sizes_onto_its_native_grid() -> None:
    assert [wan21.GRID.frame_count(s) for s in (5.0, 1.0, 0.1)] == [81, 17, 1]
    assert wan21.GRID.frame_size(854, 480) == (848, 480)
    assert wan21.GRID.frame_size(1280, 720) == (1280, 720)
    assert wan21.GRID.frame_size(100, 60) == (96, 64)


def test_every_recipe_renders_on_the_grid_its_family_declares() -> None:
    assert set(FAMILIES) <= set(DECLARED), "a family's capabilities are checked at load"
    assert DECLARED["wan21"].grid == wan21.GRID
    assert DECLARED["wan22"].grid == wan22.GRID
    assert DECLARED["wan22-ti2v"].grid == wan22_ti2v.GRID
    assert DECLARED["ltx2"].grid == ltx2.GRID


def test_t2v_mp4_has_the_frames_size_and_fps_the_recipe_promises(
    t2v: DiffusersEngine, tmp_path: Path
) -> None:
    frames, fps = decode(run(t2v, job(), tmp_path / "out.mp4"))
    assert frames.shape == (17, 64, 96, 3)
    assert fps == 16


def test_same_seed_gives_the_same_frames_and_another_seed_others(
    t2v: DiffusersEngine, tmp_path: Path
) -> None:
    first, again, other = (
        decode(run(t2v, job(seed, width=64, height=64, duration_s=0.3), tmp_path / f"{n}.mp4"))[0]
        for n, seed in enumerate((7, 7, 8))
    )
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_progress_is_reported_at_every_step(t2v: DiffusersEngine, tmp_path: Path) -> None:
    seen: list[float] = []
    t2v.generate(job(duration_s=0.3), tmp_path / "out.mp4", seen.append)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
    assert seen[1 : 1 + STEPS] == [0.45, 0.9]


def test_a_raising_progress_stops_the_run_with_no_output(
    t2v: DiffusersEngine, tmp_path: Path
) -> None:
    seen: list[float] = []

    class Cancelled(Exception):
        pass

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if fraction > 0:
            raise Cancelled

    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        t2v.generate(job(duration_s=0.3), out, progress)
    assert seen == [0.0, 0.45], "stopped after the first denoising step"
    assert not out.exists()


def image(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (80, 50), color).save(path)
    return path


def test_i2v_starts_from_the_image(folders: dict[WanKind, Path], tmp_path: Path) -> None:
    engine = DiffusersEngine(folders["i2v"], "wan21", device="cpu", steps=STEPS)
    start = image(tmp_path / "start.png", (200, 40, 40))
    frames, _ = decode(
        run(engine, job(media=Media(image=start), duration_s=0.3), tmp_path / "out.mp4")
    )
    assert frames.shape == (5, 64, 96, 3)
    with pytest.raises(EngineError, match="needs an image"):
        engine.generate(job(), tmp_path / "none.mp4", lambda _: None)


def test_flf2v_takes_a_first_and_a_last_frame(folders: dict[WanKind, Path], tmp_path: Path) -> None:
    engine = DiffusersEngine(folders["flf2v"], "wan21", device="cpu", steps=STEPS)
    media = Media(
        image=image(tmp_path / "a.png", (0, 0, 0)),
        end_image=image(tmp_path / "b.png", (255, 255, 255)),
    )
    frames, _ = decode(run(engine, job(media=media, duration_s=0.3), tmp_path / "out.mp4"))
    assert frames.shape[0] == 5


def test_text_to_video_refuses_an_image(t2v: DiffusersEngine, tmp_path: Path) -> None:
    media = Media(image=image(tmp_path / "a.png", (0, 0, 0)))
    with pytest.raises(EngineError, match="takes no image"):
        t2v.generate(job(media=media), tmp_path / "out.mp4", lambda _: None)


def test_a_missing_or_corrupt_folder_fails_at_construction(
    folders: dict[WanKind, Path], tmp_path: Path
) -> None:
    with pytest.raises(EngineError, match="not a diffusers pipeline folder"):
        DiffusersEngine(tmp_path / "nowhere", "wan21", device="cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    for part in folders["t2v"].rglob("*"):
        if part.is_file():
            target = broken / part.relative_to(folders["t2v"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(part.read_bytes())
    for weights in (broken / "transformer").glob("*.safetensors"):
        weights.write_bytes(b"not safetensors")
    with pytest.raises(EngineError, match="cannot load the pipeline"):
        DiffusersEngine(broken, "wan21", device="cpu")
    with pytest.raises(EngineError, match="unknown diffusers family"):
        DiffusersEngine(folders["t2v"], "wan99", device="cpu")


def test_a_factory_string_carries_the_family_and_folder(folders: dict[WanKind, Path]) -> None:
    engine = load_engine(
        f"videoqueue.engines.diffusers:load?family=wan21&path={folders['t2v']}&device=cpu&steps=3"
    )
    assert isinstance(engine, DiffusersEngine)
    assert engine.sampling.steps == 3


OVERLAY = bound_model("tiny-wan-text-to-video", "tiny-wan", 16)


@pytest.fixture
def settings(tmp_path: Path, folders: dict[WanKind, Path]) -> Settings:
    """The operator's binding: a model id → an engine name → a family and a weights folder."""
    factory = f"videoqueue.engines.diffusers:load?family=wan21&path={folders['t2v']}&steps=2"
    return operator_settings(tmp_path, OVERLAY, {"tiny-wan": factory})


def test_a_queued_job_ends_in_the_mp4_the_recipe_promises(env: Env, workers: Supervisor) -> None:
    body = {
        "model": "tiny-wan-text-to-video",
        "prompt": "a red car drives through a city at night",
        "duration": "1s",
        "resolution": "256p",
        "aspect_ratio": "1:1",
        "audio": False,
    }
    frames, fps = decode(queued_video(env, body))
    assert frames.shape == (17, 256, 256, 3)
    assert fps == 16
