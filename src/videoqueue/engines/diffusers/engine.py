"""`DiffusersEngine`: one pipeline loaded once from a local folder, run once per job."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from videoqueue.engines.base import EngineError, JobInput, ProgressCallback, VideoInfo
from videoqueue.engines.diffusers import ltx2, wan21, wan22, wan22_ti2v
from videoqueue.engines.diffusers.recipe import Recipe, Sampling
from videoqueue.engines.diffusers.speed import Speed
from videoqueue.media.mp4 import SAMPLE_RATE, write_mp4
from videoqueue.media.soundtrack import soundtrack

FAMILIES: dict[str, Recipe] = {
    "wan21": wan21,
    "wan22": wan22,
    "wan22-ti2v": wan22_ti2v,
    "ltx2": ltx2,
}
"""Family name → its recipe module (how a job maps onto that family's pipelines)."""

DENOISE_SHARE = 0.9
"""The part of the progress bar the denoising steps fill; VAE decode and encoding the rest."""


def load(
    *,
    family: str,
    path: str,
    device: str = "",
    steps: str = "",
    guidance: str = "",
    guidance_2: str = "",
    **speed: str,
) -> DiffusersEngine:
    """The engine for a factory string's options (all strings, as they come from the query);
    the speed and memory ones are `Speed`'s fields."""
    try:
        return DiffusersEngine(
            Path(path),
            family,
            device=device or None,
            steps=int(steps) if steps else None,
            guidance=float(guidance) if guidance else None,
            guidance_2=float(guidance_2) if guidance_2 else None,
            speed=Speed.parse(speed),
        )
    except ValueError as exc:
        raise EngineError(f"diffusers engine options: {exc}") from exc


class DiffusersEngine:
    """Generates with the pipeline in `folder`, on `device` (CUDA if present, else the CPU)."""

    name = "diffusers"

    def __init__(
        self,
        folder: Path,
        family: str,
        *,
        device: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        guidance_2: float | None = None,
        speed: Speed | None = None,
    ) -> None:
        if family not in FAMILIES:
            raise EngineError(f"unknown diffusers family {family!r}; known: {', '.join(FAMILIES)}")
        if not (folder / "model_index.json").is_file():
            raise EngineError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
        # Read when huggingface_hub is first imported: set before diffusers is.
        os.environ["HF_HUB_OFFLINE"] = "1"
        self.recipe = FAMILIES[family]
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.speed = speed or Speed()
        self.speed.check(self.device)
        self.pipeline = _load_pipeline(folder, self.speed.dtypes(self.device))
        self.pipeline.set_progress_bar_config(disable=True)
        self.recipe.check(self.pipeline)
        if guidance_2 is not None and getattr(self.pipeline, "transformer_2", None) is None:
            raise EngineError("guidance_2 is a second expert's guidance: this model has one")
        self.speed.set_up(self.pipeline, self.device)
        self.sampling = Sampling(
            steps=steps or self.recipe.STEPS,
            guidance=guidance or self.recipe.GUIDANCE,
            guidance_2=guidance_2,
        )

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        # 1. Denoise and decode; the recipe calls `on_step` after each step, and a raising
        # `progress` (a cancel) ends the run there.
        steps = self.sampling.steps

        def on_step(step: int) -> None:
            progress(DENOISE_SHARE * (step + 1) / steps)

        progress(0.0)
        self.speed.before_job(self.pipeline, job.width, job.height)
        video = self.recipe.run(self.pipeline, job, self.sampling, on_step)
        n_frames, height, width, _ = video.frames.shape
        # A job that asked for no audio gets a silent MP4 (no track), as from every engine.
        audio = None
        if video.audio is not None and job.audio:
            n_samples = round(n_frames * SAMPLE_RATE / video.fps)
            audio = soundtrack(video.audio.samples, video.audio.sample_rate, n_samples)

        # 2. Encode; a failed or cancelled encode leaves no half-written file behind.
        def encoding(fraction: float) -> None:
            progress(DENOISE_SHARE + (1 - DENOISE_SHARE) * fraction)

        try:
            write_mp4(
                output_path, video.fps, (width, height), n_frames, video.frames, audio, encoding
            )
        except BaseException:
            output_path.unlink(missing_ok=True)
            raise
        progress(1.0)
        return VideoInfo(
            width=width,
            height=height,
            fps=float(video.fps),
            duration_s=n_frames / video.fps,
            frames=n_frames,
            has_audio=audio is not None,
        )


def _load_pipeline(folder: Path, dtype: dict[str, torch.dtype]) -> Any:
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging

    logging.disable_progress_bar()

    try:
        return DiffusionPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    except Exception as exc:  # a corrupt folder fails in many ways: JSON, safetensors, configs
        raise EngineError(
            f"cannot load the pipeline in {folder}: {type(exc).__name__}: {exc}"
        ) from exc
