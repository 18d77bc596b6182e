"""The diffusers engine against a stock diffusers pipeline call, on Wan 2.1's architecture.

A diffusion model's speed does not depend on its weights' values, so the pipeline is built
with random weights: by default a tiny Wan 2.1 at 64x64 that runs on the CPU in seconds; with
`--full`, Wan2.1-T2V-1.3B's real architecture (30 layers, width 1536, UMT5-XXL, the real VAE)
at 832x480 and 81 frames, which wants a GPU. Every row loads the same saved folder and runs
the same number of steps: a stock `WanPipeline` call with diffusers' defaults, the engine
with the speed options an operator would turn on (`--engine-options`), and the engine with a
step cache (`--cache-options`, a row of its own: the cache does not combine with compile).
The ratio is stock seconds per step over the row's.

    .venv/bin/python -m bench.engines [--full] [--steps N] [--repeat N] [--device cuda]
        [--engine-options 'attention=auto&compile=blocks'] [--cache-options 'cache=fbc&…']
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline

from tests.engines.diffusers_pipelines import (
    text_encoder,
    tiny_wan,
    tiny_wan_transformer,
    tokenizer,
)
from videoqueue.engines.base import JobInput
from videoqueue.engines.diffusers import DiffusersEngine, wan21
from videoqueue.engines.diffusers.speed import Speed

PROMPT = "a red car drives through a city at night"
ENGINE_OPTIONS = "attention=auto&compile=blocks"
CPU_ENGINE_OPTIONS = "attention=auto"
"""On the CPU compile is left out by default: it takes about 40 s there for a tiny model
whose steps last milliseconds."""
CACHE_OPTIONS = "attention=auto&cache=fbc&cache_threshold=0.05"


@dataclass(frozen=True)
class Case:
    width: int
    height: int
    frames: int


TINY = Case(width=64, height=64, frames=9)
FULL = Case(width=832, height=480, frames=81)


def full_wan(dtype: torch.dtype) -> Any:
    """Wan2.1-T2V-1.3B's architecture (its published transformer/config.json), random weights."""
    tok = tokenizer()
    encoder = text_encoder(
        256_384,
        d_model=4096,
        d_kv=64,
        d_ff=10_240,
        num_layers=24,
        num_heads=64,
        relative_attention_num_buckets=32,
        feed_forward_proj="gated-gelu",
    )
    transformer = tiny_wan_transformer(
        num_attention_heads=12,
        attention_head_dim=128,
        ffn_dim=8960,
        num_layers=30,
        text_dim=4096,
        rope_max_seq_len=1024,
        eps=1e-6,
    )
    pipeline: Any = WanPipeline(
        tokenizer=tok,
        text_encoder=encoder,
        transformer=transformer,
        vae=AutoencoderKLWan(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    return pipeline.to(dtype)


@dataclass
class Timing:
    steps: list[float]
    total: float
    peak_mib: float
    setup: float = 0.0

    @property
    def per_step(self) -> float:
        # The first step's gap includes prompt encoding; later gaps are one step each.
        gaps = [b - a for a, b in zip(self.steps, self.steps[1:], strict=False)]
        return sum(gaps) / len(gaps) if gaps else float("nan")

    @property
    def outside_share(self) -> float:
        """The job's time outside the denoising loop (prompt encoding, VAE decode, the MP4),
        estimated as the end-to-end time less `per_step` for every step."""
        return max(0.0, self.total - self.per_step * len(self.steps)) / self.total


def peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process so far


def timed(device: torch.device, run: Callable[[Callable[[], None]], None]) -> Timing:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    marks: list[float] = []

    def mark() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        marks.append(time.perf_counter())

    started = time.perf_counter()
    run(mark)
    return Timing(steps=marks, total=time.perf_counter() - started, peak_mib=peak_mib(device))


def best_of(repeat: int, device: torch.device, run: Callable[[Callable[[], None]], None]) -> Timing:
    """After a warm-up run, the fastest of `repeat` runs (by seconds per step)."""
    timed(device, run)
    return min((timed(device, run) for _ in range(repeat)), key=lambda t: t.per_step)


def stock(folder: Path, device: torch.device, case: Case, steps: int, repeat: int) -> Timing:
    started = time.perf_counter()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pipeline = WanPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device)
    pipeline.set_progress_bar_config(disable=True)
    setup = time.perf_counter() - started

    def run(mark: Callable[[], None]) -> None:
        def step_end(_p: Any, _i: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            mark()
            return tensors

        pipeline(
            prompt=PROMPT,
            height=case.height,
            width=case.width,
            num_frames=case.frames,
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(0),
            callback_on_step_end=step_end,
        )

    timing = best_of(repeat, device, run)
    timing.setup = setup
    return timing


def engine(
    folder: Path,
    device: torch.device,
    case: Case,
    steps: int,
    repeat: int,
    options: str,
) -> Timing:
    started = time.perf_counter()
    speed = Speed.parse(dict(parse_qsl(options, keep_blank_values=True)))
    built = DiffusersEngine(folder, "wan21", device=str(device), steps=steps, speed=speed)
    setup = time.perf_counter() - started
    job = JobInput(
        job_id="bench",
        model="wan",
        prompt=PROMPT,
        width=case.width,
        height=case.height,
        duration_s=case.frames / wan21.GRID.fps,
        seed=0,
    )

    def run(mark: Callable[[], None]) -> None:
        def progress(fraction: float) -> None:
            if 0 < fraction <= 0.9:  # the denoising steps' share
                mark()

        built.generate(job, folder.parent / "out.mp4", progress)

    timing = best_of(repeat, device, run)
    timing.setup = setup
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="Wan2.1-T2V-1.3B at 832x480x81")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of each call")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device)
    parser.add_argument(
        "--engine-options",
        default=None,
        help=f"the engine's speed options (default {ENGINE_OPTIONS!r}; "
        f"on the CPU {CPU_ENGINE_OPTIONS!r})",
    )
    parser.add_argument(
        "--cache-options",
        default=CACHE_OPTIONS,
        help=f"the step-cache row's options (default {CACHE_OPTIONS!r}; '' leaves it out)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    case = FULL if args.full else TINY
    options = args.engine_options
    if options is None:
        options = ENGINE_OPTIONS if device.type == "cuda" else CPU_ENGINE_OPTIONS
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "wan"
        (full_wan(dtype) if args.full else tiny_wan("t2v")).save_pretrained(folder)
        rows = [("stock diffusers", stock(folder, device, case, args.steps, args.repeat))]
        for label, row_options in (("engine", options), ("engine + cache", args.cache_options)):
            if row_options:
                timing = engine(folder, device, case, args.steps, args.repeat, row_options)
                rows.append((f"{label}: {row_options}", timing))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    memory = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB"
    print(f"Wan 2.1 {'1.3B' if args.full else 'tiny'} on {name}: ", end="")
    print(f"{case.width}x{case.height}, {case.frames} frames, {args.steps} steps")
    print(
        f"{'case':<62} {'setup s':>8} {'s/step':>8} {'end to end s':>13} "
        f"{'outside loop':>13} {memory:>13} {'speed-up':>9}"
    )
    base = rows[0][1]
    for label, timing in rows:
        print(
            f"{label:<62} {timing.setup:>8.2f} {timing.per_step:>8.3f} {timing.total:>13.2f} "
            f"{timing.outside_share:>12.0%} {timing.peak_mib:>13.0f} "
            f"{base.per_step / timing.per_step:>8.2f}x"
        )
    print("speed-up: stock s/step / the row's; outside loop: the job's time less its steps")


if __name__ == "__main__":
    main()
