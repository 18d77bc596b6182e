"""The diffusers engine against a stock diffusers pipeline call, on Wan 2.1's architecture.

A diffusion model's speed does not depend on its weights' values, so the pipeline is built
with random weights: by default a tiny Wan 2.1 at 64x64 that runs on the CPU in seconds; with
`--full`, Wan2.1-T2V-1.3B's real architecture (30 layers, width 1536, UMT5-XXL, the real VAE)
at 832x480 and 81 frames, which wants a GPU. Both cases load the same saved folder and run
the same number of steps; the ratio is stock seconds per step over the engine's.

    .venv/bin/python -m bench.engines [--full] [--steps N] [--repeat N] [--device cuda]
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

PROMPT = "a red car drives through a city at night"


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

    @property
    def per_step(self) -> float:
        # The first step's gap includes prompt encoding; later gaps are one step each.
        gaps = [b - a for a, b in zip(self.steps, self.steps[1:], strict=False)]
        return sum(gaps) / len(gaps) if gaps else float("nan")


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
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pipeline = WanPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device)
    pipeline.set_progress_bar_config(disable=True)

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

    return best_of(repeat, device, run)


def engine(
    folder: Path, device: torch.device, case: Case, steps: int, repeat: int, out: Path
) -> Timing:
    built = DiffusersEngine(folder, "wan21", device=str(device), steps=steps)
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

        built.generate(job, out, progress)

    return best_of(repeat, device, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="Wan2.1-T2V-1.3B at 832x480x81")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of each call")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device)
    args = parser.parse_args()
    device = torch.device(args.device)
    case = FULL if args.full else TINY
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "wan"
        (full_wan(dtype) if args.full else tiny_wan("t2v")).save_pretrained(folder)
        rows = [
            ("stock diffusers", stock(folder, device, case, args.steps, args.repeat)),
            (
                "videoqueue engine",
                engine(folder, device, case, args.steps, args.repeat, folder / "o.mp4"),
            ),
        ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    memory = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB"
    print(f"Wan 2.1 {'1.3B' if args.full else 'tiny'} on {name}: ", end="")
    print(f"{case.width}x{case.height}, {case.frames} frames, {args.steps} steps")
    print(f"{'case':<20} {'s/step':>8} {'end to end s':>13} {memory:>13}")
    for label, timing in rows:
        print(f"{label:<20} {timing.per_step:>8.3f} {timing.total:>13.2f} {timing.peak_mib:>13.0f}")
    (_, base), (_, ours) = rows
    print(f"engine speed-up per step: {base.per_step / ours.per_step:.2f}x (stock / engine)")


if __name__ == "__main__":
    main()
