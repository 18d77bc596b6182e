"""Wan 2.2 TI2V-5B: text-to-video and image-to-video from one folder.

How one job becomes one pipeline call, read top to bottom. The model renders 24 frames a
second, 4k+1 frames, at sizes that are multiples of 32 (its VAE's 16 times the patch's 2): its
grid, declared with its limits in `engines/diffusers_families.py`.
The folder holds a text-to-video pipeline that denoises every latent frame at its own timestep
(`expand_timesteps`); given an image, the image-to-video pipeline over the same loaded parts
encodes it as the first latent frame and keeps that frame fixed while the others are denoised.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from videoqueue.engines.base import EngineError, JobInput
from videoqueue.engines.diffusers import wan
from videoqueue.engines.diffusers.recipe import Sampling, StepCallback, Video
from videoqueue.engines.diffusers_families import WAN22_TI2V_GRID
from videoqueue.engines.stills import fit, open_image

GRID = WAN22_TI2V_GRID
STEPS = 50
GUIDANCE = 5.0


def check(pipeline: Any) -> None:
    wan.check(pipeline, wan.TI2V, GRID)
    kind = type(pipeline).__name__
    if kind != wan.TEXT_TO_VIDEO:
        raise EngineError(
            f"this folder holds a {kind}; a {wan.TI2V} folder holds a {wan.TEXT_TO_VIDEO}"
        )


def run(pipeline: Any, job: JobInput, sampling: Sampling, on_step: StepCallback) -> Video:
    # 1. Map the request onto what the model renders.
    n_frames = GRID.frame_count(job.duration_s)
    size = GRID.frame_size(job.width, job.height)

    # 2. An image, if any, makes the job image-to-video.
    if job.media.end_image is not None:
        raise EngineError(f"this {wan.TI2V} model takes no end image")
    images: dict[str, Image.Image] = {}
    if job.media.image is not None:
        pipeline = image_to_video(pipeline)
        images["image"] = fit(open_image(job.media.image, "image"), size)

    # 3. Denoise and decode.
    frames = wan.render(pipeline, job, sampling, on_step, n_frames, size, **images)
    return Video(frames=frames, fps=GRID.fps)


def image_to_video(pipeline: Any) -> Any:
    """The image-to-video pipeline over `pipeline`'s loaded parts: no weights load twice."""
    from diffusers import WanImageToVideoPipeline

    # Not `from_pipe`: it casts every shared part to one dtype (float32 unless told otherwise).
    i2v: Any = WanImageToVideoPipeline(**pipeline.components, expand_timesteps=True)
    i2v.set_progress_bar_config(disable=True)
    return i2v
