"""The diffusers engine's speed and memory options, on a tiny random Wan 2.1 on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import torch

from tests.engines.diffusers_jobs import decode
from tests.engines.diffusers_pipelines import WanKind, save_tiny_wan
from tests.engines.ltx2_pipelines import save_tiny_ltx2
from tests.engines.test_diffusers_wan import job
from videoqueue.engines.base import EngineError
from videoqueue.engines.diffusers import DiffusersEngine, speed
from videoqueue.engines.diffusers.speed import Speed
from videoqueue.engines.isolation import IsolatedEngine, load_engine

STEPS = 3


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_wan(tmp_path_factory.mktemp("wan") / "t2v")


def engine(folder: Path, options: str = "") -> DiffusersEngine:
    built = load_engine(
        f"videoqueue.engines.diffusers:load?family=wan21&path={folder}&device=cpu"
        f"&steps={STEPS}{options}"
    )
    assert isinstance(built, DiffusersEngine)
    return built


def frames(built: DiffusersEngine, out: Path, **size: Any) -> npt.NDArray[np.uint8]:
    built.generate(job(3, duration_s=0.3, **size), out, lambda _: None)
    return decode(out.read_bytes())[0]


@pytest.fixture(scope="module")
def stock(folder: Path) -> DiffusersEngine:
    return engine(folder)


class Counter:
    """Counts the calls of a submodule inside every transformer block: work actually done."""

    def __init__(self, built: DiffusersEngine, part: str) -> None:
        self.calls = 0
        self.handles = [
            block.get_submodule(part).register_forward_hook(self._count)
            for block in built.pipeline.transformer.blocks
        ]

    def _count(self, *_: object) -> None:
        self.calls += 1


@pytest.fixture
def counted() -> Iterator[list[Counter]]:
    counters: list[Counter] = []
    yield counters
    for counter in counters:
        for handle in counter.handles:
            handle.remove()


def test_the_options_become_the_engines_speed_settings(folder: Path) -> None:
    built = engine(folder, "&vae_tiling=ON&attention=sdpa&cache=fbc&cache_threshold=0.1")
    assert built.speed == Speed(vae_tiling="on", attention="sdpa", cache="fbc", cache_threshold=0.1)
    assert engine(folder, "&compile=&offload=").speed == Speed(), "empty means the default"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("vae_tiling=sometimes", "vae_tiling='sometimes' is not one of auto, on, off"),
        ("offload=disk", "offload='disk' is not one of none, model, sequential, group"),
        ("attention=magic", "attention='magic' is not one of auto, native, sdpa, cudnn"),
        ("compile=full", "compile='full' is not one of off, blocks"),
        ("cache=magcache", "cache='magcache' is not one of none, fbc, taylorseer"),
        ("cache=fbc&cache_threshold=abc", "cache_threshold='abc' is not a number"),
        ("cache=fbc&cache_threshold=-1", "cache_threshold='-1' must be a finite number, 0 or more"),
        (
            "cache=fbc&cache_threshold=nan",
            "cache_threshold='nan' must be a finite number, 0 or more",
        ),
        ("cache=taylorseer&cache_interval=0", "cache_interval must be a whole number"),
        ("cache_threshold=0.1", "cache_threshold applies to cache=fbc only"),
        ("cache=fbc&cache_interval=2", "cache_interval applies to cache=taylorseer only"),
        ("compile=blocks&cache=fbc", "compile=blocks does not combine with a step cache"),
        ("compile=blocks&offload=group", "compile=blocks does not combine with offload"),
        ("tiling=on", "unknown diffusers engine option 'tiling'"),
        ("vae_dtype=float16", "vae_dtype='float16' is not one of float32, bfloat16"),
    ],
)
def test_a_bad_option_is_refused_with_a_message_naming_it(
    folder: Path, options: str, message: str
) -> None:
    with pytest.raises(EngineError, match="^" + message.replace(".", r"\.")):
        engine(folder, "&" + options)


def test_a_bad_option_fails_the_engines_setup_not_the_worker(folder: Path) -> None:
    isolated = IsolatedEngine(
        "wan", f"videoqueue.engines.diffusers:load?family=wan21&path={folder}&offload=disk"
    )
    isolated.setup(timeout=120)
    assert not isolated.ready
    assert isolated.setup_error is not None
    assert "offload='disk' is not one of none, model" in isolated.setup_error


def test_offload_and_gpu_attention_need_a_cuda_device(folder: Path) -> None:
    with pytest.raises(EngineError, match="offload=group needs a CUDA device, not cpu"):
        engine(folder, "&offload=group")
    with pytest.raises(EngineError, match="attention=cudnn needs a CUDA device, not cpu"):
        engine(folder, "&attention=cudnn")


def test_an_attention_backend_that_is_not_installed_is_refused() -> None:
    # Neither flash-attn nor sageattention is installed here; the check comes before any
    # CUDA call, so it runs without a GPU.
    for name, package in (("flash", "flash-attn"), ("sage", "sageattention")):
        assert speed.attention_missing(name) is not None
        with pytest.raises(EngineError, match=f"attention={name} cannot be used: .*{package}"):
            Speed(attention=name).check(torch.device("cuda"))
    assert speed.attention_missing("native") is None


def test_auto_attention_is_pytorchs_sdpa_on_the_cpu(
    folder: Path, stock: DiffusersEngine, tmp_path: Path
) -> None:
    assert Speed().check(torch.device("cpu")) == "native"
    native = engine(folder, "&attention=native")
    assert np.array_equal(frames(native, tmp_path / "n.mp4"), frames(stock, tmp_path / "s.mp4"))


def test_vae_tiling_keeps_the_frames_size_and_count_and_nearly_their_values(
    folder: Path, tmp_path: Path
) -> None:
    # Wider and taller than the VAE's 256-pixel tile, so the decode really is tiled.
    size = {"width": 320, "height": 272}
    plain = frames(engine(folder, "&vae_tiling=off"), tmp_path / "plain.mp4", **size)
    tiled_engine = engine(folder, "&vae_tiling=on")
    tiled = frames(tiled_engine, tmp_path / "tiled.mp4", **size)
    assert tiled_engine.pipeline.vae.use_tiling
    assert tiled.shape == plain.shape == (5, 272, 320, 3)
    difference = np.abs(tiled.astype(int) - plain.astype(int))
    assert difference.mean() < 4, "tiles blend into nearly the same frames"
    assert not np.array_equal(tiled, plain), "the tiled decode ran"


def test_auto_tiling_tiles_frames_of_720p_and_above(stock: DiffusersEngine) -> None:
    vae = stock.pipeline.vae
    for (width, height), tiled in {(1280, 720): True, (720, 1280): True, (848, 480): False}.items():
        stock.speed.before_job(stock.pipeline, width, height)
        assert vae.use_tiling is tiled
    stock.speed.before_job(stock.pipeline, 64, 64)


def test_first_block_cache_with_a_huge_threshold_skips_the_later_blocks(
    folder: Path, stock: DiffusersEngine, tmp_path: Path, counted: list[Counter]
) -> None:
    full = Counter(stock, "ffn")
    cached_engine = engine(folder, "&cache=fbc&cache_threshold=1e9")
    cached = Counter(cached_engine, "ffn")
    counted.extend((full, cached))
    frames(stock, tmp_path / "full.mp4")
    frames(cached_engine, tmp_path / "cached.mp4")
    # Two blocks, two passes a step (with and without the prompt): every step runs both
    # blocks without a cache; with one, only the first step does, later steps block 0 alone.
    assert full.calls == 2 * 2 * STEPS
    assert cached.calls == 2 * 2 + 1 * 2 * (STEPS - 1)


def test_first_block_cache_at_threshold_0_gives_the_frames_of_no_cache(
    folder: Path, stock: DiffusersEngine, tmp_path: Path
) -> None:
    cached = engine(folder, "&cache=fbc&cache_threshold=0")
    assert np.array_equal(frames(cached, tmp_path / "c.mp4"), frames(stock, tmp_path / "s.mp4"))


def test_a_cancelled_runs_cache_does_not_leak_into_the_next_job(
    folder: Path, tmp_path: Path
) -> None:
    cached = engine(folder, "&cache=fbc&cache_threshold=1e9")
    first = frames(cached, tmp_path / "a.mp4")

    class Cancelled(Exception):
        pass

    def cancel_after_a_step(fraction: float) -> None:
        if fraction > 0:
            raise Cancelled

    other = job(4, duration_s=0.3)
    with pytest.raises(Cancelled):
        cached.generate(other, tmp_path / "cancelled.mp4", cancel_after_a_step)
    assert np.array_equal(frames(cached, tmp_path / "b.mp4"), first)


def test_taylorseer_predicts_attention_between_full_steps(
    folder: Path, stock: DiffusersEngine, tmp_path: Path, counted: list[Counter]
) -> None:
    steps = 6
    full = engine(folder, f"&steps={steps}")
    predicted = engine(folder, f"&steps={steps}&cache=taylorseer&cache_interval=2")
    counters = [Counter(full, "attn1.to_q"), Counter(predicted, "attn1.to_q")]
    counted.extend(counters)
    frames(full, tmp_path / "full.mp4")
    frames(predicted, tmp_path / "predicted.mp4")
    # Steps 0-2 run in full (diffusers' default warm-up), then every other one: 3 and 5
    # are predicted, in both passes and both blocks.
    assert counters[0].calls == 2 * 2 * steps
    assert counters[1].calls == counters[0].calls - 2 * 2 * 2


def test_compile_compiles_the_repeated_blocks_and_warms_up_at_setup(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real compile takes tens of seconds on a shared CPU: here the warm-up calls are
    # recorded instead of run, and the blocks checked for their compiled call.
    warmed: list[tuple[int, int, int]] = []
    monkeypatch.setattr(speed, "_warm_up", lambda _p, *size: warmed.append(size))
    built = engine(folder, "&compile=blocks")
    blocks = built.pipeline.transformer.blocks
    assert all(block._compiled_call_impl is not None for block in blocks)
    assert built.pipeline.transformer._compiled_call_impl is None, "regional, not whole"
    assert warmed == list(speed.WARM_UP_SIZES)
    assert engine(folder).pipeline.transformer.blocks[0]._compiled_call_impl is None


def test_the_cuda_dtypes_keep_the_vae_in_float32_unless_told() -> None:
    cuda = torch.device("cuda")
    assert Speed().dtypes(cuda) == {"default": torch.bfloat16, "vae": torch.float32}
    assert Speed(vae_dtype="bfloat16").dtypes(cuda)["vae"] == torch.bfloat16
    assert Speed().dtypes(torch.device("cpu")) == {"default": torch.float32}


@pytest.mark.parametrize("kind", ["t2v", "i2v", "flf2v"])
def test_the_warm_up_calls_run_on_every_wan21_pipeline(kind: WanKind, tmp_path: Path) -> None:
    built = DiffusersEngine(save_tiny_wan(tmp_path / kind, kind), "wan21", device="cpu")
    passes: list[tuple[int, ...]] = []
    built.pipeline.transformer.register_forward_hook(
        lambda _m, _a, out: passes.append(tuple(out[0].shape))
    )
    for size in speed.WARM_UP_SIZES:
        speed._warm_up(built.pipeline, *size)
    # One step each, with and without the prompt: latents of (frames-1)/4+1 by size/8.
    assert passes == [(1, 16, 5, 8, 12)] * 2 + [(1, 16, 3, 8, 8)] * 2


@pytest.mark.parametrize(
    ("family", "kind"),
    [("wan22", "a14b-t2v"), ("wan22", "a14b-i2v"), ("wan22-ti2v", "ti2v"), ("ltx2", "ltx2")],
)
def test_the_warm_up_reaches_every_denoiser_of_every_family(
    family: str, kind: str, tmp_path: Path
) -> None:
    folder = (
        save_tiny_ltx2(tmp_path / kind) if kind == "ltx2" else save_tiny_wan(tmp_path / kind, kind)  # type: ignore[arg-type]
    )
    built = DiffusersEngine(folder, family, device="cpu")
    calls: dict[str, int] = {}
    for name in speed.DENOISERS:
        denoiser = getattr(built.pipeline, name, None)
        if denoiser is not None:
            calls[name] = 0
            denoiser.register_forward_hook(
                lambda _m, _a, _out, name=name: calls.__setitem__(name, calls[name] + 1)
            )
    for size in speed.WARM_UP_SIZES:
        speed._warm_up(built.pipeline, *size)
    assert calls and all(calls.values()), calls
