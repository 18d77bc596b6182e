"""The diffusers engine on tiny random Wan 2.2 pipelines: A14B with two experts, and TI2V-5B.

As for Wan 2.1, each pipeline is built in code, saved with `save_pretrained` and loaded back
by the engine from the folder, offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.conftest import Env, png_data_url
from tests.engines.diffusers_jobs import bound_model, decode, operator_settings, queued_video
from tests.engines.diffusers_pipelines import WanKind, save_tiny_wan, tiny_wan
from tests.engines.test_diffusers_wan import image, job, run
from videoqueue.engines.base import EngineError, Media
from videoqueue.engines.diffusers import DiffusersEngine, wan22_ti2v
from videoqueue.engines.isolation import load_engine
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

STEPS = 2
KINDS: tuple[WanKind, ...] = ("t2v", "a14b-t2v", "a14b-i2v", "ti2v")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[WanKind, Path]]:
    root = tmp_path_factory.mktemp("wan22")
    yield {kind: save_tiny_wan(root / kind, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def a14b(folders: dict[WanKind, Path]) -> DiffusersEngine:
    return DiffusersEngine(folders["a14b-t2v"], "wan22", device="cpu", steps=STEPS)


@pytest.fixture(scope="module")
def ti2v(folders: dict[WanKind, Path]) -> DiffusersEngine:
    return DiffusersEngine(folders["ti2v"], "wan22-ti2v", device="cpu", steps=STEPS)


def frames_of(engine: DiffusersEngine, **changes: Any) -> np.ndarray[Any, Any]:
    """The recipe's frames for a small job, before H.264 (which would blur exact comparisons)."""
    small = {"width": 64, "height": 64, "duration_s": 0.3, **changes}
    return engine.recipe.run(engine.pipeline, job(**small), engine.sampling, lambda _: None).frames


def test_ti2v_maps_durations_and_sizes_onto_its_24_fps_32_pixel_grid() -> None:
    grid = wan22_ti2v.GRID
    assert [grid.frame_count(s) for s in (5.0, 1.0, 0.1)] == [121, 25, 1]
    assert grid.frame_size(1280, 720) == (1280, 704)
    assert grid.frame_size(854, 480) == (864, 480)
    assert grid.frame_size(100, 60) == (96, 64)


def test_a14b_mp4_has_the_frames_size_and_fps_the_recipe_promises(
    a14b: DiffusersEngine, tmp_path: Path
) -> None:
    frames, fps = decode(run(a14b, job(), tmp_path / "out.mp4"))
    assert frames.shape == (17, 64, 96, 3)
    assert fps == 16


def test_ti2v_mp4_has_the_frames_size_and_fps_the_recipe_promises(
    ti2v: DiffusersEngine, tmp_path: Path
) -> None:
    frames, fps = decode(run(ti2v, job(), tmp_path / "out.mp4"))
    assert frames.shape == (25, 64, 96, 3)
    assert fps == 24


def test_a14b_runs_the_high_noise_expert_then_the_low_noise_one(a14b: DiffusersEngine) -> None:
    calls: list[str] = []
    experts = {
        "transformer": a14b.pipeline.transformer,
        "transformer_2": a14b.pipeline.transformer_2,
    }
    hooks = [
        module.register_forward_hook(lambda *_, name=name: calls.append(name))
        for name, module in experts.items()
    ]
    try:
        frames_of(a14b)
    finally:
        for hook in hooks:
            hook.remove()
    # Each step runs its expert twice: with the prompt and without (classifier-free guidance).
    assert calls == ["transformer", "transformer", "transformer_2", "transformer_2"]


def test_guidance_2_steers_the_low_noise_expert(
    a14b: DiffusersEngine, folders: dict[WanKind, Path]
) -> None:
    def engine(guidance_2: float) -> Any:
        return load_engine(
            f"videoqueue.engines.diffusers:load?family=wan22&path={folders['a14b-t2v']}"
            f"&device=cpu&steps={STEPS}&guidance_2={guidance_2:g}"
        )

    same, other = engine(a14b.sampling.guidance), engine(1.5)
    assert same.sampling.guidance_2 == a14b.sampling.guidance
    assert np.array_equal(frames_of(same), frames_of(a14b)), "unset: the same as guidance"
    assert not np.array_equal(frames_of(other), frames_of(a14b))


@pytest.mark.parametrize("engine", ["a14b", "ti2v"])
def test_same_seed_gives_the_same_frames_and_another_seed_others(
    engine: str, request: pytest.FixtureRequest
) -> None:
    loaded: DiffusersEngine = request.getfixturevalue(engine)
    first, again, other = (frames_of(loaded, seed=seed) for seed in (7, 7, 8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a14b_i2v_needs_an_image_and_takes_no_end_image(
    folders: dict[WanKind, Path], tmp_path: Path
) -> None:
    engine = DiffusersEngine(folders["a14b-i2v"], "wan22", device="cpu", steps=STEPS)
    start = image(tmp_path / "start.png", (200, 40, 40))
    frames, fps = decode(
        run(engine, job(media=Media(image=start), duration_s=0.3), tmp_path / "out.mp4")
    )
    assert (frames.shape, fps) == ((5, 64, 96, 3), 16)
    with pytest.raises(EngineError, match="needs an image"):
        engine.generate(job(), tmp_path / "none.mp4", lambda _: None)
    both = Media(image=start, end_image=start)
    with pytest.raises(EngineError, match="takes no end image"):
        engine.generate(job(media=both), tmp_path / "both.mp4", lambda _: None)


def test_ti2v_with_an_image_starts_from_it_on_the_loaded_transformer(
    ti2v: DiffusersEngine, tmp_path: Path
) -> None:
    red = Media(image=image(tmp_path / "red.png", (220, 30, 30)))
    blue = Media(image=image(tmp_path / "blue.png", (30, 30, 220)))
    calls: list[int] = []
    hook = ti2v.pipeline.transformer.register_forward_hook(lambda *_: calls.append(1))
    try:
        from_red = frames_of(ti2v, media=red)
    finally:
        hook.remove()
    assert calls, "the image job ran on the transformer loaded at setup"
    assert not np.array_equal(from_red, frames_of(ti2v)), "an image changes the video"
    # The image is the first latent frame, held fixed, and Wan's VAE decodes causally: the
    # first frame comes from the image alone, whatever the seed; the others follow the noise.
    reseeded = frames_of(ti2v, media=red, seed=9)
    assert np.array_equal(from_red[0], reseeded[0])
    assert not np.array_equal(from_red[1:], reseeded[1:])
    assert not np.array_equal(from_red[0], frames_of(ti2v, media=blue)[0])


@pytest.mark.parametrize(
    ("family", "kind", "message"),
    [
        ("wan22", "t2v", "holds Wan 2.1, not Wan 2.2 A14B"),
        ("wan22", "ti2v", "holds Wan 2.2 TI2V-5B, not Wan 2.2 A14B"),
        ("wan22-ti2v", "t2v", "holds Wan 2.1, not Wan 2.2 TI2V-5B"),
        ("wan22-ti2v", "a14b-t2v", r"holds Wan 2.2 A14B \(two experts\), not Wan 2.2 TI2V-5B"),
        ("wan21", "a14b-i2v", r"holds Wan 2.2 A14B \(two experts\), not Wan 2.1"),
        ("wan21", "ti2v", "holds Wan 2.2 TI2V-5B, not Wan 2.1"),
    ],
)
def test_a_folder_of_another_family_is_refused_at_setup(
    family: str, kind: WanKind, message: str, folders: dict[WanKind, Path]
) -> None:
    with pytest.raises(EngineError, match=f"this folder {message}"):
        DiffusersEngine(folders[kind], family, device="cpu")


def test_a_second_expert_without_a_boundary_is_refused(tmp_path: Path) -> None:
    pipeline = tiny_wan("a14b-t2v")
    pipeline.register_to_config(boundary_ratio=None)
    pipeline.save_pretrained(tmp_path / "half")
    with pytest.raises(EngineError, match="only one of transformer_2 and boundary_ratio"):
        DiffusersEngine(tmp_path / "half", "wan22", device="cpu")


def test_guidance_2_is_refused_for_a_model_with_one_expert(folders: dict[WanKind, Path]) -> None:
    with pytest.raises(EngineError, match="guidance_2 is a second expert's guidance"):
        DiffusersEngine(folders["ti2v"], "wan22-ti2v", device="cpu", guidance_2=3.0)


OVERLAY = bound_model(
    "tiny-wan22-image-to-video", "tiny-wan22", 24, kind="image-to-video", requires=("image_url",)
)


@pytest.fixture
def settings(tmp_path: Path, folders: dict[WanKind, Path]) -> Settings:
    factory = f"videoqueue.engines.diffusers:load?family=wan22-ti2v&path={folders['ti2v']}&steps=2"
    return operator_settings(tmp_path, OVERLAY, {"tiny-wan22": factory})


def test_a_ti2v_image_job_through_the_api_ends_in_the_mp4_the_recipe_promises(
    env: Env, workers: Supervisor
) -> None:
    body: dict[str, object] = {
        "model": "tiny-wan22-image-to-video",
        "prompt": "waves crash on rocks under a grey sky",
        "duration": "1s",
        "resolution": "256p",
        "image_url": png_data_url(256, 256, (30, 140, 220)),
        "audio": False,
    }
    frames, fps = decode(queued_video(env, body))
    assert frames.shape == (25, 256, 256, 3)
    assert fps == 24
