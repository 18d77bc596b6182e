"""Wan 2.1: text-to-video (1.3B, 14B), image-to-video (480p, 720p) and first-last-frame.

How one job becomes one pipeline call, read top to bottom. The model renders 16 frames a
second, 4k+1 frames, at sizes that are multiples of 16 (the VAE's 8 times the patch's 2): its
grid, declared with its limits in `engines/diffusers_families.py`. Requests are mapped here,
so the pipeline never rounds anything silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from videoqueue.engines.base import EngineError, JobInput
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback, Video
from videoqueue.engines.diffusers_families import WAN21_GRID
from videoqueue.engines.stills import fit, open_image

GRID = WAN21_GRID
FPS = GRID.fps
STEPS = 50
GUIDANCE = 5.0
TEXT_TO_VIDEO = "WanPipeline"
IMAGE_TO_VIDEO = "WanImageToVideoPipeline"
"""Also first-last-frame: the same pipeline, given a `last_image`."""

frame_count = GRID.frame_count
"""The 4k+1 frames nearest to a duration at 16 fps (5 s: 81)."""
frame_size = GRID.frame_size
"""Each side to its nearest multiple of 16."""


def check(pipeline: Any) -> None:
    kind = type(pipeline).__name__
    if kind not in (TEXT_TO_VIDEO, IMAGE_TO_VIDEO):
        raise EngineError(
            f"a Wan 2.1 folder holds a {TEXT_TO_VIDEO} or {IMAGE_TO_VIDEO}, not {kind}"
        )
    if getattr(pipeline.config, "boundary_ratio", None) is not None:
        raise EngineError("this folder has two experts (Wan 2.2 A14B), not a Wan 2.1 model")


def run(pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
    # 1. Map the request onto what the model renders.
    n_frames = frame_count(job.duration_s)
    width, height = frame_size(job.width, job.height)

    # 2. Images: a start image for image-to-video, and an end image for first-last-frame.
    images: dict[str, Any] = {}
    takes_images = type(pipeline).__name__ == IMAGE_TO_VIDEO
    if takes_images:
        if job.media.image is None:
            raise EngineError("this Wan 2.1 model is image-to-video: it needs an image")
        images["image"] = fit(open_image(job.media.image, "image"), (width, height))
        if job.media.end_image is not None:
            end = open_image(job.media.end_image, "end_image")
            images["last_image"] = fit(end, (width, height))
    elif job.media.image is not None or job.media.end_image is not None:
        raise EngineError("this Wan 2.1 model is text-to-video: it takes no image")

    # 3. Denoise and decode; the seed drives a CPU generator so a seed means the same
    # noise on every device.
    def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(step)
        return tensors

    result = pipeline(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt or None,
        height=height,
        width=width,
        num_frames=n_frames,
        num_inference_steps=sampling.steps,
        guidance_scale=sampling.guidance,
        generator=torch.Generator("cpu").manual_seed(job.seed),
        output_type="np",
        callback_on_step_end=step_end,
        **images,
    )

    # 4. Floats in [0, 1] to 8-bit RGB.
    frames = (np.asarray(result.frames[0]) * 255).round().clip(0, 255)
    return Video(frames=np.ascontiguousarray(frames, dtype=np.uint8), fps=FPS)
